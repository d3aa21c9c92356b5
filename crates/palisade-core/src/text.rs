//! JavaScript strings as Rust text, the same on every engine.
//!
//! A JS string is UTF-16 and may hold lone surrogates, which Rust's `String` cannot. Every engine
//! turns each lone surrogate into one U+FFFD REPLACEMENT CHARACTER, as V8's UTF-8 conversion and
//! the WHATWG `USVString` conversion do. QuickJS hands strings out as UTF-8 in which a lone
//! surrogate is the three-byte sequence `ED A0..BF 80..BF` (what UTF-8 would be for a code
//! point that is not a scalar value), and [`from_quickjs_utf8`] reads that.

use std::borrow::Cow;

/// QuickJS's UTF-8 (`JS_ToCStringLen`) as text: each encoded lone surrogate becomes one U+FFFD,
/// and any other invalid sequence becomes U+FFFD as [`String::from_utf8_lossy`] would.
///
/// ```
/// use palisade_core::text::from_quickjs_utf8;
/// assert_eq!(from_quickjs_utf8(b"x\xed\xb0\x80y"), "x\u{fffd}y");
/// assert_eq!(from_quickjs_utf8("caf\u{e9} \u{1f600}".as_bytes()), "caf\u{e9} \u{1f600}");
/// ```
pub fn from_quickjs_utf8(bytes: &[u8]) -> Cow<'_, str> {
    let mut rest = match std::str::from_utf8(bytes) {
        Ok(s) => return Cow::Borrowed(s),
        Err(_) => bytes,
    };
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return Cow::Owned(out);
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{fffd}');
                let skip = match bad {
                    [0xed, b, c, ..] if (0xa0..=0xbf).contains(b) && (0x80..=0xbf).contains(c) => 3,
                    _ => e.error_len().unwrap_or(bad.len()),
                };
                rest = &bad[skip.min(bad.len())..];
                if rest.is_empty() {
                    return Cow::Owned(out);
                }
            }
        }
    }
}

/// JSON text from `JSON.stringify` with each lone surrogate escape (`\ud800` not followed by a
/// low surrogate's, or a low one alone) replaced by `\ufffd`: ECMAScript writes them, and a
/// Rust `String` (serde_json) cannot hold them, so a value with a lone surrogate would fail to
/// parse instead of reading as U+FFFD as everywhere else.
///
/// ```
/// use palisade_core::text::well_formed_json;
/// assert_eq!(well_formed_json(r#"["a\ud800b","\ud83d\ude00","\\ud800"]"#),
///            r#"["a\ufffdb","\ud83d\ude00","\\ud800"]"#);
/// ```
pub fn well_formed_json(json: &str) -> Cow<'_, str> {
    if !json.contains("\\u") {
        return Cow::Borrowed(json);
    }
    let b = json.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        if b.get(at) == Some(&b'\\') && b.get(at + 1) == Some(&b'u') {
            let hex = json.get(at + 2..at + 6)?;
            u16::from_str_radix(hex, 16).ok()
        } else {
            None
        }
    };
    let mut out = String::with_capacity(json.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match unit(i) {
            Some(0xd800..=0xdbff) => {
                if matches!(unit(i + 6), Some(0xdc00..=0xdfff)) {
                    i += 12;
                } else {
                    out.push_str(&json[copied..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    copied = i;
                }
            }
            Some(0xdc00..=0xdfff) => {
                out.push_str(&json[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
            }
            Some(_) => i += 6,
            // Any other escape is two bytes (`\\`, `\"`, `\n`, ...).
            None => i += 2,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(json);
    }
    out.push_str(&json[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_one_replacement_character_each() {
        // High, low, two highs in a row, at both ends.
        assert_eq!(from_quickjs_utf8(b"\xed\xa0\x80"), "\u{fffd}");
        assert_eq!(
            from_quickjs_utf8(b"a\xed\xa0\x80\xed\xa0\x81b"),
            "a\u{fffd}\u{fffd}b"
        );
        assert_eq!(
            from_quickjs_utf8(b"\xed\xbf\xbfz\xed\xb0\x80"),
            "\u{fffd}z\u{fffd}"
        );
        // Other invalid bytes as from_utf8_lossy, and a sequence cut short at the end.
        assert_eq!(from_quickjs_utf8(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(
            from_quickjs_utf8(b"a\xed\xa0"),
            String::from_utf8_lossy(b"a\xed\xa0")
        );
        assert_eq!(from_quickjs_utf8(b"a\xe2\x82"), "a\u{fffd}");
        assert!(matches!(
            from_quickjs_utf8(b"plain"),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn lone_surrogate_escapes_in_json_become_replacement_characters() {
        let cases = [
            (r#""\udc00""#, r#""\ufffd""#),
            (r#""\ud800\ud800\udc00""#, r#""\ufffd\ud800\udc00""#),
            (r#""\ud800x""#, r#""\ufffdx""#),
            (r#""x\ud800""#, r#""x\ufffd""#),
            (r#""\\ud800""#, r#""\\ud800""#),
            (r#""\u0041\n""#, r#""\u0041\n""#),
        ];
        for (input, want) in cases {
            assert_eq!(well_formed_json(input), want, "{input}");
            let v: String = serde_json::from_str(&well_formed_json(input)).expect(input);
            assert!(!v.is_empty());
        }
    }
}
