// The result itself is one level deep; its toJSON recurses until the stack runs out.
({ toJSON() { function f() { return f() + 1; } return f(); } })
