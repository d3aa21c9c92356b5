console.log('%s=%s', 'key', 'value');
console.log('%s!', 'hi');
console.log('%%', 'a');
console.log('%j', 's');
