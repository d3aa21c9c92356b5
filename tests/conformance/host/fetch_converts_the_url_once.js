let calls = 0;
const url = { toString() { calls++; return calls === 1 ? 'https://evil.example/' : 'https://api.example.com/v1/'; } };
fetch(url).then(() => 'fetched', (e) => [calls, e.message.includes('https://evil.example/')])
