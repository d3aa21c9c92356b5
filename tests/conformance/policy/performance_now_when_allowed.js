const a = performance.now();
let x = 0;
for (let i = 0; i < 100000; i++) x += i;
const b = performance.now();
[typeof a, a >= 0, b >= a, Object.prototype.toString.call(performance), Object.keys(performance).length]
