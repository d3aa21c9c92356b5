function inner() {
  throw new Error('deep');
}
function middle() {
  return inner() + 1;
}
function outer() {
  return middle() + 1;
}
outer();
