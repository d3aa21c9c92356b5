// Palisade's trusted prelude for the v8 engine. Evaluated in every fresh context before any guest
// code, it captures the intrinsics it needs, installs console, the default policy and the host
// prelude, and returns `init(notify)`, which returns `dispatch`: the only entry point the host
// calls. `dispatch` reads its command from `this` (a JSON string) and returns a string.
//
// Guest values never cross to the host as objects: results, errors and console lines are turned
// into strings here, with intrinsics captured before the guest ran. Console lines, denials, host
// calls and deterministic time/randomness go through a SharedArrayBuffer mailbox shared with the
// host: JS writes a message, calls `notify()` (a host callback that runs synchronously), and reads
// the reply from the same memory.
(function (SPEC, TEXT, consoleFactory, hostFactory, detFactory) {
  "use strict";
  const G = globalThis;
  const P = {};
  for (let i = 0; i < SPEC.length; i++) {
    const key = SPEC[i][0];
    const parts = SPEC[i][1].split(".");
    let holder = G;
    for (let j = 0; j < parts.length - 1; j++) {
      holder = parts[j] === "__proto__" ? Object.getPrototypeOf(holder) : holder[parts[j]];
    }
    const last = parts[parts.length - 1];
    P[key] = SPEC[i][2] === "get" ? Object.getOwnPropertyDescriptor(holder, last).get : holder[last];
  }
  const apply = Reflect.apply;
  const ownKeys = Reflect.ownKeys;
  const defineProperty = Object.defineProperty;
  const getPrototypeOf = Object.getPrototypeOf;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const preventExtensions = Object.preventExtensions;
  const arraySort = Array.prototype.sort;
  const create = Object.create;
  const freeze = Object.freeze;
  const JSONparse = JSON.parse;
  const JSONstringify = JSON.stringify;
  const OrigPromise = Promise;
  const promiseThen = Promise.prototype.then;
  const origEval = G.eval;
  const fromCharCode = String.fromCharCode;
  const call = Function.prototype.call;
  const fbind = Function.prototype.bind;
  const cc = call.bind(String.prototype.charCodeAt);
  const sindexOf = call.bind(String.prototype.indexOf);
  const sslice = call.bind(String.prototype.slice);
  const hasOwn = call.bind(Object.prototype.hasOwnProperty);
  const abByteLength = call.bind(Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get);
  const isError = Error.isError;
  const StringCtor = String;
  const NumberCtor = Number;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const EvalErrorCtor = EvalError;
  const SyntaxErrorCtor = SyntaxError;
  const U8 = Uint8Array;
  const U16 = Uint16Array;
  const I32 = Int32Array;
  const AB = ArrayBuffer;
  const toStringTag = Symbol.toStringTag;

  // ---- the mailbox -------------------------------------------------------------------------
  const DATA = 65536;
  const UNITS = DATA / 2;
  const box = new SharedArrayBuffer(64 + DATA);
  const hdr = new I32(box, 0, 16);
  const u16 = new U16(box, 64, UNITS);
  let notify = null;
  const OP_APPEND = 1, OP_COMMIT = 2, OP_PULL = 3;
  const TAG_STDOUT = 1, TAG_STDERR = 2, TAG_DENIED = 3, TAG_SETTLED = 4, TAG_HOST = 5,
    TAG_RANDOM = 6, TAG_NOW = 7;

  function put(s, off, n) {
    for (let i = 0; i < n; i++) u16[i] = cc(s, off + i);
  }

  // Sends one message; returns the host's reply string, or undefined when there is none.
  function send(tag, s) {
    const n = s.length;
    let off = 0;
    while (n - off > UNITS) {
      put(s, off, UNITS);
      hdr[0] = OP_APPEND;
      hdr[1] = tag;
      hdr[2] = UNITS;
      notify();
      off += UNITS;
    }
    put(s, off, n - off);
    hdr[0] = OP_COMMIT;
    hdr[1] = tag;
    hdr[2] = n - off;
    hdr[3] = -1;
    notify();
    const total = hdr[3];
    if (total < 0) return undefined;
    let out = "";
    let got = 0;
    for (;;) {
      const c = hdr[2];
      for (let i = 0; i < c; i++) out += fromCharCode(u16[i]);
      got += c;
      if (got >= total || c <= 0) return out;
      hdr[0] = OP_PULL;
      hdr[1] = got;
      notify();
    }
  }

  function denied(msg) {
    send(TAG_DENIED, msg);
    return msg;
  }

  // ---- console -----------------------------------------------------------------------------
  const format = consoleFactory(P);
  function line(tag, args) {
    // hdr[5] is set by the host once the output cap is reached: the rest would be dropped.
    if (hdr[5] !== 0) return;
    const n = args.length;
    let plain = !(n > 1 && typeof args[0] === "string" && sindexOf(args[0], "%") !== -1);
    for (let i = 0; plain && i < n; i++) if (typeof args[i] !== "string") plain = false;
    let s = "";
    if (plain) {
      for (let i = 0; i < n; i++) s += (i ? " " : "") + args[i];
    } else {
      s = format(args);
    }
    send(tag, StringCtor(s));
  }
  const consoleObj = {
    log(...args) { line(TAG_STDOUT, args); },
    info(...args) { line(TAG_STDOUT, args); },
    debug(...args) { line(TAG_STDOUT, args); },
    warn(...args) { line(TAG_STDERR, args); },
    error(...args) { line(TAG_STDERR, args); },
  };
  G.console = consoleObj;

  // V8's globals beyond what the QuickJS engines have: gone, so every engine offers the same
  // global object, and so Temporal.Now and Intl's date formatting cannot read the real clock
  // in deterministic mode.
  delete G.Intl;
  delete G.Temporal;

  // ---- the default policy ------------------------------------------------------------------
  // A denial stub looks like the QuickJS engines' native one: a bound function, so it has no
  // own `prototype` and its source text is `[native code]`, not this prelude's. Its target's
  // `prototype` decides `instanceof` (a bound function defers to its target): none, so
  // `x instanceof SharedArrayBuffer` throws as on QuickJS, except where `proto` is given.
  function thrower(name, Ctor, msg, proto) {
    const target = function () {
      throw new Ctor(denied(msg));
    };
    target.prototype = proto;
    const f = apply(fbind, target, [undefined]);
    defineProperty(f, "name", { value: name, writable: false, enumerable: false, configurable: true });
    return f;
  }
  const FunctionOrig = G.Function;
  const functionProto = FunctionOrig.prototype;
  const protos = [
    getPrototypeOf(async function () {}),
    getPrototypeOf(function* () {}),
    getPrototypeOf(async function* () {}),
  ];
  const ctors = [protos[0].constructor, protos[1].constructor, protos[2].constructor];
  const originals = {
    SharedArrayBuffer: G.SharedArrayBuffer,
    Atomics: G.Atomics,
    WebAssembly: G.WebAssembly,
  };
  G.eval = thrower("eval", EvalErrorCtor, TEXT.code);
  const fakeFunction = thrower("Function", EvalErrorCtor, TEXT.code, functionProto);
  // `Function.prototype` as the real constructor has it: neither writable, enumerable nor
  // configurable (a function expression's own `prototype` is writable).
  defineProperty(fakeFunction, "prototype", { value: functionProto, writable: false });
  functionProto.constructor = fakeFunction;
  G.Function = fakeFunction;
  const ctorNames = ["AsyncFunction", "GeneratorFunction", "AsyncGeneratorFunction"];
  for (let i = 0; i < 3; i++) {
    defineProperty(protos[i], "constructor", {
      value: thrower(ctorNames[i], EvalErrorCtor, TEXT.code),
      writable: false,
      enumerable: false,
      configurable: true,
    });
  }
  G.SharedArrayBuffer = thrower("SharedArrayBuffer", TypeErrorCtor, TEXT.shared);
  const atomics = {};
  for (let i = 0; i < TEXT.atomics.length; i++) {
    atomics[TEXT.atomics[i]] = thrower(TEXT.atomics[i], TypeErrorCtor, TEXT.shared);
  }
  G.Atomics = atomics;
  const wasm = {};
  for (let i = 0; i < TEXT.wasm.length; i++) {
    wasm[TEXT.wasm[i]] = thrower(TEXT.wasm[i], TypeErrorCtor, TEXT.wasmDenied);
  }
  G.WebAssembly = wasm;

  // ---- the host prelude --------------------------------------------------------------------
  function hostcall(op, arg, bytes) {
    let payload = StringCtor(op) + "\u0000" + StringCtor(arg) + "\u0000";
    if (bytes === undefined) {
      payload += "u";
    } else {
      payload += "b";
      const n = abByteLength(bytes);
      const view = new U8(bytes, 0, n);
      let chunk = "";
      for (let i = 0; i < n; i++) chunk += fromCharCode(view[i]);
      payload += chunk;
    }
    const reply = send(TAG_HOST, payload);
    const kind = reply[0];
    const body = sslice(reply, 1);
    if (kind === "s") return body;
    if (kind === "b") {
      const ab = new AB(body.length);
      const v = new U8(ab);
      for (let i = 0; i < body.length; i++) v[i] = cc(body, i);
      return ab;
    }
    if (kind === "e") {
      const at = sindexOf(body, "\u0000");
      const err = new ErrorCtor(sslice(body, at + 1));
      defineProperty(err, "name", { value: sslice(body, 0, at), writable: true, enumerable: false, configurable: true });
      throw err;
    }
    return undefined;
  }
  const hostObj = hostFactory(P, hostcall);
  const hostKeys = ownKeys(hostObj);
  for (let i = 0; i < hostKeys.length; i++) {
    defineProperty(G, hostKeys[i], { value: hostObj[hostKeys[i]], writable: true, enumerable: false, configurable: true });
  }

  // ---- describing thrown values -------------------------------------------------------------
  function getStr(o, k) {
    try {
      const v = o[k];
      return typeof v === "string" ? v : undefined;
    } catch (e) {
      return undefined;
    }
  }
  function describe(e, parse) {
    const d = create(null);
    d.name = null;
    d.message = "";
    d.stack = null;
    d.parse = parse === true;
    if ((typeof e === "object" && e !== null) || typeof e === "function") {
      let isErr = false;
      try {
        isErr = isError(e);
      } catch (x) {
        isErr = false;
      }
      const name = getStr(e, "name");
      const message = getStr(e, "message");
      if (isErr || (name !== undefined && message !== undefined)) {
        d.name = name === undefined ? null : name;
        d.message = message === undefined ? "" : message;
        const stack = getStr(e, "stack");
        d.stack = stack === undefined ? null : stack;
        return JSONstringify(d);
      }
    }
    try {
      d.message = StringCtor(format([e]));
    } catch (x) {
      d.message = "<unprintable thrown value>";
    }
    return JSONstringify(d);
  }

  // ---- modules ------------------------------------------------------------------------------
  let table = create(null); // normalized name -> wrapper source
  let cache = create(null); // normalized name -> its entry (see `load`)
  let mainName = "";
  function resolve(importer, spec) {
    const rel = sslice(spec, 0, 2) === "./" || sslice(spec, 0, 3) === "../";
    if (!rel) return spec;
    // Not an array: an earlier module may have put setters on Array.prototype's indices.
    const parts = create(null);
    let n = 0;
    if (importer !== null) {
      let seg = "";
      for (let i = 0; i < importer.length; i++) {
        if (importer[i] === "/") {
          parts[n++] = seg;
          seg = "";
        } else seg += importer[i];
      }
    }
    let seg = "";
    for (let i = 0; i <= spec.length; i++) {
      if (i === spec.length || spec[i] === "/") {
        if (seg === "..") {
          if (n === 0) return null;
          n--;
        } else if (seg !== "." && seg !== "") {
          parts[n++] = seg;
        }
        seg = "";
      } else seg += spec[i];
    }
    let out = "";
    for (let i = 0; i < n; i++) out += (i ? "/" : "") + parts[i];
    return out;
  }
  // What the module wrappers call (`$_m`; see modules.rs).
  const moduleHelpers = freeze({
    // An export: a live getter, configurable until `f` seals the namespace.
    e(ns, name, get) {
      defineProperty(ns, name, { get, enumerable: true, configurable: true });
    },
    // `export * from`: every name but `default`; a name two stars give is ambiguous, and
    // neither is kept (a module's own export wins over any star).
    s(ns, from) {
      const keys = ownKeys(from);
      const entry = entryOf(ns);
      const starred = entry === undefined ? create(null) : entry.starred;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (k === "default" || typeof k !== "string") continue;
        const seen = starred[k];
        if (seen === undefined) {
          if (hasOwn(ns, k)) continue; // the module's own export
          starred[k] = from;
          defineProperty(ns, k, { get: () => from[k], enumerable: true, configurable: true });
        } else if (seen !== null && seen !== from) {
          // Ambiguous: two stars give the name.
          delete ns[k];
          starred[k] = null;
        }
      }
    },
    // Link-time check: the module behind `ns` exports every one of `names`.
    c(ns, names) {
      for (let i = 0; i < names.length; i++) {
        if (!hasOwn(ns, names[i])) {
          const entry = entryOf(ns);
          const module = entry === undefined ? "" : entry.name;
          throw new SyntaxErrorCtor("Could not find export '" + names[i] + "' in module '" + module + "'");
        }
      }
    },
    // An anonymous default function or class is called `default`.
    d(v) {
      if (typeof v === "function") {
        const n = getOwnPropertyDescriptor(v, "name");
        if (n !== undefined && n.value === "$_dflt") {
          defineProperty(v, "name", { value: "default", writable: false, enumerable: false, configurable: true });
        }
      }
      return v;
    },
    // The namespace once every export is in: keys sorted, as a module namespace's are, and
    // nothing can be added or removed.
    f(ns) {
      const keys = ownKeys(ns);
      // Elements defined, not assigned (an earlier module may have put setters on
      // Array.prototype), and sorted with the captured sort: code-unit order, as a namespace's.
      const names = [];
      let n = 0;
      for (let i = 0; i < keys.length; i++) {
        if (typeof keys[i] === "string") {
          defineProperty(names, n++, { value: keys[i], writable: true, enumerable: true, configurable: true });
        }
      }
      apply(arraySort, names, []);
      const getters = create(null);
      for (let i = 0; i < n; i++) {
        getters[i] = getOwnPropertyDescriptor(ns, names[i]).get;
        delete ns[names[i]];
      }
      for (let i = 0; i < n; i++) {
        defineProperty(ns, names[i], { get: getters[i], enumerable: true, configurable: false });
      }
      preventExtensions(ns);
    },
  });
  // The cache entry whose namespace is `ns`.
  function entryOf(ns) {
    const names = ownKeys(cache);
    for (let i = 0; i < names.length; i++) if (cache[names[i]].ns === ns) return cache[names[i]];
    return undefined;
  }
  // Loads a module once: its cache entry keeps the namespace, the module that first imported it
  // (`parent`, to tell a cycle) and the promise of its evaluation.
  function load(name, parent) {
    const cached = cache[name];
    if (cached !== undefined) return cached.done;
    const fn = origEval(table[name]);
    const ns = create(null);
    defineProperty(ns, toStringTag, { value: "Module" });
    const entry = create(null);
    entry.name = name;
    entry.ns = ns;
    entry.parent = parent;
    entry.done = null;
    entry.starred = create(null);
    cache[name] = entry;
    const running = fn((spec) => importFrom(name, spec), ns, moduleHelpers);
    entry.done = apply(promiseThen, running, [() => ns]);
    return entry.done;
  }
  // Whether `name` is `importer` or one of the modules whose evaluation is waiting on it.
  function onChain(importer, name) {
    for (let m = importer; m !== undefined; m = cache[m] === undefined ? undefined : cache[m].parent) {
      if (m === name) return true;
    }
    return false;
  }
  function importFrom(importer, spec) {
    return new OrigPromise((res, rej) => {
      const s = StringCtor(spec);
      const r = resolve(importer === mainName ? null : importer, s);
      if (r === null || !hasOwn(table, r) || r === mainName) {
        rej(new TypeErrorCtor(denied(TEXT.notFound[0] + s + TEXT.notFound[1] + importer + TEXT.notFound[2])));
        return;
      }
      // A cycle: the module is still evaluating, waiting on this one. Its namespace already has
      // its exports (the prologue defines them first); their values may not be set yet.
      const entry = cache[r];
      if (entry !== undefined && onChain(importer, r)) {
        res(entry.ns);
        return;
      }
      try {
        apply(promiseThen, load(r, importer), [res, rej]);
      } catch (e) {
        rej(e);
      }
    });
  }
  // Dynamic import() in a script (rewritten by the host to this function).
  function scriptImport(spec) {
    return importFrom(mainName, spec);
  }

  // ---- running --------------------------------------------------------------------------------
  let state = null;
  function ok(v) {
    state = { k: "ok", v };
    send(TAG_SETTLED, "");
  }
  function fail(e) {
    state = { k: "e", e, parse: false };
    send(TAG_SETTLED, "");
  }
  function settle(v) {
    if ((typeof v === "object" && v !== null) || typeof v === "function") {
      try {
        apply(promiseThen, v, [ok, fail]);
        return;
      } catch (e) {
        // not a promise
      }
      let then;
      try {
        then = v.then;
      } catch (e) {
        fail(e);
        return;
      }
      if (typeof then === "function") {
        const p = new OrigPromise((res) => res(v));
        apply(promiseThen, p, [ok, fail]);
        return;
      }
    }
    ok(v);
  }

  function begin(cfg) {
    for (let i = 0; i < cfg.remove.length; i++) delete G[cfg.remove[i]];
    if (cfg.allowEval) {
      G.eval = origEval;
      functionProto.constructor = FunctionOrig;
      G.Function = FunctionOrig;
      for (let i = 0; i < 3; i++) {
        defineProperty(protos[i], "constructor", { value: ctors[i], writable: false, enumerable: false, configurable: true });
      }
    }
    if (cfg.allowShared) {
      G.SharedArrayBuffer = originals.SharedArrayBuffer;
      G.Atomics = originals.Atomics;
    }
    if (cfg.allowWasm) G.WebAssembly = originals.WebAssembly;
    if (cfg.det) {
      G.Math.random = { random() { return NumberCtor(send(TAG_RANDOM, "")); } }.random;
      detFactory({ now() { return NumberCtor(send(TAG_NOW, "")); } }.now);
    }
    if (cfg.dynImport) {
      defineProperty(G, cfg.dynImport, { value: scriptImport, writable: false, enumerable: false, configurable: true });
    }
    const input = JSONparse(cfg.input);
    if (cfg.inputGlobal) G.input = input;
    return input;
  }

  function run(cfg) {
    mainName = cfg.file;
    table = cfg.modules;
    cache = create(null);
    const input = begin(cfg);
    if (!cfg.module) {
      let v;
      try {
        v = origEval(cfg.src);
      } catch (e) {
        state = { k: "e", e, parse: true };
        return "s";
      }
      settle(v);
      return "s";
    }
    let p;
    try {
      p = load(cfg.file, undefined);
    } catch (e) {
      state = { k: "e", e, parse: true };
      return "s";
    }
    apply(promiseThen, p, [
      (ns) => {
        let d;
        try {
          d = ns.default;
          if (typeof d === "function") d = d(input);
        } catch (e) {
          fail(e);
          return;
        }
        settle(d);
      },
      fail,
    ]);
    return "s";
  }

  function poll() {
    if (state === null) return "p";
    if (state.k === "e") return "e" + describe(state.e, state.parse);
    let json;
    try {
      json = JSONstringify(state.v);
    } catch (e) {
      return "n" + describe(e, false);
    }
    return json === undefined ? "o" : "o" + json;
  }

  return function init(n) {
    notify = n;
    return function dispatch() {
      const cmd = JSONparse(this);
      switch (cmd.op) {
        case "mailbox":
          return box;
        case "run":
          return run(cmd);
        case "poll":
          return poll();
        default:
          return "?";
      }
    };
  };
})
