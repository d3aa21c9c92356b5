'x'.repeat(2000)
