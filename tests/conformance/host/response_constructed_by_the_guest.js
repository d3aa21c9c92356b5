const r = new Response('{"a":1}', { status: 201, headers: { 'content-type': 'application/json' } });
(async () => {
  const v = await r.json();
  let again;
  try { await r.text(); } catch (e) { again = e.name; }
  const b = await new Response('hé').arrayBuffer();
  return [r.status, r.ok, r.headers.get('content-type'), v, r.bodyUsed, again, b.byteLength];
})()
