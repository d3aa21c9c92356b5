console.log([1, 'two', [3, [4, [5, [6]]]]]);
console.log([]);
console.log([-0, null, undefined]);
console.log([, 1]);
console.log(["it's", 'a\nb']);
