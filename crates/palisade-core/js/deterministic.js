// Deterministic mode's clock: replaces the global Date so that `new Date()`, `Date()` and
// `Date.now()` read the host's deterministic clock (`now`, a function returning milliseconds).
// Every other use of Date is unchanged. Evaluated before any guest code runs.
(function (now) {
  "use strict";
  const RealDate = globalThis.Date;
  const construct = Reflect.construct;
  const defineProperty = Object.defineProperty;
  // Not named `Date`: a declaration would shadow the real one inside this function.
  function DeterministicDate(...args) {
    if (new.target === undefined) return construct(RealDate, [now()], RealDate).toString();
    return construct(RealDate, args.length === 0 ? [now()] : args, new.target);
  }
  const Date = DeterministicDate;
  defineProperty(Date, "name", { value: "Date" });
  defineProperty(Date, "length", { value: 7 });
  defineProperty(Date, "prototype", { value: RealDate.prototype, writable: false });
  defineProperty(RealDate.prototype, "constructor", { value: Date, writable: true, configurable: true });
  defineProperty(Date, "now", { value: function now_() { return now(); }, writable: true, configurable: true });
  defineProperty(Date.now, "name", { value: "now" });
  defineProperty(Date, "parse", { value: RealDate.parse, writable: true, configurable: true });
  defineProperty(Date, "UTC", { value: RealDate.UTC, writable: true, configurable: true });
  defineProperty(globalThis, "Date", { value: Date, writable: true, configurable: true });
})
