//! The pristine built-ins the console formatter ([`crate::CONSOLE_JS`]) uses, so that a guest
//! that replaces `Array.prototype.join` or `Object.keys` cannot change how values print.
//!
//! Each engine captures these into one plain object before any guest code runs and hands it to
//! the formatter. Paths are property paths from the global object; `__proto__` steps to the
//! prototype (`Object.getPrototypeOf`); a [`Capture::Getter`] takes the accessor's getter.

/// How to capture one primordial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// The property's value.
    Value,
    /// The getter of an accessor property.
    Getter,
}

/// `(key in the primordials object, path from the global object, how)`.
pub const PRIMORDIALS: &[(&str, &str, Capture)] = &[
    ("ReflectApply", "Reflect.apply", Capture::Value),
    ("ReflectOwnKeys", "Reflect.ownKeys", Capture::Value),
    (
        "ObjectPrototypeToString",
        "Object.prototype.toString",
        Capture::Value,
    ),
    (
        "ObjectPrototypeHasOwnProperty",
        "Object.prototype.hasOwnProperty",
        Capture::Value,
    ),
    (
        "ObjectPrototypeIsPrototypeOf",
        "Object.prototype.isPrototypeOf",
        Capture::Value,
    ),
    (
        "ObjectGetPrototypeOf",
        "Object.getPrototypeOf",
        Capture::Value,
    ),
    (
        "ObjectGetOwnPropertyDescriptor",
        "Object.getOwnPropertyDescriptor",
        Capture::Value,
    ),
    ("ObjectIs", "Object.is", Capture::Value),
    ("ArrayIsArray", "Array.isArray", Capture::Value),
    ("ArrayPrototypeJoin", "Array.prototype.join", Capture::Value),
    (
        "ArrayPrototypeSlice",
        "Array.prototype.slice",
        Capture::Value,
    ),
    (
        "ArrayPrototypeIndexOf",
        "Array.prototype.indexOf",
        Capture::Value,
    ),
    (
        "StringPrototypeIncludes",
        "String.prototype.includes",
        Capture::Value,
    ),
    (
        "StringPrototypeStartsWith",
        "String.prototype.startsWith",
        Capture::Value,
    ),
    (
        "StringPrototypeSlice",
        "String.prototype.slice",
        Capture::Value,
    ),
    (
        "StringPrototypeCharCodeAt",
        "String.prototype.charCodeAt",
        Capture::Value,
    ),
    (
        "StringPrototypePadStart",
        "String.prototype.padStart",
        Capture::Value,
    ),
    (
        "StringPrototypeToUpperCase",
        "String.prototype.toUpperCase",
        Capture::Value,
    ),
    (
        "StringPrototypeTrimEnd",
        "String.prototype.trimEnd",
        Capture::Value,
    ),
    (
        "StringPrototypeValueOf",
        "String.prototype.valueOf",
        Capture::Value,
    ),
    (
        "NumberPrototypeToString",
        "Number.prototype.toString",
        Capture::Value,
    ),
    (
        "NumberPrototypeValueOf",
        "Number.prototype.valueOf",
        Capture::Value,
    ),
    (
        "BooleanPrototypeValueOf",
        "Boolean.prototype.valueOf",
        Capture::Value,
    ),
    (
        "SymbolPrototypeToString",
        "Symbol.prototype.toString",
        Capture::Value,
    ),
    (
        "SymbolPrototypeValueOf",
        "Symbol.prototype.valueOf",
        Capture::Value,
    ),
    (
        "BigIntPrototypeValueOf",
        "BigInt.prototype.valueOf",
        Capture::Value,
    ),
    (
        "FunctionPrototypeToString",
        "Function.prototype.toString",
        Capture::Value,
    ),
    (
        "DatePrototypeGetTime",
        "Date.prototype.getTime",
        Capture::Value,
    ),
    (
        "DatePrototypeToISOString",
        "Date.prototype.toISOString",
        Capture::Value,
    ),
    (
        "RegExpPrototypeExec",
        "RegExp.prototype.exec",
        Capture::Value,
    ),
    (
        "RegExpPrototypeToString",
        "RegExp.prototype.toString",
        Capture::Value,
    ),
    (
        "MapPrototypeForEach",
        "Map.prototype.forEach",
        Capture::Value,
    ),
    (
        "SetPrototypeForEach",
        "Set.prototype.forEach",
        Capture::Value,
    ),
    ("MapPrototypeSize", "Map.prototype.size", Capture::Getter),
    ("SetPrototypeSize", "Set.prototype.size", Capture::Getter),
    ("ArrayBufferIsView", "ArrayBuffer.isView", Capture::Value),
    (
        "ArrayBufferPrototypeByteLength",
        "ArrayBuffer.prototype.byteLength",
        Capture::Getter,
    ),
    (
        "TypedArrayPrototypeLength",
        "Uint8Array.prototype.__proto__.length",
        Capture::Getter,
    ),
    ("Uint8Array", "Uint8Array", Capture::Value),
    ("DataViewPrototype", "DataView.prototype", Capture::Value),
    ("ErrorPrototype", "Error.prototype", Capture::Value),
    ("JSONStringify", "JSON.stringify", Capture::Value),
    ("NumberParseInt", "Number.parseInt", Capture::Value),
    ("NumberParseFloat", "Number.parseFloat", Capture::Value),
    ("Number", "Number", Capture::Value),
    ("String", "String", Capture::Value),
    ("SymbolToStringTag", "Symbol.toStringTag", Capture::Value),
    ("TypeError", "TypeError", Capture::Value),
    ("EvalError", "EvalError", Capture::Value),
    ("Error", "Error", Capture::Value),
    ("RangeError", "RangeError", Capture::Value),
    (
        "ObjectDefineProperty",
        "Object.defineProperty",
        Capture::Value,
    ),
    ("ObjectFreeze", "Object.freeze", Capture::Value),
    ("ObjectCreate", "Object.create", Capture::Value),
    ("JSONParse", "JSON.parse", Capture::Value),
    ("ArrayBuffer", "ArrayBuffer", Capture::Value),
    (
        "ArrayBufferPrototypeSlice",
        "ArrayBuffer.prototype.slice",
        Capture::Value,
    ),
    (
        "TypedArrayPrototypeBuffer",
        "Uint8Array.prototype.__proto__.buffer",
        Capture::Getter,
    ),
    (
        "TypedArrayPrototypeByteOffset",
        "Uint8Array.prototype.__proto__.byteOffset",
        Capture::Getter,
    ),
    (
        "TypedArrayPrototypeByteLength",
        "Uint8Array.prototype.__proto__.byteLength",
        Capture::Getter,
    ),
    (
        "TypedArrayPrototypeSet",
        "Uint8Array.prototype.__proto__.set",
        Capture::Value,
    ),
    (
        "DataViewPrototypeBuffer",
        "DataView.prototype.buffer",
        Capture::Getter,
    ),
    (
        "DataViewPrototypeByteOffset",
        "DataView.prototype.byteOffset",
        Capture::Getter,
    ),
    (
        "DataViewPrototypeByteLength",
        "DataView.prototype.byteLength",
        Capture::Getter,
    ),
    (
        "StringPrototypeToLowerCase",
        "String.prototype.toLowerCase",
        Capture::Value,
    ),
    ("SymbolIterator", "Symbol.iterator", Capture::Value),
];

