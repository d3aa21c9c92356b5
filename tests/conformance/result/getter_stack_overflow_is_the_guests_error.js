// A getter on the result recurses until the stack runs out.
({ get x() { function f() { return f() + 1; } return f(); } })
