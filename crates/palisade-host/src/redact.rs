//! Redaction: secret values handed to the guest are replaced with `[REDACTED]` wherever they
//! would leave Palisade: stdout, stderr, the result, and error messages and stacks.

use palisade_core::{ExecError, GuestError, Outcome};

/// What a redacted secret becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not redacted (a one-letter secret would erase every such
/// letter); the store should refuse them, and the docs say so.
pub const MIN_REDACTED_LEN: usize = 4;

/// Fragments of a secret this long (in bytes, ASCII case ignored) are redacted wherever they
/// appear, not only whole forms: engines and the console formatter cut long strings (QuickJS
/// keeps 63 bytes of a property name in a TypeError, the formatter 10,000 characters of a
/// string, an Error inside an object shows its message's first line), and URL parsing
/// lowercases hosts. Ten bytes of a secret appearing by chance is rare; a secret made of common
/// words may take a word or two of other output with it, the safe side to err on.
pub const FRAGMENT_LEN: usize = 10;

/// Replaces every occurrence of the `secrets` in `outcome`.
///
/// Each secret is looked for as itself and in the forms Palisade's own output gives it without
/// the guest asking ([`forms`]): escaped inside a quoted string once or twice (console output of
/// an object, `JSON.stringify`, both), percent-encoded in a URL (fetch's errors and
/// `Response.url`), and its UTF-8 bytes as the console formatter prints a buffer. Any run of
/// [`FRAGMENT_LEN`] or more bytes of one of those forms is replaced too (except the byte forms,
/// secrets shorter than a fragment, and PEM armor lines), and overlapping or touching matches
/// become one `[REDACTED]`.
///
/// In stdout and stderr a match may also span the line breaks between console calls (the secret
/// printed in pieces, one `console.log` each): the whole span becomes `[REDACTED]`. When the
/// output cap cut the output, the stream it cut, if it ends with at least [`MIN_REDACTED_LEN`]
/// bytes of the start of a secret, has that end replaced too.
///
/// A guest that means to get a secret out can always transform it first (reverse it, encode it
/// some other way); redaction stops the accidental leaks, as the README's security model says.
pub fn redact_outcome(outcome: &mut Outcome, secrets: &[String]) {
    let secrets: Vec<&String> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_REDACTED_LEN)
        .collect();
    if secrets.is_empty() {
        return;
    }
    let redactor = Redactor::new(
        secrets.iter().flat_map(|s| forms(s)).collect(),
        secrets.iter().flat_map(|s| byte_forms(s)).collect(),
    );
    outcome.stdout = redactor.stream(&outcome.stdout, outcome.truncated);
    outcome.stderr = redactor.stream(&outcome.stderr, outcome.truncated);
    match &mut outcome.result {
        Ok(value) => redact_json(value, &redactor),
        Err(e) => redact_error(e, &redactor),
    }
}

/// `secret` as it appears in text Palisade produces: itself; escaped as `JSON.stringify` and the
/// console formatter escape a string (with each quote character the formatter may pick), and
/// each of those escaped once more (a JSON text printed inside an object); and percent-encoded
/// as a URL's query or path, `encodeURIComponent` and form encoding give it. (Its bytes as a
/// printed buffer are [`byte_forms`].)
fn forms(secret: &str) -> Vec<String> {
    let escapes = |s: &str| -> Vec<String> {
        let mut out: Vec<String> = ['\'', '"', '`']
            .into_iter()
            .map(|q| console_escaped(s, q))
            .collect();
        if let Ok(json) = serde_json::to_string(s) {
            out.push(json[1..json.len() - 1].to_owned());
        }
        out
    };
    let mut out = vec![secret.to_owned()];
    for once in escapes(secret) {
        out.extend(escapes(&once));
        out.push(once);
    }
    if let Ok(mut url) = url::Url::parse("http://h/") {
        url.set_query(Some(secret));
        out.extend(url.query().map(str::to_owned));
        url.set_path(secret);
        out.push(url.path().trim_start_matches('/').to_owned());
    }
    out.push(percent_encoded(secret, b"-_.!~*'()"));
    out.push(percent_encoded(secret, b"-_.*").replace("%20", "+"));
    // A URL path drops `.` and `..` segments: a form shorter than the secret is not its form.
    out.retain(|f| f.len() >= secret.len());
    out.sort();
    out.dedup();
    out
}

