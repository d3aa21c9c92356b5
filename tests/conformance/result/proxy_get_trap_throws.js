new Proxy({ a: 1 }, {
  get(target, key) {
    if (key === 'then') return undefined;
    throw new Error('trap');
  },
})
