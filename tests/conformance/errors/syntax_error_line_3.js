const ok = 1;
function f() {
  return ) ;
}
