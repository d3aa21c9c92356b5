console.log(new Error('em'));
