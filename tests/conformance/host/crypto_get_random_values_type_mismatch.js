const names = [];
for (const v of [new Float64Array(1), new DataView(new ArrayBuffer(4)), [1, 2], {}]) {
  try { crypto.getRandomValues(v); names.push('ok'); } catch (e) { names.push(e.name); }
}
names
