console.log('o1');
console.error('e1');
console.log('o2');
console.warn('e2');
