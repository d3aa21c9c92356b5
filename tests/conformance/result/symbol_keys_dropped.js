({ b: 1, a: 2, 1: 'one', [Symbol('s')]: 3 })
