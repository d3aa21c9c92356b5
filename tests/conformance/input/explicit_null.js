input === null
