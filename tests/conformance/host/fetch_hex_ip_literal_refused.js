fetch("http://0x7f000001/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
