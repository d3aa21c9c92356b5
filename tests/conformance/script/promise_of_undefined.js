Promise.resolve(undefined)
