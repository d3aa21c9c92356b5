input.a + input.b.length
