fetch("http://[::1]/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
