// An error's `stack` may be set to any value, as libraries do to hide or replace it.
const e = new Error('m');
e.stack = undefined;
const f = new TypeError('t');
f.stack = 5;
const g = new RangeError('r');
delete g.stack;
g.stack = { custom: true };
[e.stack, f.stack, g.stack, Object.keys(f).includes('stack') || Object.getOwnPropertyNames(f).includes('stack')];
