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
  const genNext = Object.getPrototypeOf(function* () {}).prototype.next;
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
  // Lone surrogates become U+FFFD, as the QuickJS engines give them (palisade_core::text).
  const wellFormed = call.bind(String.prototype.toWellFormed);
  const hasOwn = call.bind(Object.prototype.hasOwnProperty);
  const abByteLength = call.bind(Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get);
  const isError = Error.isError;
  const StringCtor = String;
  const NumberCtor = Number;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const EvalErrorCtor = EvalError;
  const SyntaxErrorCtor = SyntaxError;
  const ProxyCtor = Proxy;
  const ReferenceErrorCtor = ReferenceError;
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

  // The first `n` elements of a typed array as a string of those code units, a flat string per
  // 8,192 units: one `+=` per unit made a rope of n one-unit strings (about 32 bytes each), so a
  // 5 MB fetch body needed some 160 MB and hit the memory limit.
  // `chunk` has all 8,192 elements as its own properties from before guest code ran: writing
  // one, and fromCharCode reading them and its length, never reaches a prototype (a fresh array
  // `a[i] = x` would run a setter the guest put on Array.prototype, inside the mailbox).
  const chunk = JSONparse("[" + apply(String.prototype.repeat, "0,", [8191]) + "0]");
  function units(view, n) {
    let s = "";
    for (let at = 0; at < n; at += 8192) {
      const m = n - at < 8192 ? n - at : 8192;
      for (let i = 0; i < m; i++) chunk[i] = view[at + i];
      const all = apply(fromCharCode, undefined, chunk);
      s += m === 8192 ? all : sslice(all, 0, m);
    }
    return s;
  }

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
      out += units(u16, c);
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

  // Locale-sensitive methods as the QuickJS engines have them, which carry no locale data.
  // V8's format and compare by ICU's: `(1234.5).toLocaleString()` was "1,234.5" against
  // "1234.5", and a sort by `localeCompare` put "a" before "C" against after it. So, as in
  // QuickJS-NG:
  // - a number formats as `toString()` does, and BigInt has no `toLocaleString` of its own;
  // - `localeCompare` compares code points after NFC normalization;
  // - the case mappings ignore a locale;
  // - a date formats as "MM/DD/YYYY, hh:mm:ss AM" in local time (UTC in every worker).
  // Locale and option arguments are ignored, as there. A date's own text drops V8's zone name.
  {
    const numToString = call.bind(Number.prototype.toString);
    const toLower = call.bind(String.prototype.toLowerCase);
    const toUpper = call.bind(String.prototype.toUpperCase);
    const normalize = call.bind(String.prototype.normalize);
    const codePointAt = call.bind(String.prototype.codePointAt);
    const DP = Date.prototype;
    const getTime = call.bind(DP.getTime);
    const year = call.bind(DP.getFullYear);
    const month = call.bind(DP.getMonth);
    const day = call.bind(DP.getDate);
    const hours = call.bind(DP.getHours);
    const minutes = call.bind(DP.getMinutes);
    const seconds = call.bind(DP.getSeconds);
    const method = (holder, value) =>
      defineProperty(holder, value.name, dataDesc(value, true, false, true));
    // C's "%0<width>d": the sign, then zeros up to `width` characters in all.
    const pad = (n, width) => {
      let digits = numToString(n < 0 ? -n : n);
      while (digits.length < width - (n < 0 ? 1 : 0)) digits = "0" + digits;
      return n < 0 ? "-" + digits : digits;
    };
    const datePart = (d) => {
      const y = year(d);
      return `${pad(month(d) + 1, 2)}/${pad(day(d), 2)}/${pad(y, 4 + (y < 0 ? 1 : 0))}`;
    };
    const timePart = (d) => {
      const h = hours(d);
      return `${pad(((h + 11) % 12) + 1, 2)}:${pad(minutes(d), 2)}:${pad(seconds(d), 2)} ${h < 12 ? "A" : "P"}M`;
    };
    // `getTime` checks that `this` is a Date, as QuickJS does before formatting.
    const dateString = (d, part) => {
      const t = getTime(d);
      if (t !== t) return "Invalid Date";
      return part === 1 ? datePart(d) : part === 2 ? timePart(d) : `${datePart(d)}, ${timePart(d)}`;
    };
    const m = {
      toLocaleString() {
        return numToString(this);
      },
      localeCompare(that) {
        if (this === undefined || this === null) {
          throw new TypeErrorCtor("String.prototype.localeCompare called on null or undefined");
        }
        const a = normalize(`${this}`, "NFC");
        const b = normalize(`${that}`, "NFC");
        let i = 0;
        let j = 0;
        while (i < a.length && j < b.length) {
          const x = codePointAt(a, i);
          const y = codePointAt(b, j);
          if (x !== y) return x < y ? -1 : 1;
          i += x > 0xffff ? 2 : 1;
          j += y > 0xffff ? 2 : 1;
        }
        const restA = a.length - i;
        const restB = b.length - j;
        return restA === restB ? 0 : restA < restB ? -1 : 1;
      },
      toLocaleLowerCase() {
        return toLower(this);
      },
      toLocaleUpperCase() {
        return toUpper(this);
      },
    };
    const d = {
      toLocaleString() {
        return dateString(this, 3);
      },
      toLocaleDateString() {
        return dateString(this, 1);
      },
      toLocaleTimeString() {
        return dateString(this, 2);
      },
    };
    method(Number.prototype, m.toLocaleString);
    method(String.prototype, m.localeCompare);
    method(String.prototype, m.toLocaleLowerCase);
    method(String.prototype, m.toLocaleUpperCase);
    method(DP, d.toLocaleString);
    method(DP, d.toLocaleDateString);
    method(DP, d.toLocaleTimeString);
    delete BigInt.prototype.toLocaleString;
    // V8 ends a date's `toString()` and `toTimeString()` with the zone's ICU name,
    // " (Coordinated Universal Time)"; QuickJS-NG stops at the offset ("GMT+0000"), and the
    // rest is the same text.
    const dateToString = call.bind(DP.toString);
    const timeToString = call.bind(DP.toTimeString);
    const lastIndexOf = call.bind(String.prototype.lastIndexOf);
    const noZoneName = (text) => {
      const at = lastIndexOf(text, " (");
      return at < 0 ? text : sslice(text, 0, at);
    };
    const z = {
      toString() {
        return noZoneName(dateToString(this));
      },
      toTimeString() {
        return noZoneName(timeToString(this));
      },
    };
    method(DP, z.toString);
    method(DP, z.toTimeString);
    // Temporal is gone (above), and QuickJS has no way into it either.
    delete DP.toTemporalInstant;
  }

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
    // `arg` is length-prefixed: it may hold NULs (a secret name, a digest algorithm).
    const a = StringCtor(arg);
    let payload = StringCtor(op) + "\u0000" + a.length + "\u0000" + a;
    if (bytes === undefined) {
      payload += "u";
    } else {
      const n = abByteLength(bytes);
      payload += "b" + units(new U8(bytes, 0, n), n);
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
        d.name = name === undefined ? null : wellFormed(name);
        d.message = message === undefined ? "" : wellFormed(message);
        const stack = getStr(e, "stack");
        d.stack = stack === undefined ? null : wellFormed(stack);
        return JSONstringify(d);
      }
    }
    try {
      d.message = wellFormed(StringCtor(format([e])));
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
    // A module registers how to read each binding it exports (the namespace asks).
    e(slots, name, get) {
      slots[name] = get;
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
  });
  // A data-property descriptor with no prototype (guest code may have put accessors named
  // `get` or `set` on Object.prototype).
  function dataDesc(value, writable, enumerable, configurable) {
    const d = create(null);
    d.value = value;
    d.writable = writable;
    d.enumerable = enumerable;
    d.configurable = configurable;
    return d;
  }
  // A module namespace object: a proxy whose target holds the export names as writable,
  // non-configurable data properties (sorted, not extensible once linked), reading each value
  // live from the module, as ECMAScript's namespace exotic object does.
  function namespace(read, target) {
    const isExport = (k) => typeof k === "string" && read[k] !== undefined;
    const handler = create(null);
    handler.get = (t, k) => (isExport(k) ? read[k]() : t[k]);
    handler.getOwnPropertyDescriptor = (t, k) =>
      isExport(k) ? dataDesc(read[k](), true, true, false) : getOwnPropertyDescriptor(t, k);
    handler.set = () => false;
    handler.defineProperty = () => false;
    handler.deleteProperty = (t, k) => !isExport(k) && getOwnPropertyDescriptor(t, k) === undefined;
    return new ProxyCtor(target, handler);
  }
  // ---- the loader: every module of a graph is linked before any runs, then the graph is
  // evaluated depth-first (ECMAScript's two phases; the wrapper forms are in modules.rs).
  let parseFailed = null; // the module whose source did not parse
  // The name `spec` resolves to from `importer`, or the policy's TypeError.
  function target(importer, spec) {
    const s = StringCtor(spec);
    const r = resolve(importer === mainName ? null : importer, s);
    if (r === null || !hasOwn(table, r) || r === mainName) {
      throw new TypeErrorCtor(denied(TEXT.notFound[0] + s + TEXT.notFound[1] + importer + TEXT.notFound[2]));
    }
    return r;
  }
  // A namespace getter: the module's binding, once the module has said how to read it.
  function exported(slots, name) {
    return () => {
      const get = slots[name];
      if (get === undefined) throw new ReferenceErrorCtor("Cannot access '" + name + "' before initialization");
      return get();
    };
  }
  // Compiles a module and its dependencies, once each, and gives each namespace its exports
  // (depth-first, with an explicit stack: a chain of thousands of modules must not exhaust
  // V8's stack). Entry states: 0 instantiated, 1 linked, 2 evaluating, 3 evaluated.
  function instantiate(name) {
    const cached = cache[name];
    if (cached !== undefined) return cached;
    const root = instantiateOne(name);
    const todo = create(null);
    let n = 0;
    todo[n++] = root;
    while (n > 0) {
      const entry = todo[--n];
      const deps = entry.m.deps;
      for (let i = 0; i < deps.length; i++) entry.deps[entry.ndeps++] = target(entry.name, deps[i]);
      // The first dependency is compiled next, as a recursive walk would.
      for (let i = entry.ndeps - 1; i >= 0; i--) {
        if (cache[entry.deps[i]] === undefined) todo[n++] = instantiateOne(entry.deps[i]);
      }
    }
    return root;
  }
  function instantiateOne(name) {
    const m = table[name];
    let fn;
    try {
      fn = origEval(m.code);
    } catch (e) {
      parseFailed = name;
      throw e;
    }
    const slots = create(null);
    const meta = create(null); // `import.meta`: empty, as on the QuickJS engines
    // name -> how to read it: the module's own exports now, `export *` names at link time.
    const read = create(null);
    const own = create(null);
    for (let i = 0; i < m.names.length; i++) {
      read[m.names[i]] = exported(slots, m.names[i]);
      own[m.names[i]] = true;
    }
    const nsTarget = create(null);
    defineProperty(nsTarget, toStringTag, dataDesc("Module", false, false, false));
    const entry = create(null);
    entry.name = name;
    entry.read = read;
    entry.own = own;
    entry.target = nsTarget;
    entry.ns = namespace(read, nsTarget);
    entry.m = m;
    entry.state = 0;
    entry.pending = undefined; // an evaluation still running: its promise
    entry.failed = false;
    entry.error = undefined;
    entry.starred = create(null);
    entry.deps = create(null);
    entry.ndeps = 0;
    entry.gen = undefined;
    cache[name] = entry;
    const impt = (spec) => importFrom(name, spec);
    const nsOf = (spec) => {
      const r = resolve(name === mainName ? null : name, StringCtor(spec));
      const e = r === null ? undefined : cache[r];
      return e === undefined ? undefined : e.ns;
    };
    if (m.async) {
      // Called when it is evaluated: it registers its exports as it starts.
      entry.start = () => fn(impt, nsOf, slots, moduleHelpers, meta);
    } else {
      // Registers its exports now (a cycle may call an exported function before it runs), then
      // waits at its `yield`.
      entry.gen = fn(impt, nsOf, slots, moduleHelpers, meta);
      apply(genNext, entry.gen, []);
    }
    return entry;
  }
  // Visits the graph under `root` depth-first, post-order, with an explicit stack (a chain of
  // thousands of modules must not exhaust V8's stack): a module in state `from` moves to `to`
  // when entered and is visited after its dependencies; one in any other state (done, or still
  // on the stack in a cycle) is not entered.
  function postOrder(root, from, to, visit) {
    const stack = create(null);
    let sp = 0;
    const frame = (entry) => {
      const f = create(null);
      f.entry = entry;
      f.i = 0;
      entry.state = to;
      return f;
    };
    stack[sp++] = frame(root);
    while (sp > 0) {
      const f = stack[sp - 1];
      if (f.i < f.entry.ndeps) {
        const dep = cache[f.entry.deps[f.i++]];
        if (dep.state === from) stack[sp++] = frame(dep);
        continue;
      }
      sp--;
      visit(f.entry);
    }
  }
  // Adds `export *` names, checks imported names and seals the namespaces.
  function link(root) {
    if (root.state === 0) postOrder(root, 0, 1, linkOne);
  }
  function linkOne(entry) {
    const m = entry.m;
    const read = entry.read;
    // `export * from`: every name but `default`; a name two stars give is ambiguous, and
    // neither is kept; the module's own exports win over any star.
    const starred = entry.starred;
    for (let i = 0; i < m.stars.length; i++) {
      const from = cache[target(entry.name, m.stars[i])];
      const keys = ownKeys(from.read);
      for (let j = 0; j < keys.length; j++) {
        const k = keys[j];
        if (k === "default" || entry.own[k] === true) continue;
        const seen = starred[k];
        if (seen === undefined) {
          starred[k] = from;
          const fromRead = from.read;
          read[k] = () => fromRead[k]();
        } else if (seen !== null && seen !== from) {
          delete read[k];
          starred[k] = null;
        }
      }
    }
    // Every name imported from a module must be one it exports.
    for (let i = 0; i < m.checks.length; i++) {
      const dep = cache[target(entry.name, m.checks[i][0])];
      const names = m.checks[i][1];
      for (let j = 0; j < names.length; j++) {
        if (dep.read[names[j]] === undefined) {
          throw new SyntaxErrorCtor("Could not find export '" + names[j] + "' in module '" + dep.name + "'");
        }
      }
    }
    // The namespace's keys, sorted as a namespace's are (the captured sort, on an array whose
    // elements are defined, not assigned: an earlier module may have put setters on
    // Array.prototype), then sealed.
    const keys = ownKeys(read);
    const names = [];
    for (let i = 0; i < keys.length; i++) {
      defineProperty(names, i, dataDesc(keys[i], true, true, true));
    }
    apply(arraySort, names, []);
    for (let i = 0; i < keys.length; i++) {
      defineProperty(entry.target, names[i], dataDesc(undefined, true, true, false));
    }
    preventExtensions(entry.target);
  }
  // Resolves when all `n` promises in `list` have, rejects with the first rejection.
  function whenAll(list, n) {
    return new OrigPromise((res, rej) => {
      let left = n;
      for (let i = 0; i < n; i++) {
        apply(promiseThen, list[i], [() => { if (--left === 0) res(); }, rej]);
      }
    });
  }
  // Runs a module's body; an async module's promise is returned.
  function runBody(entry) {
    if (entry.m.async) return entry.start();
    apply(genNext, entry.gen, []);
    return undefined;
  }
  // Evaluates the linked graph under `root` depth-first, synchronously: each module once, after
  // its dependencies; one that waits on an async dependency runs when that has finished. Returns
  // the promise of the root's evaluation, or undefined if it has finished; throws if a module
  // failed synchronously.
  function evaluate(root) {
    if (root.state === 3) {
      if (root.failed) throw root.error;
      return root.pending;
    }
    if (root.state === 2) return undefined; // a cycle through a dynamic import
    postOrder(root, 1, 2, evaluateOne);
    return root.pending;
  }
  // Runs one module whose dependencies have been visited; one still on the stack (a cycle) is
  // not waited for.
  function evaluateOne(entry) {
    const waits = create(null);
    let n = 0;
    for (let i = 0; i < entry.ndeps; i++) {
      const dep = cache[entry.deps[i]];
      if (dep.failed) {
        entry.state = 3;
        entry.failed = true;
        entry.error = dep.error;
        throw dep.error;
      }
      if (dep.state === 3 && dep.pending !== undefined) waits[n++] = dep.pending;
    }
    entry.state = 3;
    if (n === 0) {
      try {
        entry.pending = runBody(entry);
      } catch (e) {
        entry.failed = true;
        entry.error = e;
        throw e;
      }
    } else {
      entry.pending = apply(promiseThen, whenAll(waits, n), [() => runBody(entry)]);
    }
  }
  function importFrom(importer, spec) {
    return new OrigPromise((res, rej) => {
      let entry;
      try {
        entry = instantiate(target(importer, spec));
        link(entry);
      } catch (e) {
        rej(e);
        return;
      }
      let p;
      try {
        p = evaluate(entry);
      } catch (e) {
        rej(e);
        return;
      }
      if (p === undefined) res(entry.ns);
      else apply(promiseThen, p, [() => res(entry.ns), rej]);
    });
  }
  // Dynamic import() in a script (rewritten by the host to this function).
  function scriptImport(spec) {
    return importFrom(mainName, spec);
  }

  // ---- running --------------------------------------------------------------------------------
  let state = null;
  // The run's result limit, in bytes of UTF-8 text.
  let resultLimit = Infinity;

  // `"<bytes> <depth>"` of a JSON text: its length in UTF-8 (a lone surrogate takes 3 bytes, as
  // it does once the text is converted) and its deepest nesting of arrays and objects, as
  // `palisade_core::json_depth` counts it.
  function measure(json) {
    let bytes = 0, depth = 0, max = 0, inStr = false, esc = false;
    const n = json.length;
    for (let i = 0; i < n; i++) {
      const c = cc(json, i);
      if (c < 0x80) bytes += 1;
      else if (c < 0x800) bytes += 2;
      else if (c >= 0xd800 && c < 0xdc00 && i + 1 < n && (cc(json, i + 1) & 0xfc00) === 0xdc00) {
        bytes += 4;
        i++;
        continue;
      } else bytes += 3;
      if (inStr) {
        if (esc) esc = false;
        else if (c === 92) esc = true;
        else if (c === 34) inStr = false;
      } else if (c === 34) inStr = true;
      else if (c === 91 || c === 123) {
        if (++depth > max) max = depth;
      } else if ((c === 93 || c === 125) && depth > 0) depth--;
    }
    return bytes + " " + max;
  }
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
      // A run cannot block: no other agent could wake it, and the QuickJS engines throw
      // (their runtimes cannot block). Until 2026-12-02 `Atomics.wait` here slept until its own
      // timeout or the run's, and `waitAsync` (which QuickJS-NG lacks) never settled. The
      // arguments are still checked, as `wait` checks them, by a wait that cannot block.
      const A = originals.Atomics;
      const wait = A.wait;
      defineProperty(A, "wait", {
        value: {
          wait(typedArray, index, value, timeout) {
            apply(wait, A, [typedArray, index, value, 0]);
            NumberCtor(timeout);
            throw new TypeErrorCtor("cannot block in this thread");
          },
        }.wait,
        writable: true,
        enumerable: false,
        configurable: true,
      });
      delete A.waitAsync;
      G.Atomics = A;
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
    resultLimit = cfg.resultLimit;
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
    let main;
    parseFailed = null;
    try {
      main = instantiate(cfg.file);
      link(main);
    } catch (e) {
      // A module that does not parse is `syntax_error`, the main one or an imported one, as on
      // the QuickJS engines.
      state = { k: "e", e, parse: parseFailed !== null };
      return "s";
    }
    const finish = () => {
      let d;
      try {
        d = main.ns.default;
        if (typeof d === "function") d = d(input);
      } catch (e) {
        fail(e);
        return;
      }
      settle(d);
    };
    // The default export is read and called once the graph has evaluated and every job it
    // queued has run, as on the QuickJS engines: by the host's next poll, a task of its own
    // (V8 drains the microtask queue after each).
    const evaluated = () => {
      state = create(null);
      state.k = "d";
      state.finish = finish;
      send(TAG_SETTLED, "");
    };
    let p;
    try {
      p = evaluate(main);
    } catch (e) {
      fail(e);
      return "s";
    }
    if (p === undefined) evaluated();
    else apply(promiseThen, p, [evaluated, fail]);
    return "s";
  }

  function poll() {
    if (state === null) return "p";
    if (state.k === "d") {
      // A module graph has evaluated: call its default export now; poll again for the result.
      const finish = state.finish;
      state = null;
      finish();
      return "r";
    }
    if (state.k === "e") return "e" + describe(state.e, state.parse);
    let json;
    try {
      json = JSONstringify(state.v);
    } catch (e) {
      return "n" + describe(e, false);
    }
    if (json === undefined) return "o";
    // A text with more UTF-16 units than the limit has bytes is over it (UTF-8 takes at least a
    // byte per unit): only its size crosses to the host, as the QuickJS engines count such a text
    // without keeping it. Sent whole, it was copied three more times on its way (the worker's
    // memory grew by some 6 bytes per byte of text), and a text the QuickJS engines call
    // `result_limit` was `memory_limit` here.
    if (json.length > resultLimit) return "O" + measure(json);
    return "o" + json;
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
