({ toJSON(key) { return { v: 1, key }; } })
