Array.prototype.join = () => 'pwned';
Object.keys = () => [];
console.log([1, 2], { a: 1 });
