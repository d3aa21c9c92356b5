[Math.random(), Math.random()]
