const h = new Headers({ 'X-B': '2', 'x-a': ' 1 ' });
h.append('X-B', '3');
h.set('Content-Type', 'text/plain');
const out = [h.get('x-b'), h.get('X-A'), h.has('content-type'), [...h], h.get('missing')];
h.delete('x-b');
let bad;
try { h.set('bad name', 'v'); } catch (e) { bad = e.name; }
out.concat([[...h.keys()], bad, String(h)])
