Promise.reject(new RangeError('no'))
