const p = Promise.resolve('value');
p.then(() => Promise.resolve()).then(() => console.log('late microtask'));
p
