// Globals some engines add beyond ECMAScript and Palisade's host globals: absent on every engine,
// so the global object is the same everywhere (and, on V8, Temporal.Now and Intl cannot read the
// real clock in deterministic mode).
[typeof Temporal, typeof Intl, typeof print, typeof scriptArgs, typeof std, typeof os, typeof setTimeout, typeof require, typeof process]
