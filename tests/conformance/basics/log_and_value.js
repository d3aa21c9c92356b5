console.log('hello');
40 + 2
