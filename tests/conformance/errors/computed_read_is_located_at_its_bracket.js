// A computed read is located at its bracket; a call of a computed callee at its parenthesis.
const table = {};
try {
  table["handler"]();
} catch (e) {
  console.log(e.name);
}
let rows;
rows[0];
