console.log('hello');
'ok'
