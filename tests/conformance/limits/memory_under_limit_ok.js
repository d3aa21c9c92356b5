const a = new Array(100000).fill(0).map((_, i) => i);
a.length + a[99999]
