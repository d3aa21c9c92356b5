// Calling what is not a function is located at the callee: a method at its name, whatever
// its arguments are.
const api = { get() { return 1; } };
const id = 7;
const v = api.get() + api.post(id + 1, [id].length, api.get());
