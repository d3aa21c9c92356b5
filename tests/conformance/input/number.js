[input + 1, typeof input]
