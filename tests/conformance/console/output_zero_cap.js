console.log('x');
7
