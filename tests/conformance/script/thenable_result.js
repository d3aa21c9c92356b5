({ then(resolve) { resolve(7); } })
