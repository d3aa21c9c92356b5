//! Redaction: secret values handed to the guest are replaced with `[REDACTED]` wherever they
//! would leave Palisade: stdout, stderr, the result, and error messages and stacks.

use palisade_core::{ExecError, GuestError, Outcome};

/// What a redacted secret becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not redacted (a one-letter secret would erase every such
/// letter); the store should refuse them, and the docs say so.
pub const MIN_REDACTED_LEN: usize = 4;

/// Replaces every occurrence of the `secrets` in `outcome`.
///
/// Each secret is looked for as itself and in the forms Palisade's own output gives it without
/// the guest asking ([`forms`]): escaped inside a quoted string (console output of an object,
/// `JSON.stringify`, a thrown object's message) and percent-encoded in a URL (fetch's errors
/// and `Response.url`). Longer forms go first, so a secret that contains another is replaced
/// whole rather than around the inner one.
///
/// In stdout and stderr an occurrence may also span the line breaks between console calls (the
/// secret printed in pieces, one `console.log` each): the whole span becomes `[REDACTED]`. When
/// the output cap cut the output, a stream that ends with the start of a secret has that end
/// replaced too.
///
/// A guest that means to get a secret out can always transform it first (reverse it, encode it
/// some other way); redaction stops the accidental leaks, as the README's security model says.
pub fn redact_outcome(outcome: &mut Outcome, secrets: &[String]) {
    let mut forms: Vec<String> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_REDACTED_LEN)
        .flat_map(|s| forms(s))
        .collect();
    if forms.is_empty() {
        return;
    }
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
    outcome.stdout = redact_stream(&outcome.stdout, &forms);
    outcome.stderr = redact_stream(&outcome.stderr, &forms);
    if outcome.truncated {
        outcome.stdout = redact_cut_end(&outcome.stdout, &forms);
        outcome.stderr = redact_cut_end(&outcome.stderr, &forms);
    }
    match &mut outcome.result {
        Ok(value) => redact_json(value, &forms),
        Err(e) => redact_error(e, &forms),
    }
}

/// `secret` as it appears in text Palisade produces: itself; escaped as `JSON.stringify` and the
/// console formatter escape a string (with each quote character the formatter may pick); and
/// percent-encoded as a URL's query or path, `encodeURIComponent` and form encoding give it.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    if let Ok(json) = serde_json::to_string(secret) {
        out.push(json[1..json.len() - 1].to_owned());
    }
    for quote in ['\'', '"', '`'] {
        out.push(console_escaped(secret, quote));
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

fn redact_str(s: &str, secrets: &[&str]) -> String {
    let mut out = s.to_owned();
    for secret in secrets {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    out
}

/// A stream the output cap cut: if it ends with the start of a secret (in any of its forms), that
/// end becomes `[REDACTED]`, so the cap never shows part of a secret.
fn redact_cut_end(s: &str, secrets: &[&str]) -> String {
    let longest = secrets
        .iter()
        .filter_map(|secret| {
            (1..secret.len())
                .rev()
                .filter(|&k| secret.is_char_boundary(k))
                .find(|&k| s.ends_with(&secret[..k]))
        })
        .max();
    match longest {
        Some(k) => format!("{}{REDACTED}", &s[..s.len() - k]),
        None => s.to_owned(),
    }
}

/// Redacts whole occurrences, then occurrences that span line breaks.
fn redact_stream(s: &str, secrets: &[&str]) -> String {
    let mut out = redact_str(s, secrets);
    for secret in secrets {
        if secret.contains('\n') {
            continue;
        }
        out = redact_across_lines(&out, secret);
    }
    out
}

/// Finds `secret` in `s` with the `\n`s removed and replaces each matching span of the original,
/// line breaks included, with one `[REDACTED]`.
fn redact_across_lines(s: &str, secret: &str) -> String {
    if !s.contains('\n') {
        return s.to_owned();
    }
    // Byte offsets in `s` of each byte kept in `joined`.
    let mut joined = String::with_capacity(s.len());
    let mut origin = Vec::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        if c != '\n' {
            joined.push(c);
            origin.extend(std::iter::repeat_n(i, c.len_utf8()));
        }
    }
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(pos) = joined[from..].find(secret) {
        let start = from + pos;
        let end = start + secret.len();
        let (a, b) = (origin[start], origin[end - 1] + 1);
        if s[a..b].contains('\n') {
            spans.push((a, b));
        }
        from = end;
    }
    if spans.is_empty() {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (a, b) in spans {
        // Span ends fall on char boundaries: `b` is one past a whole char.
        let b = (b..=s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        out.push_str(&s[at..a]);
        out.push_str(REDACTED);
        at = b;
    }
    out.push_str(&s[at..]);
    out
}

fn redact_json(value: &mut serde_json::Value, secrets: &[&str]) {
    match value {
        serde_json::Value::String(s) => *s = redact_str(s, secrets),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, secrets)),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                redact_json(&mut v, secrets);
                map.insert(redact_str(&k, secrets), v);
            }
        }
        _ => {}
    }
}

