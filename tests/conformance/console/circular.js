const o = { name: 'o' };
o.self = o;
console.log(o);
