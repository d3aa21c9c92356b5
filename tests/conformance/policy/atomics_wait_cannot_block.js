// With shared memory allowed, Atomics.wait still cannot block a run (no other agent could wake
// it): it checks its arguments, then throws TypeError, on every engine. waitAsync is absent.
const ia = new Int32Array(new SharedArrayBuffer(16));
const out = [];
for (const args of [[ia, 0, 0, 1e9], [ia, 0, 1, 10], [ia, 99, 0, 1], [new Int32Array(4), 0, 0, 1]]) {
  try { out.push(Atomics.wait(...args)); } catch (e) { out.push(e.name); }
}
out.push(typeof Atomics.waitAsync, Atomics.wait.length, Atomics.wait.name, Atomics.notify(ia, 0, 1));
out;
