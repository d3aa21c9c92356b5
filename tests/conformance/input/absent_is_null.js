[input === null, typeof input]
