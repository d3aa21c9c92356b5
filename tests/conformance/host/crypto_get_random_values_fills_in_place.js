const a = new Uint8Array(64);
const same = crypto.getRandomValues(a) === a;
const nonzero = a.some((x) => x !== 0);
const b = new Uint32Array(new ArrayBuffer(32), 8, 2);
crypto.getRandomValues(b);
const whole = new Uint32Array(b.buffer);
[same, nonzero, whole[0], whole[1], whole[4], whole[5], crypto.getRandomValues(new BigUint64Array(1)).length]
