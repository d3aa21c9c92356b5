// `import` is an ordinary method name: only `import(` in expression position is a dynamic import.
class A {
  import(x) { return x + 1; }
  static import(x) { return x * 10; }
}
const o = {
  import(x) { return [x]; },
  get ["imp" + "ort2"]() { return 7; },
};
const g = { *import() { yield 3; } };
[new A().import(1), A.import(2), o.import(4), o.import2, [...g.import()][0], typeof A.prototype.import]
