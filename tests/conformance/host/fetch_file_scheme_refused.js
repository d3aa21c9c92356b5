fetch("file:///etc/passwd").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
