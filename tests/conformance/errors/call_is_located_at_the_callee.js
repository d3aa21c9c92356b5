// Calling what is not a function is located at the callee: a method at its name.
const api = { get() { return 1; } };
const v = api.get() + api.post({ id: 1 });
