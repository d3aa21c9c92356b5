crypto.subtle.digest('MD5', new Uint8Array(1)).then(() => 'resolved', (e) => [e.name, e instanceof Error])
