var x = 5;
function f() { return x; }
