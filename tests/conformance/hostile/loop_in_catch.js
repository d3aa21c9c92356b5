try {
  throw new Error('x');
} catch (e) {
  while (true) {}
}