/// `secret`'s UTF-8 bytes as the console formatter prints an `ArrayBuffer` (hex) or a
/// `Uint8Array` (decimal). Only ever matched whole: ten bytes of these are three of the secret.
fn byte_forms(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let decimal: Vec<String> = bytes.iter().map(u8::to_string).collect();
    vec![hex.join(" "), decimal.join(", ")]
}

/// `s` escaped as the console formatter (`console.js`, `quote`) escapes a string it wraps in
/// `quote`.
fn console_escaped(s: &str, quote: char) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// `s` as UTF-8 with every byte percent-encoded except ASCII letters, digits and `keep`.
fn percent_encoded(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The forms of every secret a run read, ready to find in text.
struct Redactor {
    /// Matched whole and case-sensitively: forms shorter than a fragment (a short secret's
    /// letters are common) and the byte forms.
    exact: Vec<Vec<u8>>,
    /// Forms matched in fragments, ASCII-lowercased.
    long: Vec<Vec<u8>>,
    grams: Grams,
    /// The same three without line breaks, for text whose line breaks were removed.
    joined_exact: Vec<Vec<u8>>,
    joined_long: Vec<Vec<u8>>,
    joined_grams: Grams,
}

/// Where each [`FRAGMENT_LEN`]-byte window of the forms occurs: (form, offset), a few per
/// window (a repetitive secret has the same window everywhere; any one of them extends as far).
type Grams = std::collections::HashMap<u128, Vec<(usize, usize)>, BuildMix>;

/// A window as a key: its bytes, little-endian.
fn key(window: &[u8]) -> u128 {
    window
        .iter()
        .rev()
        .fold(0u128, |k, &b| (k << 8) | u128::from(b))
}

/// Hashes a window key with one multiply (SipHash on every byte of a long output was most of
/// redaction's time: 2 MiB in 72 ms, measured 2026-11-30).
#[derive(Default)]
struct Mix(u64);

impl std::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u128(&mut self, k: u128) {
        let folded = (k as u64) ^ ((k >> 64) as u64).rotate_left(29);
        self.0 = folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (folded >> 31);
    }
}

type BuildMix = std::hash::BuildHasherDefault<Mix>;

const CANDIDATES_PER_GRAM: usize = 4;

impl Redactor {
    fn new(forms: Vec<String>, byte_forms: Vec<String>) -> Self {
        let mut exact: Vec<Vec<u8>> = byte_forms.into_iter().map(String::into_bytes).collect();
        let mut long = Vec::new();
        for f in forms {
            if f.len() < FRAGMENT_LEN {
                exact.push(f.into_bytes());
            } else {
                long.push(f.into_bytes().to_ascii_lowercase());
            }
        }
        let unbroken = |v: &[Vec<u8>]| -> Vec<Vec<u8>> {
            v.iter()
                .map(|f| f.iter().copied().filter(|&b| b != b'\n').collect())
                .collect()
        };
        let (joined_exact, joined_long) = (unbroken(&exact), unbroken(&long));
        Redactor {
            grams: grams_of(&long),
            joined_grams: grams_of(&joined_long),
            exact,
            long,
            joined_exact,
            joined_long,
        }
    }

    /// `s` with every match replaced.
    fn text(&self, s: &str) -> String {
        replace(s, spans(s.as_bytes(), &self.exact, &self.long, &self.grams))
    }

