[new Map([[1, 2]]), new Set([1]), new Uint8Array([1, 2]), new String('s'), new Number(3), new Boolean(false), /re/g]
