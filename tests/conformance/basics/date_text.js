// A date's own text is the same on every engine: V8 adds its zone's ICU name, which Palisade's
// prelude drops, and keeps Temporal's way in, which it removes.
const dates = [0, Date.UTC(2024, 0, 2, 15, 4, 5), -62198755200000, 8.64e15, NaN].map((t) => new Date(t));
[
  dates.map((d) => d.toString()),
  dates.map((d) => d.toTimeString()),
  dates.map((d) => d.toDateString()),
  [String(dates[1]), `${dates[1]}`, dates[1] + '', dates[1].toUTCString(), dates[1].toISOString()],
  'toTemporalInstant' in Date.prototype,
  (() => { try { Date.prototype.toString.call({}); return 'no error'; } catch (e) { return e.name; } })(),
]
