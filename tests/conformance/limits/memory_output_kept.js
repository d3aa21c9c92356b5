console.log('start');
const a = [];
while (true) a.push('x' + a.length);
