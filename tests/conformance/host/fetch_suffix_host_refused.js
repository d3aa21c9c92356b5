fetch("https://api.example.com.evil/v1/x").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
