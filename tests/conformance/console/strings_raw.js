console.log('it\'s "quoted"\ttab');
console.log('two\nlines');
console.log('');
