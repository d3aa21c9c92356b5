// Palisade's console formatter. Every engine evaluates this file in the guest and calls the
// function it yields with the arguments of one console call; the string it returns is one line.
// It follows Node's util.format / util.inspect closely enough for people to feel at home, and is
// the single implementation, so that every engine prints the same bytes.
//
// It runs as guest code, under the run's limits: a hostile getter or Proxy trap it touches can
// only hurt the guest's own run.
(function () {
  "use strict";
  const ObjectProto = Object.prototype;
  const toStr = (v) => ObjectProto.toString.call(v);
  const getProto = Object.getPrototypeOf;
  const ownKeys = Reflect.ownKeys;
  const getDesc = Object.getOwnPropertyDescriptor;
  const isArray = Array.isArray;
  const objectIs = Object.is;
  const MAX_DEPTH = 2;
  const MAX_ARRAY = 100;
  const MAX_STRING = 10000;
  const BREAK = 80;
  const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

  function quote(s) {
    let q = "'";
    if (s.includes("'")) {
      if (!s.includes('"')) q = '"';
      else if (!s.includes("`") && !s.includes("${")) q = "`";
    }
    let out = "";
    for (const ch of s) {
      const c = ch.codePointAt(0);
      if (ch === q || ch === "\\") out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\t") out += "\\t";
      else if (ch === "\r") out += "\\r";
      else if (ch === "\b") out += "\\b";
      else if (ch === "\f") out += "\\f";
      else if (ch === "\v") out += "\\v";
      else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).toUpperCase().padStart(2, "0");
      else out += ch;
    }
    return q + out + q;
  }

  function formatString(s) {
    if (s.length > MAX_STRING) {
      return quote(s.slice(0, MAX_STRING)) + "... " + (s.length - MAX_STRING) + " more characters";
    }
    return quote(s);
  }

  function formatKey(k) {
    if (typeof k === "symbol") return "[" + k.toString() + "]";
    return IDENT.test(k) ? k : quote(k);
  }

  function formatNumber(n) {
    return objectIs(n, -0) ? "-0" : String(n);
  }

  function funcBase(f) {
    let src = "";
    try {
      src = Function.prototype.toString.call(f);
    } catch (e) {
      src = "";
    }
    const name = typeof f.name === "string" ? f.name : "";
    if (src.startsWith("class") && /^class[\s{]/.test(src)) {
      let s = "[class " + (name || "(anonymous)");
      const parent = getProto(f);
      if (parent && parent !== Function.prototype && typeof parent.name === "string" && parent.name) {
        s += " extends " + parent.name;
      }
      return s + "]";
    }
    let kind = "Function";
    const tag = toStr(f);
    if (tag === "[object AsyncFunction]") kind = "AsyncFunction";
    else if (tag === "[object GeneratorFunction]") kind = "GeneratorFunction";
    else if (tag === "[object AsyncGeneratorFunction]") kind = "AsyncGeneratorFunction";
    return "[" + kind + (name ? ": " + name : " (anonymous)") + "]";
  }

  function constructorName(o) {
    let p = o;
    while (p) {
      const d = getDesc(p, "constructor");
      if (d && typeof d.value === "function" && typeof d.value.name === "string" && d.value.name) {
        return d.value.name;
      }
      p = getProto(p);
    }
    return null;
  }

  function formatError(e, ctx) {
    let name = "Error";
    let message = "";
    let stack;
    try {
      name = String(e.name);
      message = String(e.message);
      stack = e.stack;
    } catch (err) {
      /* fall through with what we have */
    }
    const head = message ? name + ": " + message : name;
    let s = head;
    if (typeof stack === "string" && stack.length) {
      s = stack.startsWith(head) ? stack : head + "\n" + stack;
      s = s.replace(/\n+$/, "");
    }
    if (ctx.indent) s = s.split("\n").join("\n" + ctx.indent);
    return s;
  }

  function reduce(open, entries, close, ctx) {
    if (entries.length === 0) return open.trimEnd() === "{" ? "{}" : open + close;
    let total = open.length + close.length;
    let multi = false;
    for (const e of entries) {
      total += e.length + 2;
      if (e.includes("\n")) multi = true;
    }
    if (!multi && total + ctx.indent.length <= BREAK) {
      return open + " " + entries.join(", ") + " " + close;
    }
    const ind = ctx.indent + "  ";
    return open + "\n" + ind + entries.join(",\n" + ind) + "\n" + ctx.indent + close;
  }

  function formatProps(o, keys, ctx, skip) {
    const out = [];
    for (const k of keys) {
      if (skip && skip(k)) continue;
      const d = getDesc(o, k);
      if (!d || !d.enumerable) continue;
      let v;
      if (d.get && d.set) v = "[Getter/Setter]";
      else if (d.get) v = "[Getter]";
      else if (d.set) v = "[Setter]";
      else v = formatValue(d.value, ctx);
      out.push(formatKey(k) + ": " + v);
    }
    return out;
  }

  function formatObject(o, ctx) {
    if (ctx.seen.includes(o)) {
      let id = ctx.circular.get(o);
      if (id === undefined) {
        id = ctx.circular.size + 1;
        ctx.circular.set(o, id);
      }
      return "[Circular *" + id + "]";
    }
    const tag = toStr(o);
    if (typeof o === "function" && ctx.depth > MAX_DEPTH) return funcBase(o);
    if (tag === "[object Error]" || o instanceof Error) {
      if (ctx.depth > 0) return "[" + formatError(o, { indent: "" }).split("\n")[0] + "]";
      return formatError(o, ctx);
    }
    if (tag === "[object Date]") {
      const t = Date.prototype.getTime.call(o);
      return t === t ? Date.prototype.toISOString.call(o) : "Invalid Date";
    }
    if (tag === "[object RegExp]") return RegExp.prototype.toString.call(o);
    if (tag === "[object Number]") return "[Number: " + formatNumber(Number.prototype.valueOf.call(o)) + "]";
    if (tag === "[object String]") return "[String: " + quote(String.prototype.valueOf.call(o)) + "]";
    if (tag === "[object Boolean]") return "[Boolean: " + Boolean.prototype.valueOf.call(o) + "]";
    if (tag === "[object Symbol]") return "[Symbol: " + Symbol.prototype.toString.call(Symbol.prototype.valueOf.call(o)) + "]";
    if (tag === "[object BigInt]") return "[BigInt: " + BigInt.prototype.valueOf.call(o) + "n]";
    if (tag === "[object Promise]") return "Promise { <unknown> }";
    if (tag === "[object WeakMap]" || tag === "[object WeakSet]") return tag.slice(8, -1) + " { <items unknown> }";
    if (tag === "[object WeakRef]") return "WeakRef { <unknown> }";

    const cname = constructorName(o);
    if (ctx.depth > MAX_DEPTH) {
      if (isArray(o)) return "[Array]";
      return "[" + (cname || "Object") + "]";
    }
    ctx.seen.push(o);
    ctx.depth++;
    const saved = ctx.indent;
    ctx.indent += "  ";
    let out;
    try {
      out = formatContainer(o, tag, cname, ctx);
    } finally {
      ctx.indent = saved;
      ctx.depth--;
      ctx.seen.pop();
    }
    const id = ctx.circular.get(o);
    if (id !== undefined) out = "<ref *" + id + "> " + out;
    return out;
  }

  function isIndex(k) {
    return typeof k === "string" && /^(0|[1-9][0-9]*)$/.test(k) && Number(k) < 4294967295;
  }

  function formatContainer(o, tag, cname, ctx) {
    const inner = { seen: ctx.seen, circular: ctx.circular, depth: ctx.depth, indent: ctx.indent };
    const outer = { indent: ctx.indent.slice(2) };
    if (typeof o === "function") {
      const base = funcBase(o);
      const props = formatProps(o, ownKeys(o), inner);
      return props.length ? reduce("{ " + base, props, "}", outer).replace(/^\{ /, "{ ") : base;
    }
    if (isArray(o)) {
      const entries = [];
      const len = o.length;
      let holes = 0;
      const shown = Math.min(len, MAX_ARRAY);
      for (let i = 0; i < shown; i++) {
        if (!Object.prototype.hasOwnProperty.call(o, i)) {
          holes++;
          continue;
        }
        if (holes) {
          entries.push("<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">");
          holes = 0;
        }
        entries.push(formatValue(o[i], inner));
      }
      if (holes) entries.push("<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">");
      if (len > MAX_ARRAY) entries.push("... " + (len - MAX_ARRAY) + " more item" + (len - MAX_ARRAY > 1 ? "s" : ""));
      entries.push(...formatProps(o, ownKeys(o), inner, (k) => k === "length" || isIndex(k)));
      const prefix = cname && cname !== "Array" ? cname + "(" + len + ") " : "";
      return reduce(prefix + "[", entries, "]", outer);
    }
    if (ArrayBuffer.isView(o) && !(o instanceof DataView)) {
      const entries = [];
      const len = o.length;
      for (let i = 0; i < Math.min(len, MAX_ARRAY); i++) {
        const v = o[i];
        entries.push(typeof v === "bigint" ? v + "n" : formatNumber(v));
      }
      if (len > MAX_ARRAY) entries.push("... " + (len - MAX_ARRAY) + " more item" + (len - MAX_ARRAY > 1 ? "s" : ""));
      return reduce((cname || "TypedArray") + "(" + len + ") [", entries, "]", outer);
    }
    if (tag === "[object ArrayBuffer]") {
      const bytes = new Uint8Array(o, 0, Math.min(o.byteLength, 50));
      let hex = "";
      for (let i = 0; i < bytes.length; i++) hex += (i ? " " : "") + bytes[i].toString(16).padStart(2, "0");
      if (o.byteLength > 50) hex += " ... " + (o.byteLength - 50) + " more byte" + (o.byteLength - 50 > 1 ? "s" : "");
      return reduce("ArrayBuffer {", ["[Uint8Contents]: <" + hex + ">", "byteLength: " + o.byteLength], "}", outer);
    }
    if (tag === "[object Map]") {
      const entries = [];
      let n = 0;
      for (const [k, v] of Map.prototype.entries.call(o)) {
        if (n++ >= MAX_ARRAY) break;
        entries.push(formatValue(k, inner) + " => " + formatValue(v, inner));
      }
      const size = Map.prototype.entries.call(o) && o.size;
      if (size > MAX_ARRAY) entries.push("... " + (size - MAX_ARRAY) + " more item" + (size - MAX_ARRAY > 1 ? "s" : ""));
      return reduce((cname || "Map") + "(" + size + ") {", entries, "}", outer);
    }
    if (tag === "[object Set]") {
      const entries = [];
      let n = 0;
      for (const v of Set.prototype.values.call(o)) {
        if (n++ >= MAX_ARRAY) break;
        entries.push(formatValue(v, inner));
      }
      const size = o.size;
      if (size > MAX_ARRAY) entries.push("... " + (size - MAX_ARRAY) + " more item" + (size - MAX_ARRAY > 1 ? "s" : ""));
      return reduce((cname || "Set") + "(" + size + ") {", entries, "}", outer);
    }
    const proto = getProto(o);
    let prefix = "";
    if (proto === null) prefix = "[Object: null prototype] ";
    else if (cname && cname !== "Object") prefix = cname + " ";
    else if (!cname) prefix = "Object <Complex prototype> ";
    const stringTag = o[Symbol.toStringTag];
    if (typeof stringTag === "string" && stringTag && stringTag !== cname) {
      prefix = (cname || "Object") + " [" + stringTag + "] ";
    }
    const entries = formatProps(o, ownKeys(o), inner);
    return reduce(prefix + "{", entries, "}", outer);
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
        return String(v);
      case "undefined":
        return "undefined";
      case "symbol":
        return v.toString();
      default:
        if (v === null) return "null";
        return formatObject(v, ctx);
    }
  }

  function inspect(v) {
    return formatValue(v, { seen: [], circular: new Map(), depth: 0, indent: "" });
  }

  function formatWithSpecifiers(fmt, args) {
    let out = "";
    let ai = 0;
    let last = 0;
    for (let i = 0; i < fmt.length - 1; i++) {
      if (fmt[i] !== "%") continue;
      const c = fmt[i + 1];
      let rep;
      if (c === "%") {
        out += fmt.slice(last, i) + "%";
        last = i + 2;
        i++;
        continue;
      }
      if (ai >= args.length) continue;
      const a = args[ai];
      switch (c) {
        case "s":
          rep = typeof a === "string" ? a : typeof a === "bigint" ? a + "n" : typeof a === "object" && a !== null ? inspect(a) : typeof a === "symbol" ? a.toString() : formatNumber(a) === "-0" ? "-0" : String(a);
          break;
        case "d":
        case "i":
          if (typeof a === "bigint") rep = a + "n";
          else if (typeof a === "symbol") rep = "NaN";
          else {
            const n = c === "i" ? parseInt(a) : Number(a);
            rep = formatNumber(n);
          }
          break;
        case "f":
          rep = typeof a === "symbol" ? "NaN" : formatNumber(parseFloat(a));
          break;
        case "j":
          try {
            rep = JSON.stringify(a);
          } catch (e) {
            rep = "[Circular]";
          }
          break;
        case "o":
        case "O":
          rep = inspect(a);
          break;
        case "c":
          rep = "";
          break;
        default:
          continue;
      }
      out += fmt.slice(last, i) + rep;
      last = i + 2;
      i++;
      ai++;
    }
    out += fmt.slice(last);
    for (; ai < args.length; ai++) {
      const a = args[ai];
      out += " " + (typeof a === "string" ? a : inspect(a));
    }
    return out;
  }

  return function format(args) {
    if (args.length === 0) return "";
    if (typeof args[0] === "string" && args.length > 1 && args[0].includes("%")) {
      return formatWithSpecifiers(args[0], args.slice(1));
    }
    let out = "";
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (i) out += " ";
      out += typeof a === "string" ? a : inspect(a);
    }
    return out;
  };
})()
