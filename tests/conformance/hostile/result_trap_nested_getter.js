({ level1: { level2: [1, 2, { get boom() { throw new TypeError('nested getter'); } }] } })
