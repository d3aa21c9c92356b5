fetch("https://api.example.com@evil.example/v1/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
