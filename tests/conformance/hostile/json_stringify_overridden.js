JSON.stringify = () => '"hacked"';
Object.defineProperty(JSON, 'parse', { value: () => 'hacked' });
({ a: 1 })
