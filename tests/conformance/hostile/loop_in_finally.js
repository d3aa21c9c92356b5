try {
  1;
} finally {
  for (;;) {}
}
