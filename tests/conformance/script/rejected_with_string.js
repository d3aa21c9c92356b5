Promise.reject('bad thing')
