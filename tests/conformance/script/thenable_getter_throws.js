({ get then() { throw new Error('then getter'); } })
