console.log('%s=%d', 'x', 42);
console.log('%i|%d', 3.9, '42');
console.log('%j', { a: [1] }, 1);
console.log('%o', { a: 1 });
console.log('100%% %s', 1);
console.log('%d %d', 1);
console.log('%s', 5, 'extra', 6);
