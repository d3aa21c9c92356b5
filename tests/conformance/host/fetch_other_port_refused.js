fetch("https://api.example.com:444/v1/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
