fetch("https://BÜCHER.example/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
