({ then(resolve, reject) { reject(new TypeError('nope')); } })
