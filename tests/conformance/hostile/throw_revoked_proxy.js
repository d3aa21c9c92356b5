const p = Proxy.revocable({}, {});
p.revoke();
throw p.proxy;