fn redact_guest(g: &mut GuestError, secrets: &[&str]) {
    g.message = redact_str(&g.message, secrets);
    g.name = g.name.as_deref().map(|n| redact_str(n, secrets));
    g.stack = g.stack.as_deref().map(|s| redact_stream(s, secrets));
}

fn redact_error(e: &mut ExecError, secrets: &[&str]) {
    match e {
        ExecError::Syntax(g) | ExecError::Exception(g) => redact_guest(g, secrets),
        ExecError::Limit(l) => l.message = redact_str(&l.message, secrets),
        ExecError::NotSerializable { message }
        | ExecError::PolicyDenied { message }
        | ExecError::InvalidRequest { message }
        | ExecError::Internal { message } => *message = redact_str(message, secrets),
        ExecError::EngineUnavailable { reason, .. } => *reason = redact_str(reason, secrets),
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
        let mut o = outcome("token=sk-LIVE-abc123", serde_json::json!(1));
        o.truncated = true;
        redact_outcome(&mut o, std::slice::from_ref(&secret));
        assert_eq!(o.stdout, "token=[REDACTED]");
        // Not cut: the same text is left alone (it is not a secret, only the start of one).
        let mut o = outcome("token=sk-LIVE-abc123", serde_json::json!(1));
        redact_outcome(&mut o, &[secret]);
        assert_eq!(o.stdout, "token=sk-LIVE-abc123");
    }

    #[test]
    fn forms_never_shrink_below_the_secret() {
        // A URL path would drop the dot segments: that form is not kept.
        for f in forms("a/../b/./c") {
            assert!(f.len() >= "a/../b/./c".len(), "{f}");
        }
    }

    #[test]
    fn secrets_split_across_console_calls_are_redacted() {
        let s = vec!["hunter22".to_owned()];
        assert_eq!(
            redact_stream("pw=hunter22!\n", &["hunter22"]),
            "pw=[REDACTED]!\n"
        );
        assert_eq!(
            redact_stream("hun\nter\n22\nok\n", &["hunter22"]),
            "[REDACTED]\nok\n"
        );
        assert_eq!(
            redact_stream("a hunt\ner22 b\n", &["hunter22"]),
            "a [REDACTED] b\n"
        );
        assert_eq!(
            redact_stream("nothing\nhere\n", &["hunter22"]),
            "nothing\nhere\n"
        );
        let mut o = Outcome::failed("quickjs", ExecError::internal("x hunter22"));
        o.stdout = "hunter\n22\n".into();
        redact_outcome(&mut o, &s);
        assert_eq!(o.stdout, "[REDACTED]\n");
        assert_eq!(
            o.result.unwrap_err().to_string(),
            "internal error: x [REDACTED]"
        );
        let mut v = serde_json::json!({"k": ["a hunter22 b"], "hunter22": 1});
        redact_json(&mut v, &["hunter22"]);
        assert_eq!(
            v,
            serde_json::json!({"k": ["a [REDACTED] b"], "[REDACTED]": 1})
        );
    }
}
