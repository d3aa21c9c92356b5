console.log(new Map([['k', 1], [2, { a: 1 }]]));
console.log(new Set([1, 's']));
console.log(new Map(), new Set());
