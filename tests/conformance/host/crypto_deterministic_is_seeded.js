const a = crypto.getRandomValues(new Uint8Array(8));
[Array.from(a), crypto.randomUUID()]
