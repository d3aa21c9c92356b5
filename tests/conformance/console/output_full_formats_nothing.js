// Once the output cap is reached, a console call drops its line before formatting it: the
// formatter would run the guest's proxy traps for a line nobody sees.
let traps = 0;
const counted = new Proxy({}, {
  ownKeys() { traps++; return []; },
  getPrototypeOf() { traps++; return null; },
});
console.log(counted);
const before = traps;
console.log('x'.repeat(2000));
console.log(counted);
console.error(counted, '%o', counted);
[before > 0, traps === before]
