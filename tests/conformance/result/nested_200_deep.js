let a = [];
for (let i = 0; i < 200; i++) a = [a];
a
