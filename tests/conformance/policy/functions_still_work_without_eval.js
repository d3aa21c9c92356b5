const f = function () {}; [f instanceof Function, typeof Function, Function.prototype.constructor === Function, (() => 2)()]
