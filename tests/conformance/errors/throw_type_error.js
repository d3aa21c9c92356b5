throw new TypeError('x');
