throw new Proxy({}, {
  get() { throw new Error('get'); },
  getPrototypeOf() { throw new Error('proto'); },
  ownKeys() { throw new Error('keys'); },
  getOwnPropertyDescriptor() { throw new Error('desc'); },
});
