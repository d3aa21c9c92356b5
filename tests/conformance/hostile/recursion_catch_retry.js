function f() {
  try {
    return f();
  } catch (e) {
    return f();
  }
}
f();
