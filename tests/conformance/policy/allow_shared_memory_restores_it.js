const a = new Int32Array(new SharedArrayBuffer(8)); Atomics.store(a, 0, 7); Atomics.load(a, 0)
