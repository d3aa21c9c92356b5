({ toJSON() { throw new Error('tojson'); } })
