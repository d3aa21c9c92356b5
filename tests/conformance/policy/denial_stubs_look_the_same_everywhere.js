// The functions the default policy puts in place of eval, the Function constructors,
// SharedArrayBuffer, Atomics and WebAssembly: the same own properties, name, length, prototype
// chain and `instanceof` behaviour on every engine, and a source text that is `[native code]`,
// never the host prelude's.
const r = {};
const stubs = [
  ["eval", eval],
  ["Function", Function],
  ["AsyncFunction", (async function () {}).constructor],
  ["SharedArrayBuffer", SharedArrayBuffer],
  ["Atomics.wait", Atomics.wait],
  ["WebAssembly.compile", WebAssembly.compile],
];
for (const [n, f] of stubs) {
  let construct, call, inst;
  try { new f("1"); construct = "none"; } catch (e) { construct = e.name; }
  try { f("1"); call = "none"; } catch (e) { call = e.name; }
  try { inst = [] instanceof f; } catch (e) { inst = e.name; }
  const d = Object.getOwnPropertyDescriptor(f, "name");
  r[n] = {
    own: Object.getOwnPropertyNames(f).sort(),
    name: [d.value, d.writable, d.enumerable, d.configurable],
    length: f.length,
    construct,
    call,
    instanceOf: inst,
    native: /\[native code\]/.test(String(f)),
    prelude: /throw|denied|Ctor/.test(String(f)),
    isFunction: Object.getPrototypeOf(f) === Object.getPrototypeOf(function () {}),
  };
}
r.instanceOfFunction = [function () {} instanceof Function, (() => 1) instanceof Function, {} instanceof Function];
r
