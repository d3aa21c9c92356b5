globalThis.Promise = { resolve() { return 5; } };
({ then(resolve) { resolve(1); } })
