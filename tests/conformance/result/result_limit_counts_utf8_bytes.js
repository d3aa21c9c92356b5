'\u00e9'.repeat(4)
