// Accessors on Array.prototype indices must not run inside Palisade's own host-call plumbing
// (v8's prelude once built reply arrays with `a[i] = x`, which ran this setter mid-call).
let calls = 0;
Object.defineProperty(Array.prototype, "0", {
  set(v) { calls++; },
  get() { calls++; return 65; },
  configurable: true,
});
const bytes = new Uint8Array(8);
crypto.getRandomValues(bytes);
crypto.subtle.digest("SHA-256", new Uint8Array([1, 2, 3])).then((d) => {
  const seen = calls;
  delete Array.prototype[0];
  return [bytes.length, d.byteLength, seen];
});
