let r;
try {
  const ia = new Int32Array(new SharedArrayBuffer(4));
  r = Atomics.wait(ia, 0, 0, 50);
} catch (e) {
  r = e.name;
}
typeof r
