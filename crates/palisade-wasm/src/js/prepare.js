// Prepares a fresh guest context before any guest code runs (evaluated once, inside the
// snapshot): installs the host prelude's globals and applies the default policy exactly as the
// native engine does (palisade-quickjs/src/policy.rs), keeping the originals hidden. Returns the
// per-run `apply(changes, allowEval, allowShared, random, now)`.
//
// Called as prepare(M)(P, thrower, det, hostFactory, fetchPart, hostcall): M holds the policy
// messages, P the primordials, thrower(name, kind, message) makes a function that throws the
// policy error, det is DETERMINISTIC_JS's installer, hostFactory the host prelude's factory
// (palisade_core::HOST_JS) and fetchPart its fetch part (HOST_FETCH_JS), both evaluated, and
// hostcall the host door.
(function (M) {
  "use strict";
  return function prepare(P, thrower, det, hostFactory, fetchPart, hostcall) {
    const g = globalThis;
    const defineProperty = Object.defineProperty;
    const getPrototypeOf = Object.getPrototypeOf;

    // QuickJS's own extras go first (its `performance` among them), so that the host prelude
    // may define a global of the same name in Palisade's shape.
    for (let i = 0; i < M.extras.length; i++) delete g[M.extras[i]];
    // QuickJS-NG tags its global object `[object global]`, as Node does; V8's has no tag, and
    // neither does ECMAScript's.
    delete g[Symbol.toStringTag];

    const originals = {};
    const protos = [getPrototypeOf(async function () {}), getPrototypeOf(function* () {}),
      getPrototypeOf(async function* () {})];
    const Function_ = g.Function;
    const functionProto = Function_.prototype;
    originals.eval = g.eval;
    originals.Function = Function_;
    originals.protos = protos;
    const ctors = [];
    for (let i = 0; i < 3; i++) ctors[i] = protos[i].constructor;
    originals.ctors = ctors;
    originals.SharedArrayBuffer = g.SharedArrayBuffer;
    originals.Atomics = g.Atomics;

    // eval and the Function constructors.
    g.eval = thrower("eval", "EvalError", M.code);
    const fake = thrower("Function", "EvalError", M.code);
    // `Function.prototype` as the real constructor has it: neither writable, enumerable nor
    // configurable.
    defineProperty(fake, "prototype", { value: functionProto, writable: false, enumerable: false, configurable: false });
    functionProto.constructor = fake;
    g.Function = fake;
    const names = ["AsyncFunction", "GeneratorFunction", "AsyncGeneratorFunction"];
    for (let i = 0; i < 3; i++) {
      defineProperty(protos[i], "constructor", {
        value: thrower(names[i], "EvalError", M.code), writable: false, enumerable: false, configurable: true,
      });
    }

    // SharedArrayBuffer and Atomics.
    g.SharedArrayBuffer = thrower("SharedArrayBuffer", "TypeError", M.shared);
    const atomics = {};
    for (let i = 0; i < M.atomics.length; i++) {
      atomics[M.atomics[i]] = thrower(M.atomics[i], "TypeError", M.shared);
    }
    g.Atomics = atomics;

    // WebAssembly: QuickJS has none; the stub keeps the global object the same on every engine.
    const wasm = {};
    for (let i = 0; i < M.wasm.length; i++) {
      wasm[M.wasm[i]] = thrower(M.wasm[i], "TypeError", M.wasmDenied);
    }
    // `WebAssembly` and `console` (the glue's) are not enumerable, as in V8 (the `v8` engine).
    defineProperty(g, "WebAssembly", { value: wasm, writable: true, enumerable: false, configurable: true });
    if (Object.getOwnPropertyDescriptor(g, "console") !== undefined) {
      defineProperty(g, "console", { enumerable: false });
    }

    // The host prelude: each of its globals the factory defines becomes a global. After the
    // stubs above, as the native engine installs them (policy::prepare, then install_host), so
    // the global object's own keys come in the same order on both engines.
    const host = hostFactory(P, hostcall, function () { return fetchPart; });
    for (let i = 0; i < M.hostGlobals.length; i++) {
      const v = host[M.hostGlobals[i]];
      if (v !== undefined) {
        defineProperty(g, M.hostGlobals[i], { value: v, writable: true, configurable: true, enumerable: false });
      }
    }
    P.originals = originals;

    // Every global's value stays referenced from here, so a run's deletions (apply's `changes`)
    // only drop a reference: nothing is freed. Freeing a removed global's object graph in every
    // run would write to pages all over the snapshot's heap, each one a page the host must reset
    // after the run.
    const held = [];
    const keys = Reflect.ownKeys(g);
    for (let i = 0; i < keys.length; i++) {
      const d = Object.getOwnPropertyDescriptor(g, keys[i]);
      held.push(d.value, d.get, d.set);
    }
    originals.held = held;

    // The default policy is applied here, once, rather than in every run: deleting a global
    // reshapes the global object, which in every run cost a third of a fresh `1+1` and wrote
    // pages the host then had to reset. What the default removes is kept to be restored.
    const removedByDefault = Object.create(null);
    for (let i = 0; i < M.defaultRemoved.length; i++) {
      const name = M.defaultRemoved[i];
      const d = Object.getOwnPropertyDescriptor(g, name);
      if (d !== undefined) {
        removedByDefault[name] = d;
        delete g[name];
      }
    }
    // Likewise `input`, which the default policy allows: a run then assigns it instead of adding
    // a property (the same attributes an assignment gives a new global).
    if (M.defaultRemoved.indexOf("input") < 0) {
      defineProperty(g, "input", { value: undefined, writable: true, enumerable: true, configurable: true });
    }

    // `changes`: the globals to delete, and as "+name" those to restore, beyond the default.
    return function apply(changes, allowEval, allowShared, random, now) {
      let restored = false;
      for (let i = 0; i < changes.length; i++) {
        const name = changes[i];
        if (name.charCodeAt(0) === 43 /* + */) {
          const d = removedByDefault[name.slice(1)];
          if (d !== undefined) {
            defineProperty(g, name.slice(1), d);
            restored = true;
          }
        } else {
          delete g[name];
        }
      }
      // The native engine defines `input` after a run's host globals: keep it last here too, so
      // the global object's keys come in the same order.
      if (restored) {
        const d = Object.getOwnPropertyDescriptor(g, "input");
        if (d !== undefined) {
          delete g.input;
          defineProperty(g, "input", d);
        }
      }
      if (random !== undefined) {
        g.Math.random = random;
        det(now);
      }
      if (!(allowEval || allowShared)) return;
      if (allowEval) {
        g.eval = originals.eval;
        const f = originals.Function;
        f.prototype.constructor = f;
        g.Function = f;
        for (let i = 0; i < 3; i++) {
          defineProperty(protos[i], "constructor", {
            value: ctors[i], writable: false, enumerable: false, configurable: true,
          });
        }
      }
      if (allowShared) {
        g.SharedArrayBuffer = originals.SharedArrayBuffer;
        g.Atomics = originals.Atomics;
      }
    };
  };
})
