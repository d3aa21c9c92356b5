console.log({ a: 1, 'b-c': 'x', nested: { d: { e: { f: 1 } } } });
console.log({});
console.log(Object.create(null));
console.log({ s: Symbol('q'), [Symbol('k')]: 1 });
