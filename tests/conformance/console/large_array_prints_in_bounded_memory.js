// A million-element array (16 MB on QuickJS) printed under a 32 MiB limit: the line shows 100
// elements, and printing them must not cost a string per element.
const big = new Array(1e6).fill(1);
console.log(big);
// Below the bound, an array's other own properties are still listed.
const small = [1, 2];
small.note = "kept";
console.log(small);
big.length;
