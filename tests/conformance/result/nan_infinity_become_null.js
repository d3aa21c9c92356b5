[NaN, Infinity, -Infinity, -0, 1.5]
