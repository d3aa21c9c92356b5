const ok = crypto.getRandomValues(new Uint8Array(65536)).length;
let name;
try { crypto.getRandomValues(new Uint16Array(32769)); } catch (e) { name = e.name; }
[ok, name]
