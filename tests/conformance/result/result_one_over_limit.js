'x'.repeat(9)
