console.log('before');
console.error('err before');
while (true) {}
