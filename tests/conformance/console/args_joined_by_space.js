console.log('a', 'b', 'c');
console.error('x', 1, 'y');
