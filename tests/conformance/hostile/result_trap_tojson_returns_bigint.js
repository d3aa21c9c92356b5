({ toJSON() { return 1n; } })
