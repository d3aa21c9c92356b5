globalThis.leak = 1;
Object.prototype.polluted = 'yes';
Array.prototype.push = null;
const r = new FinalizationRegistry(() => { globalThis.leakFromFinalizer = 1; });
for (let i = 0; i < 1000; i++) r.register({ i }, i);
'set'
