for (let i = 0; i < 200000; i++) console.error('e', i);
'done'
