new Proxy({ a: 1 }, { ownKeys() { throw new Error('keys'); } })
