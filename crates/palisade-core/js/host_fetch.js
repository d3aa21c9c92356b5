// The fetch part of Palisade's host prelude (host.js): `fetch`, `Headers` and `Response`.
//
// Evaluating this file yields a function of the primordials `P` and `lib`, the helpers host.js
// shares with it (`apply`, `String`, `TypeError`, `lower`, `jsonStringify`, `jsonParse`, `push`,
// `call`, `copyBytes`), which returns `{fetch, Headers, Response}`. host.js calls it on the
// first read of any of the three, through the `loadFetch` each engine passes it. The invariants
// of host.js hold here too: every guest-supplied argument is converted exactly once, and
// built-ins are reached only through `P`.
(function (P, lib) {
  "use strict";
  const apply = lib.apply;
  const String = lib.String;
  const TypeError = lib.TypeError;
  const lower = lib.lower;
  const jsonStringify = lib.jsonStringify;
  const jsonParse = lib.jsonParse;
  const push = lib.push;
  const call = lib.call;
  const copyBytes = lib.copyBytes;

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
    #type = "default";
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
        this.#type = meta.opaqueRedirect ? "opaqueredirect" : "basic";
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
    get type() { return this.#type; }
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
})
