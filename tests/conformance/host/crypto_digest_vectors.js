const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
const abc = new Uint8Array([0x61, 0x62, 0x63]);
(async () => [
  hex(await crypto.subtle.digest('SHA-1', abc)),
  hex(await crypto.subtle.digest('SHA-256', abc)),
  hex(await crypto.subtle.digest({ name: 'sha-384' }, abc.buffer)),
  hex(await crypto.subtle.digest('SHA-512', new DataView(abc.buffer))),
  hex(await crypto.subtle.digest('SHA-256', new Uint8Array(0))),
])()
