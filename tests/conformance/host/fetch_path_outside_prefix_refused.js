fetch("https://api.example.com/v2/users").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