    /// A console stream: matches in it, matches across its line breaks, and, if the output cap
    /// cut it (only the stream cut last does not end in a line break), the start of a secret at
    /// its end.
    fn stream(&self, s: &str, cut: bool) -> String {
        let cut = cut && !s.is_empty() && !s.ends_with('\n');
        if !s.contains('\n') && !cut {
            return self.text(s);
        }
        // The search runs on the text without its line breaks (against the forms without
        // theirs), which finds every match the text itself has and those across lines too.
        let joined: Vec<u8> = s.bytes().filter(|&b| b != b'\n').collect();
        // Where each line break was, as the position in `joined` of the byte after it
        // (non-decreasing): a byte at `j` in `joined` is at `j + (breaks at or before j)` in `s`.
        // (A table of every byte's offset cost 8 bytes per output byte: 60 MiB of output took
        // 684 MB instead of 193, measured in a review on 2026-12-01.)
        let breaks: Vec<usize> = s
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .enumerate()
            .map(|(n, (at, _))| at - n)
            .collect();
        let origin = |j: usize| j + breaks.partition_point(|&b| b <= j);
        let mut found = spans(
            &joined,
            &self.joined_exact,
            &self.joined_long,
            &self.joined_grams,
        );
        if cut {
            found.extend(cut_end(&joined, &self.joined_long));
        }
        let spans = found
            .into_iter()
            .filter(|&(a, b)| a < b)
            .map(|(a, b)| (origin(a), origin(b - 1) + 1))
            .collect();
        replace(s, spans)
    }
}

/// The fragment index of `forms` (lowercased). Windows that touch a PEM armor line
/// (`-----BEGIN PRIVATE KEY-----`) are left out: that text is public, and printed anywhere it
/// would otherwise be redacted as a piece of the key.
fn grams_of(forms: &[Vec<u8>]) -> Grams {
    let mut map = Grams::default();
    for (f, form) in forms.iter().enumerate() {
        let armor = armor(form);
        for (at, w) in form.windows(FRAGMENT_LEN).enumerate() {
            if armor[at..at + FRAGMENT_LEN].iter().any(|&a| a) {
                continue;
            }
            let list = map.entry(key(w)).or_default();
            if list.len() < CANDIDATES_PER_GRAM {
                list.push((f, at));
            }
        }
    }
    map
}

/// Which bytes of a lowercased form lie in a PEM armor line: `-----begin` or `-----end` up to
/// the next `-----` inclusive.
fn armor(form: &[u8]) -> Vec<bool> {
    let mut out = vec![false; form.len()];
    let mut i = 0;
    while let Some(at) = find(&form[i..], b"-----").map(|p| p + i) {
        let rest = &form[at + 5..];
        // Any separator after the word: a space, `%20`, `+` in the URL forms.
        i = if rest.starts_with(b"begin") || rest.starts_with(b"end") {
            let close = find(&rest[3..], b"-----").map_or(form.len(), |p| at + 5 + 3 + p + 5);
            let close = close.min(form.len());
            out[at..close].iter_mut().for_each(|a| *a = true);
            close
        } else {
            at + 5
        };
        if i >= form.len() {
            break;
        }
    }
    out
}

