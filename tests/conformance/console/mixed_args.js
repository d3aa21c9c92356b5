console.log('n', 1, [1], { a: 'b' }, null);
