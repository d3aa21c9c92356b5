// Palisade's host prelude: the guest-facing shapes of the host APIs (`crypto`, `performance`,
// `fetch` with `Headers` and `Response`, `secrets`), built on one private primitive each engine provides:
//
//   hostcall(op: string, arg: string, bytes: ArrayBuffer | undefined)
//     -> string | ArrayBuffer | undefined, or throws an Error with the host error's name.
//
// Every engine evaluates this file before guest code runs and calls the factory with the
// primordials object (see primordials.rs), its primitive and `loadFetch`, a function that
// returns the evaluated fetch part (host_fetch.js: `fetch`, `Headers`, `Response`); the engine
// then defines the returned properties as globals, keeping only those the run's policy allows.
// Each property is a getter that builds its API on first read. The fetch part is a file of its
// own so that an engine building a runtime per run (native QuickJS) reads its bytecode only
// when a run's policy allows fetch: it is half of the prelude. This is the single
// implementation, so that every engine offers the same APIs with the same errors.
//
// Invariants:
// - Every guest-supplied argument is converted exactly once, here, to a primitive string or a
//   fresh copy of its bytes; the host validates and uses that same value. A guest's toString,
//   valueOf or Symbol.toPrimitive trap runs at most once per argument and cannot make the host
//   check one value and use another.
// - Built-ins are reached only through `P`, never through globals or tamperable prototypes.
(function (P, hostcall, loadFetch) {
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
    if (fetchApi === undefined) {
      const lib = freeze({
        __proto__: null, apply, String, TypeError, lower, jsonStringify, jsonParse, push, call,
        copyBytes,
      });
      fetchApi = loadFetch()(P, lib);
    }
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
