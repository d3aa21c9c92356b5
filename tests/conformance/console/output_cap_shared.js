console.log('12345');
console.warn('abcde');
2
