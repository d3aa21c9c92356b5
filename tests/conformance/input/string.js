input.toUpperCase()
