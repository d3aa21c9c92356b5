input === false
