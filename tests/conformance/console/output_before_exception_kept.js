console.log('before');
console.error('oops');
throw new Error('after output');
