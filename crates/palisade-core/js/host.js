// Palisade's host prelude: the guest-facing shapes of the host APIs (`crypto`, `performance`,
// `fetch` with `Headers` and `Response`, `secrets`), built on one private primitive each engine provides:
//
//   hostcall(op: string, arg: string, bytes: ArrayBuffer | undefined)
//     -> string | ArrayBuffer | undefined, or throws an Error with the host error's name.
//
// Every engine evaluates this file before guest code runs and calls the factory with the
// primordials object (see primordials.rs) and its primitive; the engine then defines the
// returned properties as globals, keeping only those the run's policy allows. Each property is
// a getter that builds its API on first read. This is the single
// implementation, so that every engine offers the same APIs with the same errors.
//
// Invariants:
// - Every guest-supplied argument is converted exactly once, here, to a primitive string or a
//   fresh copy of its bytes; the host validates and uses that same value. A guest's toString,
//   valueOf or Symbol.toPrimitive trap runs at most once per argument and cannot make the host
//   check one value and use another.
// - Built-ins are reached only through `P`, never through globals or tamperable prototypes.
(function (P, hostcall) {
  "use strict";
  const apply = P.ReflectApply;
  const defineProperty = P.ObjectDefineProperty;
  const freeze = P.ObjectFreeze;
  const create = P.ObjectCreate;
  const String = P.String;
  const TypeError = P.TypeError;
  const Error = P.Error;
  const Uint8Array = P.Uint8Array;
  const tagOf = (v) => apply(P.ObjectPrototypeToString, v, []);
  const lower = (s) => apply(P.StringPrototypeToLowerCase, s, []);
  const isView = P.ArrayBufferIsView;
  const jsonStringify = P.JSONStringify;
  const jsonParse = P.JSONParse;
  const push = (arr, v) => {
    arr[arr.length] = v;
  };

  // Turns a host error back into a proper guest error.
  function rethrow(e) {
    const name = e && e.name;
    const message = String(e && e.message);
    if (name === "TypeError") throw new TypeError(message);
    const err = new Error(message);
    if (name !== "Error") {
      defineProperty(err, "name", { value: String(name), writable: true, configurable: true });
    }
    throw err;
  }

  function call(op, arg, bytes) {
    try {
      return hostcall(op, arg, bytes);
    } catch (e) {
      rethrow(e);
    }
  }

  function domError(name, message) {
    const err = new Error(message);
    defineProperty(err, "name", { value: name, writable: true, configurable: true });
    return err;
  }

  // A fresh ArrayBuffer holding a copy of a BufferSource's bytes, or undefined if `v` is not one.
  function copyBytes(v) {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) return undefined;
    if (isView(v)) {
      let buffer, offset, length;
      if (tagOf(v) === "[object DataView]") {
        buffer = apply(P.DataViewPrototypeBuffer, v, []);
        offset = apply(P.DataViewPrototypeByteOffset, v, []);
        length = apply(P.DataViewPrototypeByteLength, v, []);
      } else {
        buffer = apply(P.TypedArrayPrototypeBuffer, v, []);
        offset = apply(P.TypedArrayPrototypeByteOffset, v, []);
        length = apply(P.TypedArrayPrototypeByteLength, v, []);
      }
      return apply(P.ArrayBufferPrototypeSlice, buffer, [offset, offset + length]);
    }
    try {
      // Throws unless `v` is a real ArrayBuffer.
      const length = apply(P.ArrayBufferPrototypeByteLength, v, []);
      return apply(P.ArrayBufferPrototypeSlice, v, [0, length]);
    } catch (_) {
      return undefined;
    }
  }

  // ---------------------------------------------------------------------------------- crypto
  function buildCrypto() {
  const INTEGER_ARRAYS = create(null);
  const intTags = [
    "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
    "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array",
  ];
  for (let i = 0; i < intTags.length; i++) INTEGER_ARRAYS["[object " + intTags[i] + "]"] = true;

  const subtle = create(null);
  defineProperty(subtle, "digest", {
    value: async function digest(algorithm, data) {
      let name;
      if (typeof algorithm === "string") name = algorithm;
      else if (algorithm !== null && typeof algorithm === "object") name = String(algorithm.name);
      else throw new TypeError("Failed to execute 'digest' on 'SubtleCrypto': the algorithm must be a string or an object with a name");
      const bytes = copyBytes(data);
      if (bytes === undefined) {
        throw new TypeError("Failed to execute 'digest' on 'SubtleCrypto': the data must be an ArrayBuffer, a TypedArray or a DataView");
      }
      return call("crypto.digest", name, bytes);
    },
    writable: true, configurable: true,
  });

  const crypto = create(null);
  defineProperty(crypto, "getRandomValues", {
    value: function getRandomValues(array) {
      if (!isView(array) || INTEGER_ARRAYS[tagOf(array)] !== true) {
        throw domError("TypeMismatchError", "Failed to execute 'getRandomValues' on 'Crypto': the argument must be an integer-typed TypedArray");
      }
      const buffer = apply(P.TypedArrayPrototypeBuffer, array, []);
      const offset = apply(P.TypedArrayPrototypeByteOffset, array, []);
      const length = apply(P.TypedArrayPrototypeByteLength, array, []);
      if (length > 65536) {
        throw domError("QuotaExceededError", "Failed to execute 'getRandomValues' on 'Crypto': the ArrayBufferView's byte length (" + length + ") exceeds the number of bytes of entropy available via this API (65536)");
      }
      if (length > 0) {
        const random = call("crypto.getRandomValues", String(length), undefined);
        apply(P.TypedArrayPrototypeSet, new Uint8Array(buffer, offset, length), [new Uint8Array(random)]);
      }
      return array;
    },
    writable: true, configurable: true,
  });
  defineProperty(crypto, "randomUUID", {
    value: function randomUUID() {
      return call("crypto.randomUUID", "", undefined);
    },
    writable: true, configurable: true,
  });
  defineProperty(crypto, "subtle", { value: freeze(subtle), enumerable: true, configurable: true });
  freeze(crypto);
  return crypto;
  }

  // ---------------------------------------------------------------------------------- fetch
  function buildFetch() {
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const matches = (re, s) => apply(P.RegExpPrototypeExec, re, [s]) !== null;

  function normalizeName(name) {
    const s = String(name);
    if (!matches(TOKEN, s)) throw new TypeError("Invalid header name: " + jsonStringify(s));
    return lower(s);
  }
  function normalizeValue(value) {
    const s = String(value);
    // Leading and trailing HTTP whitespace is removed; NUL, CR and LF are forbidden.
    let a = 0;
    let b = s.length;
    const ws = (c) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
    while (a < b && ws(apply(P.StringPrototypeCharCodeAt, s, [a]))) a++;
    while (b > a && ws(apply(P.StringPrototypeCharCodeAt, s, [b - 1]))) b--;
    const v = apply(P.StringPrototypeSlice, s, [a, b]);
    for (let i = 0; i < v.length; i++) {
      const c = apply(P.StringPrototypeCharCodeAt, v, [i]);
      if (c === 0 || c === 0x0a || c === 0x0d || c > 0xff) {
        throw new TypeError("Invalid header value for " + jsonStringify(v));
      }
    }
    return v;
  }

  // Headers: a case-insensitive, ordered list of name/value pairs.
  class Headers {
    #list = [];
    constructor(init) {
      if (init === undefined || init === null) return;
      if (typeof init !== "object" && typeof init !== "function") {
        throw new TypeError("Failed to construct 'Headers': the init must be an object");
      }
      if (init instanceof Headers) {
        const other = init.#list;
        for (let i = 0; i < other.length; i++) push(this.#list, [other[i][0], other[i][1]]);
        return;
      }
      if (P.ArrayIsArray(init)) {
        for (let i = 0; i < init.length; i++) {
          const pair = init[i];
          if (!P.ArrayIsArray(pair) || pair.length !== 2) {
            throw new TypeError("Failed to construct 'Headers': each header must be a [name, value] pair");
          }
          this.append(pair[0], pair[1]);
        }
        return;
      }
      const keys = P.ReflectOwnKeys(init);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (typeof k !== "string") continue;
        const d = P.ObjectGetOwnPropertyDescriptor(init, k);
        if (d === undefined || !d.enumerable) continue;
        this.append(k, init[k]);
      }
    }
    append(name, value) {
      const n = normalizeName(name);
      const v = normalizeValue(value);
      push(this.#list, [n, v]);
    }
    set(name, value) {
      const n = normalizeName(name);
      const v = normalizeValue(value);
      this.#remove(n);
      push(this.#list, [n, v]);
    }
    delete(name) {
      this.#remove(normalizeName(name));
    }
    get(name) {
      const n = normalizeName(name);
      const found = [];
      for (let i = 0; i < this.#list.length; i++) {
        if (this.#list[i][0] === n) push(found, this.#list[i][1]);
      }
      return found.length === 0 ? null : apply(P.ArrayPrototypeJoin, found, [", "]);
    }
    has(name) {
      const n = normalizeName(name);
      for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === n) return true;
      return false;
    }
    forEach(callback, thisArg) {
      const pairs = this.#sorted();
      for (let i = 0; i < pairs.length; i++) apply(callback, thisArg, [pairs[i][1], pairs[i][0], this]);
    }
    entries() {
      return this.#sorted()[P.SymbolIterator]();
    }
    keys() {
      const pairs = this.#sorted();
      const out = [];
      for (let i = 0; i < pairs.length; i++) push(out, pairs[i][0]);
      return out[P.SymbolIterator]();
    }
    values() {
      const pairs = this.#sorted();
      const out = [];
      for (let i = 0; i < pairs.length; i++) push(out, pairs[i][1]);
      return out[P.SymbolIterator]();
    }
    [P.SymbolIterator]() {
      return this.entries();
    }
    get [P.SymbolToStringTag]() {
      return "Headers";
    }
    #remove(n) {
      const kept = [];
      for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] !== n) push(kept, this.#list[i]);
      this.#list = kept;
    }
    // Combined and sorted by name, as the Fetch standard iterates them.
    #sorted() {
      const names = [];
      for (let i = 0; i < this.#list.length; i++) {
        const n = this.#list[i][0];
        let seen = false;
        for (let j = 0; j < names.length; j++) if (names[j] === n) seen = true;
        if (!seen) push(names, n);
      }
      for (let i = 1; i < names.length; i++) {
        const n = names[i];
        let j = i - 1;
        while (j >= 0 && names[j] > n) {
          names[j + 1] = names[j];
          j--;
        }
        names[j + 1] = n;
      }
      const out = [];
      for (let i = 0; i < names.length; i++) push(out, [names[i], this.get(names[i])]);
      return out;
    }
    static _pairs(h) {
      return h.#list;
    }
  }
  const headerPairs = Headers._pairs;
  delete Headers._pairs;

  // The body's host handle; Response cannot be constructed with one by the guest.
  let minting = false;
  class Response {
    #status = 200;
    #statusText = "";
    #url = "";
    #redirected = false;
    #headers;
    #handle = -1;
    #text;
    #used = false;
    constructor(body, init) {
      if (minting) {
        minting = false;
        const meta = body;
        this.#status = meta.status;
        this.#statusText = meta.statusText;
        this.#url = meta.url;
        this.#redirected = meta.redirected;
        this.#headers = new Headers(meta.headers);
        this.#handle = meta.body;
        return;
      }
      if (init !== undefined && init !== null) {
        if (init.status !== undefined) {
          const s = P.Number(init.status);
          if (!(s >= 200 && s <= 599) || s !== (s | 0)) {
            throw new P.RangeError("Failed to construct 'Response': the status provided (" + s + ") is outside the range [200, 599]");
          }
          this.#status = s;
        }
        if (init.statusText !== undefined) this.#statusText = String(init.statusText);
      }
      this.#headers = new Headers(init === undefined || init === null ? undefined : init.headers);
      this.#text = body === undefined || body === null ? "" : String(body);
    }
    get status() { return this.#status; }
    get ok() { return this.#status >= 200 && this.#status <= 299; }
    get statusText() { return this.#statusText; }
    get url() { return this.#url; }
    get redirected() { return this.#redirected; }
    get headers() { return this.#headers; }
    get bodyUsed() { return this.#used; }
    get type() { return this.#handle >= 0 ? "basic" : "default"; }
    #take(as) {
      if (this.#used) throw new TypeError("Body has already been consumed.");
      this.#used = true;
      if (this.#handle >= 0) return call("fetch.body", String(this.#handle) + " " + as, undefined);
      if (as === "text") return this.#text;
      return call("text.encode", this.#text, undefined);
    }
    async text() { return this.#take("text"); }
    async json() { return jsonParse(this.#take("text")); }
    async arrayBuffer() { return this.#take("bytes"); }
    get [P.SymbolToStringTag]() { return "Response"; }
  }

  const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  async function fetch(input, init) {
    const url = String(input);
    const options = init === undefined || init === null ? undefined : init;
    let method = "GET";
    let headers = [];
    let body;
    let bodyText;
    let redirect = "follow";
    if (options !== undefined) {
      if (options.method !== undefined) {
        method = String(options.method);
        if (!matches(METHOD, method)) throw new TypeError("Invalid method: " + jsonStringify(method));
      }
      if (options.headers !== undefined) headers = headerPairs(new Headers(options.headers));
      const b = options.body;
      if (b !== undefined && b !== null) {
        body = copyBytes(b);
        if (body === undefined) bodyText = String(b);
      }
      if (options.redirect !== undefined) {
        redirect = String(options.redirect);
        if (redirect !== "follow" && redirect !== "error" && redirect !== "manual") {
          throw new TypeError("Invalid redirect mode: " + jsonStringify(redirect));
        }
      }
    }
    const pairs = [];
    for (let i = 0; i < headers.length; i++) push(pairs, [headers[i][0], headers[i][1]]);
    const request = { url, method, headers: pairs, redirect };
    if (bodyText !== undefined) request.bodyText = bodyText;
    const meta = jsonParse(call("fetch", jsonStringify(request), body));
    minting = true;
    return new Response(meta);
  }

  return { fetch, Headers, Response };
  }

  // --------------------------------------------------------------------------------- secrets
  function buildSecrets() {
  const secrets = create(null);
  defineProperty(secrets, "get", {
    value: function get(name) {
      return call("secrets.get", String(name), undefined);
    },
    writable: true, configurable: true,
  });
  freeze(secrets);
  return secrets;
  }

  // ----------------------------------------------------------------------------- performance
  // `now()` only: milliseconds since the run started, at 0.1 ms resolution (a coarse timer, as
  // browsers give untrusted code), or from the deterministic clock. The host keeps the clock.
  function buildPerformance() {
  const performance = create(null);
  defineProperty(performance, "now", {
    value: function now() {
      return +call("performance.now", "", undefined);
    },
    writable: true, configurable: true,
  });
  defineProperty(performance, P.SymbolToStringTag, { value: "Performance", configurable: true });
  freeze(performance);
  return performance;
  }

  // Each API is built on its first read, so an engine that reads only the globals a run's
  // policy allows (the QuickJS engines, which build a runtime per run) pays for nothing else.
  const api = create(null);
  function lazy(name, build) {
    let value;
    defineProperty(api, name, {
      get() {
        if (value === undefined) value = build();
        return value;
      },
      enumerable: true,
    });
  }
  let fetchApi;
  const fetchPart = (name) => () => {
    if (fetchApi === undefined) fetchApi = buildFetch();
    return fetchApi[name];
  };
  lazy("crypto", buildCrypto);
  lazy("performance", buildPerformance);
  lazy("fetch", fetchPart("fetch"));
  lazy("Headers", fetchPart("Headers"));
  lazy("Response", fetchPart("Response"));
  lazy("secrets", buildSecrets);
  return freeze(api);
})
