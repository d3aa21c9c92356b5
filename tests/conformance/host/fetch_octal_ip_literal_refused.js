fetch("http://0177.0.0.1/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
