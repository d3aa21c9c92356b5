const line = 'y'.repeat(1023);
for (let i = 0; i < 1100; i++) console.log(line);
'ok'
