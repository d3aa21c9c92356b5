({ a: [1, 'two', { three: [3, [4, [5]]] }], b: { c: { d: { e: null } } }, f: false, g: -12.5, h: '' })
