// Host-call arguments reach the host whole: a NUL does not end them, a lone surrogate is U+FFFD.
Promise.all(
  ["SHA-256\u0000x", "SHA\ud800"].map((name) =>
    crypto.subtle.digest(name, new Uint8Array(1)).then(
      () => "resolved",
      (e) => e.name + ": " + e.message,
    ),
  ),
)
