fetch("http://2130706433/").then(() => 'fetched', (e) => [e instanceof TypeError, e.message])
