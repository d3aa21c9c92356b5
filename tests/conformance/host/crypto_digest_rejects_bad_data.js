crypto.subtle.digest('SHA-256', 'abc').then(() => 'resolved', (e) => e.name)