/// A strict script whose completion value is a fresh object holding every [`PRIMORDIALS`]
/// entry, read from the global object. Engines evaluate it before any guest code runs.
pub fn capture_js() -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut js = String::from(
        "(function () {\n\"use strict\";\nconst g = globalThis, P = {}, proto = Object.getPrototypeOf, \
         desc = Object.getOwnPropertyDescriptor;\n",
    );
    for &(key, path, how) in PRIMORDIALS {
        let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
        let mut holder = String::from("g");
        if !parent.is_empty() {
            for seg in parent.split('.') {
                holder = if seg == "__proto__" {
                    format!("proto({holder})")
                } else {
                    format!("{holder}[{}]", q(seg))
                };
            }
        }
        let value = match how {
            Capture::Value => format!("{holder}[{}]", q(last)),
            Capture::Getter => format!("desc({holder}, {}).get", q(last)),
        };
        js.push_str(&format!("P[{}] = {value};\n", q(key)));
    }
    js.push_str("return P;\n})()");
    js
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_js_walks_prototypes_and_getters() {
        let js = capture_js();
        assert!(
            js.contains(r#"P["ReflectApply"] = g["Reflect"]["apply"];"#),
            "{js}"
        );
        assert!(
            js.contains(r#"desc(proto(g["Uint8Array"]["prototype"]), "length").get"#),
            "{js}"
        );
    }
}
