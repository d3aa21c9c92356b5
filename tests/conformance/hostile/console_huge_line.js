console.log('x'.repeat(1000000));
1
