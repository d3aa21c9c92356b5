console.log(new Date(0));
console.log(/re/g);
console.log(new Uint8Array([1, 2, 3]));
