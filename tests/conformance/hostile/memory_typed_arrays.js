const keep = [];
while (true) keep.push(new Uint8Array(1 << 20));
