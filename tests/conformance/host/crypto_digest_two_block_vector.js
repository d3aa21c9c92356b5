const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
const m = 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq';
const bytes = new Uint8Array(m.length);
for (let i = 0; i < m.length; i++) bytes[i] = m.charCodeAt(i);
crypto.subtle.digest('SHA-256', bytes).then(hex)
