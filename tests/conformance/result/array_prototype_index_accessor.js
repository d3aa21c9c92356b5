// An indexed accessor on Array.prototype (a getter only) must not break JSON.stringify, nor
// the conversion of the result: a hole reads the getter, as it does anywhere.
Object.defineProperty(Array.prototype, '0', { get() { return 'proto'; }, configurable: true });
({
  texts: [JSON.stringify({ a: [1] }), JSON.stringify([, 2]), JSON.stringify({ a: 1, b: 2 }, ['a'])],
  holey: [, 2],
});
