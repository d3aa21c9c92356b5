fetch("http://api.example.com/v1/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