/// Byte spans of `text` that are a whole `exact` form (case kept), or [`FRAGMENT_LEN`] or more
/// bytes of a `long` one, ASCII case ignored.
fn spans(text: &[u8], exact: &[Vec<u8>], long: &[Vec<u8>], grams: &Grams) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for form in exact.iter().filter(|f| !f.is_empty()) {
        let mut from = 0;
        while let Some(pos) = find(&text[from..], form) {
            out.push((from + pos, from + pos + form.len()));
            from += pos + form.len();
        }
    }
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    while i + FRAGMENT_LEN <= lower.len() {
        let Some(candidates) = grams.get(&key(&lower[i..i + FRAGMENT_LEN])) else {
            i += 1;
            continue;
        };
        let (mut start, mut end) = (i, i + FRAGMENT_LEN);
        for &(f, at) in candidates {
            let form = &long[f];
            let left = (1..=at.min(i))
                .take_while(|&k| lower[i - k] == form[at - k])
                .count();
            let right = (0..)
                .take_while(|&k| {
                    i + FRAGMENT_LEN + k < lower.len()
                        && at + FRAGMENT_LEN + k < form.len()
                        && lower[i + FRAGMENT_LEN + k] == form[at + FRAGMENT_LEN + k]
                })
                .count();
            start = start.min(i - left);
            end = end.max(i + FRAGMENT_LEN + right);
        }
        out.push((start, end));
        i = end.saturating_sub(FRAGMENT_LEN) + 1;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The span of `text`'s end that is the start of a form, at least [`MIN_REDACTED_LEN`] bytes of
/// it (the longest such start), if any. Shorter starts are left: one or two characters a secret
/// happens to begin with are mostly not the secret.
fn cut_end(text: &[u8], forms: &[Vec<u8>]) -> Option<(usize, usize)> {
    let longest = forms.iter().map(Vec::len).max().unwrap_or(0);
    let lower = text[text.len().saturating_sub(longest)..].to_ascii_lowercase();
    forms
        .iter()
        .filter_map(|form| {
            (MIN_REDACTED_LEN..form.len())
                .rev()
                .find(|&k| lower.ends_with(&form[..k]))
        })
        .max()
        .map(|k| (text.len() - k, text.len()))
}

/// `s` with each span (merged where they overlap or touch, widened to whole characters) replaced
/// by one `[REDACTED]`.
fn replace(s: &str, mut spans: Vec<(usize, usize)>) -> String {
    if spans.is_empty() {
        return s.to_owned();
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    let mut open: Option<(usize, usize)> = None;
    for (a, b) in spans {
        let a = (0..=a).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        let b = (b..=s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        match open {
            Some((oa, ob)) if a <= ob => open = Some((oa, ob.max(b))),
            Some((oa, ob)) => {
                out.push_str(&s[at..oa]);
                out.push_str(REDACTED);
                at = ob;
                open = Some((a, b));
            }
            None => open = Some((a, b)),
        }
    }
    if let Some((oa, ob)) = open {
        out.push_str(&s[at..oa]);
        out.push_str(REDACTED);
        at = ob;
    }
    out.push_str(&s[at..]);
    out
}

fn redact_json(value: &mut serde_json::Value, r: &Redactor) {
    match value {
        serde_json::Value::String(s) => *s = r.text(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, r)),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                redact_json(&mut v, r);
                // Two keys redacted alike keep both entries: `[REDACTED]`, `[REDACTED]#2`, ...
                let key = r.text(&k);
                let key = (1..)
                    .map(|n| {
                        if n == 1 {
                            key.clone()
                        } else {
                            format!("{key}#{n}")
                        }
                    })
                    .find(|k| !map.contains_key(k))
                    .unwrap_or(key);
                map.insert(key, v);
            }
        }
        _ => {}
    }
}

fn redact_guest(g: &mut GuestError, r: &Redactor) {
    g.message = r.text(&g.message);
    g.name = g.name.as_deref().map(|n| r.text(n));
    g.stack = g.stack.as_deref().map(|s| r.stream(s, false));
}

