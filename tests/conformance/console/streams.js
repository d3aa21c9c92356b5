console.log('log');
console.info('info');
console.debug('debug');
console.warn('warn');
console.error('error');
