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
/// In stdout and stderr an occurrence may also span the line breaks between console calls (the
/// secret printed in pieces, one `console.log` each): the whole span becomes `[REDACTED]`.
pub fn redact_outcome(outcome: &mut Outcome, secrets: &[String]) {
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| s.len() >= MIN_REDACTED_LEN)
        .collect();
    if secrets.is_empty() {
        return;
    }
    outcome.stdout = redact_stream(&outcome.stdout, &secrets);
    outcome.stderr = redact_stream(&outcome.stderr, &secrets);
    match &mut outcome.result {
        Ok(value) => redact_json(value, &secrets),
        Err(e) => redact_error(e, &secrets),
    }
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
