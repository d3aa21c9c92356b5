({ get x() { throw 'not an error'; } })
