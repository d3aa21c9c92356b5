// Every own property name of the global object: one list on every engine.
Object.getOwnPropertyNames(globalThis).sort()