fn redact_error(e: &mut ExecError, r: &Redactor) {
    match e {
        ExecError::Syntax(g) | ExecError::Exception(g) => redact_guest(g, r),
        ExecError::Limit(l) => l.message = r.text(&l.message),
        ExecError::NotSerializable { message }
        | ExecError::PolicyDenied { message }
        | ExecError::InvalidRequest { message }
        | ExecError::Internal { message } => *message = r.text(message),
        ExecError::EngineUnavailable { reason, .. } => *reason = r.text(reason),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(stdout: &str, result: serde_json::Value) -> Outcome {
        let mut o = Outcome::failed("quickjs", ExecError::internal("x"));
        o.stdout = stdout.into();
        o.result = Ok(result);
        o
    }

    #[test]
    fn escaped_forms_of_a_secret_are_redacted() {
        let pem = "-----BEGIN KEY-----\nMII'B\"s\\ecret\n-----END KEY-----".to_owned();
        let uni = "p\u{e4}ssw\u{f6}rd \u{20ac}&x".to_owned();
        let mut o = outcome(
            // The console formatter's forms (single, double and backtick quotes), then the URL's.
            "{ p: '-----BEGIN KEY-----\\nMII\\'B\"s\\\\ecret\\n-----END KEY-----' }\n\
             [ \"-----BEGIN KEY-----\\nMII'B\\\"s\\\\ecret\\n-----END KEY-----\" ]\n\
             url http://h/?k=p%C3%A4ssw%C3%B6rd%20%E2%82%AC&x and p%C3%A4ssw%C3%B6rd%20%E2%82%AC%26x \
             and p%C3%A4ssw%C3%B6rd+%E2%82%AC%26x\n",
            serde_json::json!({
                "json": serde_json::to_string(&serde_json::json!({"p": pem})).expect("json"),
            }),
        );
        redact_outcome(&mut o, &[pem, uni]);
        assert_eq!(
            o.stdout,
            "{ p: '[REDACTED]' }\n[ \"[REDACTED]\" ]\nurl http://h/?k=[REDACTED] and [REDACTED] \
             and [REDACTED]\n"
        );
        assert_eq!(
            o.result,
            Ok(serde_json::json!({"json": "{\"p\":\"[REDACTED]\"}"}))
        );
    }

    #[test]
    fn a_secret_that_contains_another_is_redacted_whole() {
        let inner = "hunter2!".to_owned();
        let outer = "postgres://app:hunter2!@db.internal:5432/prod".to_owned();
        let mut o = outcome(&format!("{outer}\n"), serde_json::json!([outer]));
        // The inner one was read first.
        redact_outcome(&mut o, &[inner, outer]);
        assert_eq!(o.stdout, "[REDACTED]\n");
        assert_eq!(o.result, Ok(serde_json::json!(["[REDACTED]"])));
    }

    #[test]
    fn output_the_cap_cut_inside_a_secret_shows_none_of_it() {
        let secret = "sk-LIVE-abc123XYZ".to_owned();
        // Shorter than a fragment, so only the cut makes it a secret's start.
        let mut o = outcome("token=sk-LIVE-a", serde_json::json!(1));
        o.truncated = true;
        redact_outcome(&mut o, std::slice::from_ref(&secret));
        assert_eq!(o.stdout, "token=[REDACTED]");
        // Printed in pieces, then cut.
        let mut o = outcome("hun\nsk-LIV\nE-a", serde_json::json!(1));
        o.truncated = true;
        redact_outcome(&mut o, std::slice::from_ref(&secret));
        assert_eq!(o.stdout, "hun\n[REDACTED]");
        // Not cut: a short start is left alone (it is not a secret, only the start of one).
        let mut o = outcome("token=sk-LIVE-a", serde_json::json!(1));
        redact_outcome(&mut o, &[secret]);
        assert_eq!(o.stdout, "token=sk-LIVE-a");
    }

    #[test]
    fn fragments_of_a_secret_are_redacted_wherever_they_appear() {
        let secret = "MMMMMMMMMMMMMMMMMMMMabcdefghijklmnopqrstuvwxyzabcdefghijkl".to_owned();
        let r = Redactor::new(forms(&secret), byte_forms(&secret));
        // QuickJS keeps 63 bytes of a property name in a TypeError.
        assert_eq!(
            r.text(&format!(
                "cannot read property '{}\u{2026}' of null",
                &secret[..40]
            )),
            "cannot read property '[REDACTED]\u{2026}' of null"
        );
        // The formatter's cut of a long string; the first line of a multi-line secret.
        let pem = "-----BEGIN KEY-----\nMIIsecretline0123\n-----END KEY-----";
        let r = Redactor::new(forms(pem), byte_forms(pem));
        assert_eq!(
            r.text("[ [Error: MIIsecretline0123] ]"),
            "[ [Error: [REDACTED]] ]"
        );
        // A URL parser lowercased the host; the secret's bytes in a printed buffer.
        let r = Redactor::new(forms("sk-LIVE-abc123XYZ"), byte_forms("sk-LIVE-abc123XYZ"));
        assert_eq!(
            r.text("http://sk-live-abc123xyz.example/"),
            "http://[REDACTED].example/"
        );
        assert_eq!(
            r.text("<73 6b 2d 4c 49 56 45 2d 61 62 63 31 32 33 58 59 5a>"),
            "<[REDACTED]>"
        );
        // JSON printed inside an object: escaped twice.
        let r = Redactor::new(forms("a\"b\\c-secret"), byte_forms("a\"b\\c-secret"));
        assert_eq!(
            r.text(r#"{ body: '{"k":"a\\"b\\\\c-secret"}' }"#),
            r#"{ body: '{"k":"[REDACTED]"}' }"#
        );
        // Text that shares less than a fragment with the secret is left alone.
        assert_eq!(r.text("c-secre and a\"b"), "c-secre and a\"b");
    }

    /// Found by a review (2026-12-01): output with no secret in it was redacted.
    #[test]
    fn output_without_the_secret_is_left_alone() {
        let r = Redactor::new(forms("hunter22"), byte_forms("hunter22"));
        // A cut stream ending in a character or two a secret begins with, or its hex and
        // decimal bytes' first digits; a piece of a printed buffer (three bytes of the secret).
        let mut o = outcome("total: 1\nmore", serde_json::json!(1));
        o.truncated = true;
        redact_outcome(&mut o, &["hunter22".to_owned()]);
        assert_eq!(o.stdout, "total: 1\nmore");
        let mut o = outcome("path h", serde_json::json!(1));
        o.truncated = true;
        redact_outcome(&mut o, &["hunter22".to_owned()]);
        assert_eq!(o.stdout, "path h");
        assert_eq!(
            r.text("[ 110, 116, 101, 114, 32, 50 ]"),
            "[ 110, 116, 101, 114, 32, 50 ]"
        );
        assert_eq!(
            r.text("[ 104, 117, 110, 116, 101, 114, 50, 50 ]"),
            "[ [REDACTED] ]"
        );
        // A short secret is matched as written.
        let r = Redactor::new(forms("abcd"), byte_forms("abcd"));
        assert_eq!(r.text("ABCDEFG Abcdef abcd"), "ABCDEFG Abcdef [REDACTED]");
        // A PEM key's armor lines are public.
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
        let r = Redactor::new(forms(pem), byte_forms(pem));
        assert_eq!(
            r.text("-----BEGIN CERTIFICATE----- no PRIVATE KEY here"),
            "-----BEGIN CERTIFICATE----- no PRIVATE KEY here"
        );
        assert_eq!(r.text("key MIIEvQIBADANBgkq"), "key [REDACTED]");
        // Keys redacted alike keep both entries.
        let long = "hunter22-correct-horse";
        let mut v = serde_json::json!({"HUNTER22-CORRECT-HORSE": 1, long: 2, "other": 3});
        redact_json(&mut v, &Redactor::new(forms(long), byte_forms(long)));
        assert_eq!(
            v,
            serde_json::json!({"[REDACTED]": 1, "[REDACTED]#2": 2, "other": 3})
        );
    }

    #[test]
    fn forms_never_shrink_below_the_secret() {
        // A URL path would drop the dot segments: that form is not kept.
        for f in forms("a/../b/./c") {
            assert!(f.len() >= "a/../b/./c".len(), "{f}");
        }
    }

    fn stream(s: &str, secret: &str) -> String {
        Redactor::new(forms(secret), byte_forms(secret)).stream(s, false)
    }

    #[test]
    fn secrets_split_across_console_calls_are_redacted() {
        let s = vec!["hunter22".to_owned()];
        assert_eq!(stream("pw=hunter22!\n", "hunter22"), "pw=[REDACTED]!\n");
        assert_eq!(stream("hun\nter\n22\nok\n", "hunter22"), "[REDACTED]\nok\n");
        assert_eq!(stream("a hunt\ner22 b\n", "hunter22"), "a [REDACTED] b\n");
        assert_eq!(stream("nothing\nhere\n", "hunter22"), "nothing\nhere\n");
        let mut o = Outcome::failed("quickjs", ExecError::internal("x hunter22"));
        o.stdout = "hunter\n22\n".into();
        redact_outcome(&mut o, &s);
        assert_eq!(o.stdout, "[REDACTED]\n");
        assert_eq!(
            o.result.unwrap_err().to_string(),
            "internal error: x [REDACTED]"
        );
        let mut v = serde_json::json!({"k": ["a hunter22 b"], "hunter22": 1});
        redact_json(
            &mut v,
            &Redactor::new(forms("hunter22"), byte_forms("hunter22")),
        );
        assert_eq!(
            v,
            serde_json::json!({"k": ["a [REDACTED] b"], "[REDACTED]": 1})
        );
    }
}
