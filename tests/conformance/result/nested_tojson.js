({ inner: { toJSON(key) { return 'key:' + key; } }, list: [{ toJSON(k) { return k; } }] })
