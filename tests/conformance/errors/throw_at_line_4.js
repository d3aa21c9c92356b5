const a = 1;
const b = 2;
if (a + b === 3) {
  throw new RangeError('at line four');
}
