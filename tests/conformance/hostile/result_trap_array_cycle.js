const a = [1, [2]];
a[1].push(a);
a
