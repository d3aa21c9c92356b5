'use strict';
let threw = false;
try { crypto.getRandomValues = () => 'fake'; } catch (e) { threw = e instanceof TypeError; }
Uint8Array.prototype.__proto__.set = function () { throw new Error('tampered'); };
Object.defineProperty(Uint8Array.prototype.__proto__, 'buffer', { get() { throw new Error('tampered'); } });
const a = crypto.getRandomValues(new Uint8Array(16));
[threw, a.length, Object.isFrozen(crypto)]
