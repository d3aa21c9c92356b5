'x'.repeat(8)
