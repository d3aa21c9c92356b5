function f() {}
const results = [undefined, f, Symbol("s")];
results[input ?? 0]
