for (let i = 0; i < 200000; i++) console.log('flood line ' + i);
'done'
