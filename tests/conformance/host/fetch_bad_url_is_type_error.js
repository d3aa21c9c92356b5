fetch('http://[::1').then(() => 'fetched', (e) => [e.name, e.message.startsWith('Failed to parse URL')])
