Promise.reject(new Error('x'));
1
