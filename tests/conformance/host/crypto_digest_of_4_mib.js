// A large host-call payload fits the default memory limit on every engine (v8 once built it one
// character at a time and hit the limit).
crypto.subtle.digest("SHA-256", new Uint8Array(4 * 1024 * 1024)).then((b) => Array.from(new Uint8Array(b).slice(0, 4)))
