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
/// [`FRAGMENT_LEN`] or more bytes of one of those forms is replaced too, and overlapping or
/// touching matches become one `[REDACTED]`.
///
/// In stdout and stderr a match may also span the line breaks between console calls (the secret
/// printed in pieces, one `console.log` each): the whole span becomes `[REDACTED]`. When the
/// output cap cut the output, a stream that ends with the start of a secret, however short, has
/// that end replaced too.
///
/// A guest that means to get a secret out can always transform it first (reverse it, encode it
/// some other way); redaction stops the accidental leaks, as the README's security model says.
pub fn redact_outcome(outcome: &mut Outcome, secrets: &[String]) {
    let forms: Vec<String> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_REDACTED_LEN)
        .flat_map(|s| forms(s))
        .collect();
    if forms.is_empty() {
        return;
    }
    let redactor = Redactor::new(forms);
    outcome.stdout = redactor.stream(&outcome.stdout, outcome.truncated);
    outcome.stderr = redactor.stream(&outcome.stderr, outcome.truncated);
    match &mut outcome.result {
        Ok(value) => redact_json(value, &redactor),
        Err(e) => redact_error(e, &redactor),
    }
}

/// `secret` as it appears in text Palisade produces: itself; escaped as `JSON.stringify` and the
/// console formatter escape a string (with each quote character the formatter may pick), and
/// each of those escaped once more (a JSON text printed inside an object); percent-encoded as a
/// URL's query or path, `encodeURIComponent` and form encoding give it; and its bytes as the
/// console formatter prints an `ArrayBuffer` (hex) or a `Uint8Array` (decimal).
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
    let bytes = secret.as_bytes();
    out.push(
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    out.push(
        bytes
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    // A URL path drops `.` and `..` segments: a form shorter than the secret is not its form.
    out.retain(|f| f.len() >= secret.len());
    out.sort();
    out.dedup();
    out
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
    /// Each form, ASCII-lowercased.
    forms: Vec<Vec<u8>>,
    /// The same with their line breaks removed, for text whose line breaks were removed.
    joined: Vec<Vec<u8>>,
    grams: Grams,
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
    fn new(forms: Vec<String>) -> Self {
        let forms: Vec<Vec<u8>> = forms
            .iter()
            .map(|f| f.as_bytes().to_ascii_lowercase())
            .collect();
        let joined: Vec<Vec<u8>> = forms
            .iter()
            .map(|f| f.iter().copied().filter(|&b| b != b'\n').collect())
            .collect();
        let grams = grams_of(&forms);
        let joined_grams = grams_of(&joined);
        Redactor {
            forms,
            joined,
            grams,
            joined_grams,
        }
    }

    /// `s` with every match replaced.
    fn text(&self, s: &str) -> String {
        replace(s, spans(s.as_bytes(), &self.forms, &self.grams))
    }

    /// A console stream: matches in it, matches across its line breaks, and, if the output cap
    /// cut it, the start of a secret at its end.
    fn stream(&self, s: &str, cut: bool) -> String {
        if !s.contains('\n') && !cut {
            return self.text(s);
        }
        // The search runs on the text without its line breaks (against the forms without
        // theirs), which finds every match the text itself has and those across lines too.
        // Byte offsets in `s` of each byte kept in `joined`.
        let mut joined = Vec::with_capacity(s.len());
        let mut origin = Vec::with_capacity(s.len());
        for (i, &b) in s.as_bytes().iter().enumerate() {
            if b != b'\n' {
                joined.push(b);
                origin.push(i);
            }
        }
        let mut found = spans(&joined, &self.joined, &self.joined_grams);
        if cut {
            found.extend(cut_end(&joined, &self.joined));
        }
        let spans = found
            .into_iter()
            .filter(|&(a, b)| a < b)
            .map(|(a, b)| (origin[a], origin[b - 1] + 1))
            .collect();
        replace(s, spans)
    }
}

fn grams_of(forms: &[Vec<u8>]) -> Grams {
    let mut map = Grams::default();
    for (f, form) in forms.iter().enumerate() {
        for (at, w) in form.windows(FRAGMENT_LEN).enumerate() {
            let list = map.entry(key(w)).or_default();
            if list.len() < CANDIDATES_PER_GRAM {
                list.push((f, at));
            }
        }
    }
    map
}

/// Byte spans of `text` that are a whole form, or [`FRAGMENT_LEN`] or more bytes of one, ASCII
/// case ignored.
fn spans(text: &[u8], forms: &[Vec<u8>], grams: &Grams) -> Vec<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    // Whole forms shorter than a fragment (longer ones are found as fragments below).
    for form in forms
        .iter()
        .filter(|f| !f.is_empty() && f.len() < FRAGMENT_LEN)
    {
        let mut from = 0;
        while let Some(pos) = find(&lower[from..], form) {
            out.push((from + pos, from + pos + form.len()));
            from += pos + form.len();
        }
    }
    let mut i = 0;
    while i + FRAGMENT_LEN <= lower.len() {
        let Some(candidates) = grams.get(&key(&lower[i..i + FRAGMENT_LEN])) else {
            i += 1;
            continue;
        };
        let (mut start, mut end) = (i, i + FRAGMENT_LEN);
        for &(f, at) in candidates {
            let form = &forms[f];
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

/// The span of `text`'s end that is the start of a form (the longest such start), if any.
fn cut_end(text: &[u8], forms: &[Vec<u8>]) -> Option<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    forms
        .iter()
        .filter_map(|form| (1..form.len()).rev().find(|&k| lower.ends_with(&form[..k])))
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
                map.insert(r.text(&k), v);
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
        let r = Redactor::new(forms(&secret));
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
        let r = Redactor::new(forms(pem));
        assert_eq!(
            r.text("[ [Error: MIIsecretline0123] ]"),
            "[ [Error: [REDACTED]] ]"
        );
        // A URL parser lowercased the host; the secret's bytes in a printed buffer.
        let r = Redactor::new(forms("sk-LIVE-abc123XYZ"));
        assert_eq!(
            r.text("http://sk-live-abc123xyz.example/"),
            "http://[REDACTED].example/"
        );
        assert_eq!(
            r.text("<73 6b 2d 4c 49 56 45 2d 61 62 63 31 32 33 58 59 5a>"),
            "<[REDACTED]>"
        );
        // JSON printed inside an object: escaped twice.
        let r = Redactor::new(forms("a\"b\\c-secret"));
        assert_eq!(
            r.text(r#"{ body: '{"k":"a\\"b\\\\c-secret"}' }"#),
            r#"{ body: '{"k":"[REDACTED]"}' }"#
        );
        // Text that shares less than a fragment with the secret is left alone.
        assert_eq!(r.text("c-secre and a\"b"), "c-secre and a\"b");
    }

    #[test]
    fn forms_never_shrink_below_the_secret() {
        // A URL path would drop the dot segments: that form is not kept.
        for f in forms("a/../b/./c") {
            assert!(f.len() >= "a/../b/./c".len(), "{f}");
        }
    }

    fn stream(s: &str, secret: &str) -> String {
        Redactor::new(forms(secret)).stream(s, false)
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
        redact_json(&mut v, &Redactor::new(forms("hunter22")));
        assert_eq!(
            v,
            serde_json::json!({"k": ["a [REDACTED] b"], "[REDACTED]": 1})
        );
    }
}
