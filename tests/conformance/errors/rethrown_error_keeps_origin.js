let saved;
try {
  throw new Error('original');
} catch (e) {
  saved = e;
}
throw saved;
