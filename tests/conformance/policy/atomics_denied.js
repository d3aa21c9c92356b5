Atomics.load(new Int32Array(4), 0)
