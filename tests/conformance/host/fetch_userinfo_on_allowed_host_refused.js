fetch("https://user:pw@api.example.com/v1/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
