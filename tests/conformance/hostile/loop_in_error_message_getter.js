const e = new Error('x');
Object.defineProperty(e, 'message', { get() { while (true) {} } });
throw e;
