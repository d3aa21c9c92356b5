'x'.repeat(1100000)
