try {
  throw new Error('first');
} finally {
  throw new TypeError('from finally');
}
