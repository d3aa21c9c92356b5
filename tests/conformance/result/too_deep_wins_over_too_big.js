let a = [];
for (let i = 0; i < 2000; i++) a = [a];
a
