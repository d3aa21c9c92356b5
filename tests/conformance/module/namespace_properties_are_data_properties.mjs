import * as ns from "./a.js";
console.log(ns);
export default [
  JSON.stringify(Object.getOwnPropertyDescriptor(ns, "x")),
  Object.getOwnPropertyDescriptor(ns, "nope"),
  Reflect.set(ns, "x", 2),
  Reflect.defineProperty(ns, "y", { value: 1 }),
  Reflect.deleteProperty(ns, "x"),
  Reflect.deleteProperty(ns, "nope"),
  "x" in ns,
  ns.x,
];
