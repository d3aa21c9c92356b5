fetch("http://[::ffff:127.0.0.1]/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
