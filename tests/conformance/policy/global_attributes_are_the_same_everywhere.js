// Every global's attributes (enumerable, configurable, then writable or accessor), the globals a
// loop over `globalThis` sees, its symbol keys and tag, and the denied `Function`'s `prototype`:
// the same on every engine.
const flags = (d) =>
  (d.enumerable ? "e" : "-") + (d.configurable ? "c" : "-") + ("value" in d ? (d.writable ? "w" : "-") : "a");
const proto = Object.getOwnPropertyDescriptor(Function, "prototype");
({
  globals: Object.getOwnPropertyNames(globalThis)
    .sort()
    .map((k) => k + " " + flags(Object.getOwnPropertyDescriptor(globalThis, k))),
  enumerable: Object.keys(globalThis),
  symbols: Object.getOwnPropertySymbols(globalThis).map(String),
  tag: Object.prototype.toString.call(globalThis),
  functionPrototype: flags(proto),
  isTheRealOne: proto.value === Object.getPrototypeOf(function () {}),
})
