new Proxy({ a: 1, b: 2 }, {
  get(target, key) {
    return typeof key === 'string' && key in target ? target[key] * 10 : target[key];
  },
})
