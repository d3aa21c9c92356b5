console.log('100%');
console.log('%s');
