// With every host global allowed, the host prelude adds exactly its own names.
Object.getOwnPropertyNames(globalThis).sort()
