// Locale-sensitive built-ins give the same text on every engine. The QuickJS engines carry no
// locale data; V8 formats and compares by ICU's unless Palisade's prelude says otherwise.
const d = new Date(Date.UTC(2024, 0, 2, 15, 4, 5));
[
  (1234.5).toLocaleString(),
  (1234.5).toLocaleString('de-DE', { style: 'currency', currency: 'EUR' }),
  (-0.000001).toLocaleString(),
  [1234.5, 'a', null, 7n].toLocaleString(),
  (12345n).toLocaleString(),
  Object.hasOwn(BigInt.prototype, 'toLocaleString'),
  d.toLocaleString(),
  d.toLocaleDateString('en-GB'),
  d.toLocaleTimeString(),
  new Date(Date.UTC(2024, 0, 2, 0, 30)).toLocaleTimeString(),
  new Date(-62198755200000).toLocaleDateString(),
  new Date(NaN).toLocaleString(),
  ['b', 'a', 'C', 'é', 'e\u0301z', '\u{1F600}', '\uFFFF'].sort((x, y) => x.localeCompare(y)),
  ['a'.localeCompare('a'), 'a'.localeCompare('ab'), 'ab'.localeCompare('a'), 'e\u0301'.localeCompare('é')],
  'I'.toLocaleLowerCase('tr') + 'i'.toLocaleUpperCase('tr'),
  [Number.prototype.toLocaleString.length, String.prototype.localeCompare.length, Date.prototype.toLocaleString.name],
  (() => { try { Date.prototype.toLocaleString.call({}); return 'no error'; } catch (e) { return e.name; } })(),
  (() => { try { String.prototype.localeCompare.call(null, 'a'); return 'no error'; } catch (e) { return e.name; } })(),
]
