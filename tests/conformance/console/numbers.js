console.log(1, -0, 0, 1.5, NaN, -Infinity, 1e21, 10n);
