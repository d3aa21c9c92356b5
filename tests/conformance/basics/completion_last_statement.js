const a = 2;
let b = a * 20;
b + 2;
