({ n: 1, s: 'two', b: true, z: null, a: [1, 2, 3] })
