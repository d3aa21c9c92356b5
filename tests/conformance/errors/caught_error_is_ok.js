let r;
try {
  null.x;
} catch (e) {
  r = e instanceof TypeError;
}
r
