// Palisade's console formatter. Every engine evaluates this file in the guest, calls the factory
// it yields with the primordials object (pristine built-ins captured before any guest code ran,
// see primordials.rs), and then calls the resulting function with the arguments of one console
// call; the string it returns is one line. It follows Node's util.format / util.inspect closely
// enough for people to feel at home, and is the single implementation, so that every engine
// prints the same bytes.
//
// It touches built-ins only through `P`, never through globals or prototype lookups, and avoids
// syntax that consults tamperable protocols (for-of, spread), so a guest that replaces built-ins
// cannot change how values print. It runs as guest code under the run's limits: a hostile getter
// or Proxy trap it touches can only hurt the guest's own run.
(function (P) {
  "use strict";
  const apply = P.ReflectApply;
  const tagOf = (v) => apply(P.ObjectPrototypeToString, v, []);
  const getProto = P.ObjectGetPrototypeOf;
  const getDesc = P.ObjectGetOwnPropertyDescriptor;
  const ownKeys = P.ReflectOwnKeys;
  const isArray = P.ArrayIsArray;
  const hasOwn = (o, k) => apply(P.ObjectPrototypeHasOwnProperty, o, [k]);
  const isProtoOf = (proto, o) => apply(P.ObjectPrototypeIsPrototypeOf, proto, [o]);
  const join = (arr, sep) => apply(P.ArrayPrototypeJoin, arr, [sep]);
  const indexOf = (arr, v) => apply(P.ArrayPrototypeIndexOf, arr, [v]);
  const sslice = (s, a, b) => apply(P.StringPrototypeSlice, s, b === undefined ? [a] : [a, b]);
  const includes = (s, t) => apply(P.StringPrototypeIncludes, s, [t]);
  const startsWith = (s, t) => apply(P.StringPrototypeStartsWith, s, [t]);
  const code = (s, i) => apply(P.StringPrototypeCharCodeAt, s, [i]);
  const matches = (re, s) => apply(P.RegExpPrototypeExec, re, [s]) !== null;
  const str = P.String;
  const push = (arr, v) => {
    arr[arr.length] = v;
  };
  const min = (a, b) => (a < b ? a : b);
  const MAX_DEPTH = 2;
  const MAX_ARRAY = 100;
  // An array's other own properties (`a.name = ...`) are listed only up to this length: finding
  // them means listing every key, one string per element, and for a million elements that was
  // ~100 MB on the QuickJS engines (`memory_limit` under the default 64 MiB, where V8 printed)
  // for a line that shows 100 of them (until 2026-12-02).
  const MAX_KEYED_ARRAY = 10000;
  const MAX_STRING = 10000;
  const BREAK = 80;
  const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  const INDEX = /^(0|[1-9][0-9]*)$/;
  const CLASS = /^class[\s{]/;

  function hex2(c) {
    return apply(P.StringPrototypeToUpperCase, apply(P.StringPrototypePadStart, apply(P.NumberPrototypeToString, c, [16]), [2, "0"]), []);
  }

  function quote(s) {
    let q = "'";
    if (includes(s, "'")) {
      if (!includes(s, '"')) q = '"';
      else if (!includes(s, "`") && !includes(s, "${")) q = "`";
    }
    let out = "";
    for (let i = 0; i < s.length; i++) {
      const ch = s[i];
      const c = code(s, i);
      if (ch === q || ch === "\\") out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\t") out += "\\t";
      else if (ch === "\r") out += "\\r";
      else if (ch === "\b") out += "\\b";
      else if (ch === "\f") out += "\\f";
      else if (ch === "\v") out += "\\v";
      else if (c < 0x20 || c === 0x7f) out += "\\x" + hex2(c);
      else out += ch;
    }
    return q + out + q;
  }

  function formatString(s) {
    if (s.length > MAX_STRING) {
      return quote(sslice(s, 0, MAX_STRING)) + "... " + (s.length - MAX_STRING) + " more characters";
    }
    return quote(s);
  }

  function formatKey(k) {
    if (typeof k === "symbol") return "[" + apply(P.SymbolPrototypeToString, k, []) + "]";
    return matches(IDENT, k) ? k : quote(k);
  }

  function formatNumber(n) {
    return P.ObjectIs(n, -0) ? "-0" : str(n);
  }

  function more(n) {
    return "... " + n + " more item" + (n > 1 ? "s" : "");
  }

  function funcBase(f) {
    let src = "";
    try {
      src = apply(P.FunctionPrototypeToString, f, []);
    } catch (e) {
      src = "";
    }
    const name = typeof f.name === "string" ? f.name : "";
    if (matches(CLASS, src)) {
      let s = "[class " + (name || "(anonymous)");
      const parent = getProto(f);
      if (parent && typeof parent === "function" && typeof parent.name === "string" && parent.name) {
        s += " extends " + parent.name;
      }
      return s + "]";
    }
    let kind = "Function";
    const tag = tagOf(f);
    if (tag === "[object AsyncFunction]") kind = "AsyncFunction";
    else if (tag === "[object GeneratorFunction]") kind = "GeneratorFunction";
    else if (tag === "[object AsyncGeneratorFunction]") kind = "AsyncGeneratorFunction";
    return "[" + kind + (name ? ": " + name : " (anonymous)") + "]";
  }

  function constructorName(o) {
    let p = o;
    while (p) {
      const d = getDesc(p, "constructor");
      if (d && hasOwn(d, "value") && typeof d.value === "function") {
        const n = d.value.name;
        if (typeof n === "string" && n) return n;
      }
      p = getProto(p);
    }
    return null;
  }

  function indentLines(s, indent) {
    let out = "";
    for (let i = 0; i < s.length; i++) out += s[i] === "\n" ? "\n" + indent : s[i];
    return out;
  }

  function firstLine(s) {
    for (let i = 0; i < s.length; i++) if (s[i] === "\n") return sslice(s, 0, i);
    return s;
  }

  function formatError(e, indent) {
    let name = "Error";
    let message = "";
    let stack;
    try {
      name = str(e.name);
      message = str(e.message);
      stack = e.stack;
    } catch (err) {
      /* keep what we have */
    }
    const head = message ? name + ": " + message : name;
    let s = head;
    if (typeof stack === "string" && stack.length) {
      s = startsWith(stack, head) ? stack : head + "\n" + stack;
      let end = s.length;
      while (end > 0 && s[end - 1] === "\n") end--;
      s = sslice(s, 0, end);
    }
    return indent ? indentLines(s, indent) : s;
  }

  function reduce(open, entries, close, indent) {
    if (entries.length === 0) return apply(P.StringPrototypeTrimEnd, open, []) === "{" ? "{}" : open + close;
    let total = entries.length + indent.length + open.length + 10;
    let multi = false;
    for (let i = 0; i < entries.length; i++) {
      total += entries[i].length + 1;
      if (includes(entries[i], "\n")) multi = true;
    }
    if (!multi && total <= BREAK) return open + " " + join(entries, ", ") + " " + close;
    const ind = indent + "  ";
    return open + "\n" + ind + join(entries, ",\n" + ind) + "\n" + indent + close;
  }

  function formatProps(o, keys, ctx, out, skip) {
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (skip && skip(k)) continue;
      const d = getDesc(o, k);
      if (!d || !d.enumerable) continue;
      let v;
      if (d.get && d.set) v = "[Getter/Setter]";
      else if (d.get) v = "[Getter]";
      else if (d.set) v = "[Setter]";
      else v = formatValue(d.value, ctx);
      push(out, formatKey(k) + ": " + v);
    }
    return out;
  }

  function formatObject(o, ctx) {
    if (indexOf(ctx.seen, o) !== -1) {
      let at = indexOf(ctx.circular, o);
      if (at === -1) {
        at = ctx.circular.length;
        push(ctx.circular, o);
      }
      return "[Circular *" + (at + 1) + "]";
    }
    const tag = tagOf(o);
    if (tag === "[object Error]" || isProtoOf(P.ErrorPrototype, o)) {
      if (ctx.depth > 0) return "[" + firstLine(formatError(o, "")) + "]";
      return formatError(o, ctx.indent);
    }
    if (tag === "[object Date]") {
      const t = apply(P.DatePrototypeGetTime, o, []);
      return t === t ? apply(P.DatePrototypeToISOString, o, []) : "Invalid Date";
    }
    if (tag === "[object RegExp]") return apply(P.RegExpPrototypeToString, o, []);
    if (tag === "[object Number]") return "[Number: " + formatNumber(apply(P.NumberPrototypeValueOf, o, [])) + "]";
    if (tag === "[object String]") return "[String: " + quote(apply(P.StringPrototypeValueOf, o, [])) + "]";
    if (tag === "[object Boolean]") return "[Boolean: " + apply(P.BooleanPrototypeValueOf, o, []) + "]";
    if (tag === "[object Symbol]") return "[Symbol: " + apply(P.SymbolPrototypeToString, apply(P.SymbolPrototypeValueOf, o, []), []) + "]";
    if (tag === "[object BigInt]") return "[BigInt: " + apply(P.BigIntPrototypeValueOf, o, []) + "n]";
    if (tag === "[object Promise]") return "Promise { <unknown> }";
    if (tag === "[object WeakMap]" || tag === "[object WeakSet]") return sslice(tag, 8, -1) + " { <items unknown> }";
    if (tag === "[object WeakRef]") return "WeakRef { <unknown> }";

    const cname = constructorName(o);
    if (ctx.depth > MAX_DEPTH) {
      if (typeof o === "function") return funcBase(o);
      if (isArray(o)) return "[Array]";
      return "[" + (cname || "Object") + "]";
    }
    push(ctx.seen, o);
    const outer = ctx.indent;
    ctx.depth++;
    ctx.indent += "  ";
    let out;
    try {
      out = formatContainer(o, tag, cname, ctx, outer);
    } finally {
      ctx.indent = outer;
      ctx.depth--;
      ctx.seen.length--;
    }
    const at = indexOf(ctx.circular, o);
    if (at !== -1) out = "<ref *" + (at + 1) + "> " + out;
    return out;
  }

  function isIndex(k) {
    return typeof k === "string" && matches(INDEX, k) && P.Number(k) < 4294967295;
  }

  function formatContainer(o, tag, cname, ctx, indent) {
    if (typeof o === "function") {
      const base = funcBase(o);
      const props = formatProps(o, ownKeys(o), ctx, []);
      return props.length ? reduce("{ " + base, props, "}", indent) : base;
    }
    if (isArray(o)) {
      const entries = [];
      const len = o.length;
      let holes = 0;
      const shown = min(len, MAX_ARRAY);
      for (let i = 0; i < shown; i++) {
        if (!hasOwn(o, i)) {
          holes++;
          continue;
        }
        if (holes) {
          push(entries, "<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">");
          holes = 0;
        }
        push(entries, formatValue(o[i], ctx));
      }
      if (holes) push(entries, "<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">");
      if (len > MAX_ARRAY) push(entries, more(len - MAX_ARRAY));
      if (len <= MAX_KEYED_ARRAY) {
        formatProps(o, ownKeys(o), ctx, entries, (k) => k === "length" || isIndex(k));
      }
      const prefix = cname && cname !== "Array" ? cname + "(" + len + ") " : "";
      return reduce(prefix + "[", entries, "]", indent);
    }
    if (P.ArrayBufferIsView(o) && !isProtoOf(P.DataViewPrototype, o)) {
      const entries = [];
      const len = apply(P.TypedArrayPrototypeLength, o, []);
      const shown = min(len, MAX_ARRAY);
      for (let i = 0; i < shown; i++) {
        const v = o[i];
        push(entries, typeof v === "bigint" ? v + "n" : formatNumber(v));
      }
      if (len > MAX_ARRAY) push(entries, more(len - MAX_ARRAY));
      return reduce((cname || "TypedArray") + "(" + len + ") [", entries, "]", indent);
    }
    if (tag === "[object ArrayBuffer]") {
      const n = apply(P.ArrayBufferPrototypeByteLength, o, []);
      const bytes = new P.Uint8Array(o, 0, min(n, 50));
      let hex = "";
      for (let i = 0; i < bytes.length; i++) hex += (i ? " " : "") + apply(P.StringPrototypePadStart, apply(P.NumberPrototypeToString, bytes[i], [16]), [2, "0"]);
      if (n > 50) hex += " ... " + (n - 50) + " more byte" + (n - 50 > 1 ? "s" : "");
      return reduce("ArrayBuffer {", ["[Uint8Contents]: <" + hex + ">", "byteLength: " + n], "}", indent);
    }
    if (tag === "[object Map]" || tag === "[object Set]") {
      const isMap = tag === "[object Map]";
      const size = apply(isMap ? P.MapPrototypeSize : P.SetPrototypeSize, o, []);
      const entries = [];
      apply(isMap ? P.MapPrototypeForEach : P.SetPrototypeForEach, o, [
        (v, k) => {
          if (entries.length >= MAX_ARRAY) return;
          push(entries, isMap ? formatValue(k, ctx) + " => " + formatValue(v, ctx) : formatValue(v, ctx));
        },
      ]);
      if (size > MAX_ARRAY) push(entries, more(size - MAX_ARRAY));
      return reduce((cname || (isMap ? "Map" : "Set")) + "(" + size + ") {", entries, "}", indent);
    }
    const proto = getProto(o);
    let prefix = "";
    if (proto === null) prefix = "[Object: null prototype] ";
    else if (cname && cname !== "Object") prefix = cname + " ";
    else if (!cname) prefix = "Object <Complex prototype> ";
    const stringTag = o[P.SymbolToStringTag];
    if (typeof stringTag === "string" && stringTag && stringTag !== cname) {
      prefix = (cname || "Object") + " [" + stringTag + "] ";
    }
    return reduce(prefix + "{", formatProps(o, ownKeys(o), ctx, []), "}", indent);
  }

  function formatValue(v, ctx) {
    switch (typeof v) {
      case "string":
        return formatString(v);
      case "number":
        return formatNumber(v);
      case "bigint":
        return v + "n";
      case "boolean":
        return v ? "true" : "false";
      case "undefined":
        return "undefined";
      case "symbol":
        return apply(P.SymbolPrototypeToString, v, []);
      default:
        if (v === null) return "null";
        return formatObject(v, ctx);
    }
  }

  function inspect(v) {
    return formatValue(v, { seen: [], circular: [], depth: 0, indent: "" });
  }

  function specifier(c, a) {
    switch (c) {
      case "s":
        if (typeof a === "string") return a;
        if (typeof a === "bigint") return a + "n";
        if (typeof a === "symbol") return apply(P.SymbolPrototypeToString, a, []);
        if (typeof a === "object" && a !== null) return inspect(a);
        if (typeof a === "number") return formatNumber(a);
        return str(a);
      case "d":
      case "i":
        if (typeof a === "bigint") return a + "n";
        if (typeof a === "symbol") return "NaN";
        return formatNumber(c === "i" ? P.NumberParseInt(a) : P.Number(a));
      case "f":
        return typeof a === "symbol" ? "NaN" : formatNumber(P.NumberParseFloat(a));
      case "j":
        try {
          return P.JSONStringify(a);
        } catch (e) {
          return "[Circular]";
        }
      case "o":
      case "O":
        return inspect(a);
      case "c":
        return "";
      default:
        return undefined;
    }
  }

  function formatWithSpecifiers(fmt, args) {
    let out = "";
    let ai = 1;
    let last = 0;
    for (let i = 0; i < fmt.length - 1; i++) {
      if (fmt[i] !== "%") continue;
      const c = fmt[i + 1];
      if (c === "%") {
        out += sslice(fmt, last, i) + "%";
        last = i + 2;
        i++;
        continue;
      }
      if (ai >= args.length) continue;
      const rep = specifier(c, args[ai]);
      if (rep === undefined) continue;
      out += sslice(fmt, last, i) + rep;
      last = i + 2;
      i++;
      ai++;
    }
    out += sslice(fmt, last);
    for (; ai < args.length; ai++) {
      const a = args[ai];
      out += " " + (typeof a === "string" ? a : inspect(a));
    }
    return out;
  }

  return function format(args) {
    if (args.length === 0) return "";
    if (typeof args[0] === "string" && args.length > 1 && includes(args[0], "%")) {
      return formatWithSpecifiers(args[0], args);
    }
    let out = "";
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (i) out += " ";
      out += typeof a === "string" ? a : inspect(a);
    }
    return out;
  };
})
