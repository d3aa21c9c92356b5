//! Palisade's engine-neutral core: [`Request`], [`Limits`], [`Outcome`], the stable
//! [`ErrorKind`]s, the [`Engine`] trait, and console capture shared by every engine.
//!
//! Engines depend on this crate; callers use the `palisade` facade, which re-exports it.
//!
//! ```
//! use palisade_core::{ErrorKind, Limits, Request};
//!
//! let req = Request::script("1 + 1").with_limits(Limits { memory: 8 << 20, ..Limits::default() });
//! req.limits.validate().unwrap();
//! assert_eq!(ErrorKind::MemoryLimit.as_str(), "memory_limit");
//! ```
#![forbid(unsafe_code)]

pub mod code_cache;
pub mod engine;
pub mod host;
pub mod limits;
pub mod modules;
pub mod outcome;
pub mod output;
pub mod policy;
pub mod primordials;
pub mod request;
pub mod rng;
pub mod text;
pub mod units;

pub use engine::{Capabilities, Engine, EngineInfo};
pub use host::{HostCalls, HostError, HostValue};
pub use limits::{ConfigError, Limit, Limits};
pub use outcome::{
    ErrorKind, ErrorRecord, ExecError, GuestError, LimitExceeded, Metrics, Outcome, OutcomeRecord,
    Status,
};
pub use policy::{HostGlobal, Policy, PolicyError};
pub use request::{Mode, Request};

/// The console formatter every engine installs in the guest, so that `console.log` prints the
/// same bytes on every engine. Evaluating it yields a factory; calling the factory with the
/// object of [`primordials::PRIMORDIALS`] (captured before guest code ran) yields a function
/// `(args: any[]) => string`.
pub const CONSOLE_JS: &str = include_str!("../js/console.js");

/// Deterministic mode's clock shim: evaluating it yields a function that takes the host's
/// `now()` (milliseconds) and replaces the global `Date` so every way of reading the current time
/// goes through it.
pub const DETERMINISTIC_JS: &str = include_str!("../js/deterministic.js");

/// The host prelude every engine installs: evaluating it yields a factory; calling the factory
/// with the primordials object, the engine's `hostcall` primitive (see [`host`]) and
/// `loadFetch` (a function returning the evaluated [`HOST_FETCH_JS`]) yields
/// `{crypto, performance, fetch, Headers, Response, secrets}`, which the engine defines as
/// globals, keeping only those [`Policy::host_globals`] lists for the run.
pub const HOST_JS: &str = include_str!("../js/host.js");

/// The host prelude's fetch part (`fetch`, `Headers`, `Response`): evaluating it yields the
/// function [`HOST_JS`] calls, through `loadFetch`, on the first read of any of the three. It is
/// a file of its own so that an engine building a runtime per run reads it only when a run's
/// policy allows fetch.
pub const HOST_FETCH_JS: &str = include_str!("../js/host_fetch.js");

/// [`HOST_JS`] and [`HOST_FETCH_JS`] as one expression whose value is a two-argument factory
/// `(primordials, hostcall)`, with the fetch part bound in: for the v8 engine, which evaluates
/// its whole prelude once per prepared context, where reading the fetch part lazily would save
/// nothing. (The QuickJS engines compile the two as scripts of their own, [`HOST_JS_FILE`] and
/// [`HOST_FETCH_JS_FILE`], so frames inside them read the same on both.)
pub fn host_prelude_bound() -> String {
    let strip = |js: &'static str| js.trim_end().trim_end_matches(';');
    format!(
        "(function (factory, fetchPart) {{ \"use strict\"; return function (P, hostcall) {{ \
         return factory(P, hostcall, function () {{ return fetchPart; }}); }}; }})(\n{},\n{}\n)",
        strip(HOST_JS),
        strip(HOST_FETCH_JS)
    )
}

/// The file name every engine gives [`HOST_JS`], so a frame inside it reads the same on every
/// QuickJS build (`palisade:host:62:27`).
pub const HOST_JS_FILE: &str = "palisade:host";
/// The file name every engine gives [`HOST_FETCH_JS`] (compiled as a script of its own, so its
/// frames' lines are the file's own).
pub const HOST_FETCH_JS_FILE: &str = "palisade:fetch";
/// The file name every engine gives [`DETERMINISTIC_JS`].
pub const DETERMINISTIC_JS_FILE: &str = "palisade:deterministic";
/// The file name every engine gives [`CONSOLE_JS`].
pub const CONSOLE_JS_FILE: &str = "palisade:console";

/// The file names of Palisade's own scripts on every engine: the host prelude, its fetch part,
/// the deterministic clock, the console formatter, the native engine's prototypes snippet, and
/// the wasm guest's primordials capture and policy preparation; V8's whole prelude is
/// `palisade:prelude`.
pub const HOST_FILES: &[&str] = &[
    HOST_JS_FILE,
    HOST_FETCH_JS_FILE,
    DETERMINISTIC_JS_FILE,
    CONSOLE_JS_FILE,
    "palisade:protos",
    "palisade:primordials",
    "palisade:prepare",
    "palisade:prelude",
];

/// Whether one line of a stack is a frame in one of Palisade's own scripts ([`HOST_FILES`]):
/// its location (the last parenthesised part, or what follows `at ` when there is none) is one
/// of those files, with or without a position. (A guest can print any text as a stack, a
/// function name included, so this tidies stacks; it guards nothing.)
///
/// ```
/// use palisade_core::is_host_frame;
/// assert!(is_host_frame("    at domError (palisade:host:62:27)"));
/// assert!(is_host_frame("    at palisade:prelude:12:3"));
/// assert!(!is_host_frame("    at f (palisade:x (main.js:1:5)"));
/// assert!(!is_host_frame("    at f (palisade:hostile.js:1:5)"));
/// assert!(!is_host_frame("    at f (main.js:1:5)"));
/// ```
pub fn is_host_frame(line: &str) -> bool {
    let Some(frame) = line.trim().strip_prefix("at ") else {
        return false;
    };
    let location = match frame.strip_suffix(')').and_then(|f| f.rsplit_once(" (")) {
        Some((_, loc)) => loc,
        None => frame,
    };
    HOST_FILES.iter().any(|file| {
        location
            .strip_prefix(file)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
    })
}

/// An uncaught error's stack as the outcome reports it on every engine: without the frames of
/// Palisade's own scripts (the host prelude, the console formatter, the V8 engine's run
/// wrapper), which are the host's internals and differ from engine to engine. What the guest
/// itself reads from `error.stack` is left as the engine made it.
///
/// ```
/// let stack = "    at domError (palisade:host:62:27)\n    at <eval> (main.js:1:7)\n";
/// assert_eq!(palisade_core::without_host_frames(stack), "    at <eval> (main.js:1:7)\n");
/// ```
pub fn without_host_frames(stack: &str) -> String {
    stack
        .split_inclusive('\n')
        .filter(|l| !is_host_frame(l))
        .collect()
}

/// The message engines use for a stack overflow (`RangeError`), the same as V8's.
pub const STACK_OVERFLOW_MESSAGE: &str = "Maximum call stack size exceeded";

/// Whether an uncaught guest error is a stack overflow.
pub fn is_stack_overflow(error: &GuestError) -> bool {
    error.name.as_deref() == Some("RangeError") && error.message == STACK_OVERFLOW_MESSAGE
}

/// The `stack_overflow` outcome for an uncaught overflow with this message, under `stack` bytes
/// of stack: the same text on every engine.
pub fn stack_overflow_error(message: &str, stack: u64) -> ExecError {
    ExecError::limit(
        Limit::Stack,
        stack,
        None,
        format!("{message} (stack limit {})", units::format_size(stack)),
    )
}

/// Classifies an uncaught guest error the way every engine must: a policy denial the host threw
/// in this run (`denied`) is `policy_denied`, a stack overflow is `stack_overflow` (under
/// `stack` bytes), anything else an `exception`.
pub fn classify_uncaught(
    guest: GuestError,
    stack: u64,
    denied: impl FnOnce(&str) -> bool,
) -> ExecError {
    let guest = match denial(guest, denied) {
        Ok(guest) => guest,
        Err(e) => return e,
    };
    if is_stack_overflow(&guest) {
        return stack_overflow_error(&guest.message, stack);
    }
    ExecError::Exception(guest)
}

/// Classifies the error an engine's own `JSON.stringify` threw while converting the result: a
/// policy denial as by [`classify_uncaught`], anything else `not_serializable` with the error's
/// text, as V8 reports it. A stack overflow with no position in the guest's script came from
/// the result's own depth (QuickJS's `JSON.stringify` recurses; V8's reaches the shared depth
/// rule instead), and is [`result_too_deep`]; one with a position came from the guest's own
/// code (a `toJSON` or a getter that recursed), and is reported as that code's error. Until
/// 2026-12-02 every overflow here, even one the guest threw itself, was "nested too deeply" on
/// the QuickJS engines.
pub fn classify_conversion_failure(
    guest: GuestError,
    denied: impl FnOnce(&str) -> bool,
) -> ExecError {
    let guest = match denial(guest, denied) {
        Ok(guest) => guest,
        Err(e) => return e,
    };
    if is_stack_overflow(&guest) && guest.line.is_none() {
        return result_too_deep();
    }
    ExecError::NotSerializable {
        message: guest.to_string(),
    }
}

/// `policy_denied` for a denial the host threw in this run (`denied`), otherwise the error back.
fn denial(guest: GuestError, denied: impl FnOnce(&str) -> bool) -> Result<GuestError, ExecError> {
    if guest.message.starts_with(policy::DENIED_PREFIX) && denied(&guest.message) {
        return Err(ExecError::PolicyDenied {
            message: guest.message,
        });
    }
    Ok(guest)
}

/// A result too deep for the engine's own `JSON.stringify` (its stack ran out): the same kind
/// as a result deeper than [`MAX_RESULT_DEPTH`].
pub fn result_too_deep() -> ExecError {
    ExecError::NotSerializable {
        message: format!(
            "the result is nested too deeply to convert (more than the {MAX_RESULT_DEPTH} levels Palisade converts)"
        ),
    }
}

/// A stack with its frames' columns in UTF-16 code units, as V8 (and the contract) counts
/// them, where QuickJS-NG counts UTF-8 bytes from the line's start. `sources` gives the text
/// of a file by name; frames in other files are left alone.
///
/// Until 2026-12-02 the QuickJS engines reported `var s = "日本語"; undefinedThing` at column
/// 22 and V8 at 16, and a leading byte-order mark shifted every column of line 1 by 3 there.
///
/// ```
/// let src = "var s = \"日本語\"; oops";
/// let stack = "    at <eval> (main.js:1:22)\n";
/// let fixed = palisade_core::utf16_columns(stack, |f| (f == "main.js").then_some(src));
/// assert_eq!(fixed, "    at <eval> (main.js:1:16)\n");
/// ```
pub fn utf16_columns<'a>(stack: &str, sources: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(stack.len());
    let mut lines = LineStarts::default();
    for (i, frame) in stack.split_inclusive('\n').enumerate() {
        if i < MAX_CONVERTED_FRAMES {
            out.push_str(&utf16_frame(frame, &sources, &mut lines));
        } else {
            out.push_str(frame);
        }
    }
    out
}

/// The most frames [`utf16_columns`] converts. An engine's own stack has at most 64 (QuickJS's
/// cap); more come from a `stack` the guest wrote itself, and converting each would scan the
/// source again, on the host's time.
const MAX_CONVERTED_FRAMES: usize = 64;

/// The largest byte column converted: each conversion scans the line up to its column, and a
/// guest-written stack can name any column. Past it a column is left in bytes.
const MAX_CONVERTED_COLUMN: u32 = 1 << 20;

/// Where each line of each file starts, found once per file (see [`line_starts`]).
#[derive(Default)]
struct LineStarts(Vec<(String, Vec<usize>)>);

impl LineStarts {
    fn of(&mut self, file: &str, text: &str) -> &[usize] {
        let i = match self.0.iter().position(|(f, _)| f == file) {
            Some(i) => i,
            None => {
                self.0.push((file.to_owned(), line_starts(text)));
                self.0.len() - 1
            }
        };
        &self.0[i].1
    }
}

/// The byte offset where each line of `text` starts, lines ending as ECMAScript ends them (LF,
/// CR LF, CR, U+2028, U+2029).
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
            continue;
        }
        let mut next = i + c.len_utf8();
        if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
            chars.next();
            next += 1;
        }
        starts.push(next);
    }
    starts
}

/// One frame line with its position's column converted (see [`utf16_columns`]).
fn utf16_frame<'a>(
    frame: &str,
    sources: &impl Fn(&str) -> Option<&'a str>,
    lines: &mut LineStarts,
) -> String {
    // The location starts after `(` or `at `, and ends at `:line:col`.
    let Some(start) = frame
        .rfind('(')
        .map(|i| i + 1)
        .or_else(|| frame.find("at ").map(|i| i + 3))
    else {
        return frame.to_owned();
    };
    let location = &frame[start..];
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    // `file:line:col` where the file may itself hold colons: the last two numbers are the
    // position.
    let mut best = None;
    for (i, _) in location.match_indices(':') {
        let rest = &location[i + 1..];
        let line_len = digits(rest);
        if line_len == 0 || !rest[line_len..].starts_with(':') {
            continue;
        }
        let col_at = i + 1 + line_len + 1;
        let col_len = digits(&location[col_at..]);
        if col_len == 0 {
            continue;
        }
        best = Some((i, line_len, col_at, col_len));
    }
    let Some((colon, line_len, col_at, col_len)) = best else {
        return frame.to_owned();
    };
    let file = &location[..colon];
    let (Some(text), Ok(line), Ok(col)) = (
        sources(file),
        location[colon + 1..colon + 1 + line_len].parse::<u32>(),
        location[col_at..col_at + col_len].parse::<u32>(),
    ) else {
        return frame.to_owned();
    };
    let starts = lines.of(file, text);
    let col = match starts.get((line as usize).wrapping_sub(1)) {
        Some(&begin) => column_in(&text[begin..], col),
        None => col,
    };
    format!(
        "{}{}{}",
        &frame[..start + col_at],
        col,
        &frame[start + col_at + col_len..]
    )
}

/// The UTF-16 column of 1-based byte column `byte_col` on 1-based line `line` of `text`. Lines
/// end as ECMAScript ends them (LF, CR LF, CR, U+2028, U+2029). A column past the line's end
/// keeps its excess as is; a line past the text's end, or a column past 2^20, is left as it is.
///
/// ```
/// assert_eq!(palisade_core::utf16_column("a\n\u{feff}éx", 2, 6), 3);
/// assert_eq!(palisade_core::utf16_column("😀x", 1, 5), 3);
/// assert_eq!(palisade_core::utf16_column("abc", 1, 9), 9);
/// ```
pub fn utf16_column(text: &str, line: u32, byte_col: u32) -> u32 {
    match line_starts(text).get((line as usize).wrapping_sub(1)) {
        Some(&begin) => column_in(&text[begin..], byte_col),
        None => byte_col,
    }
}

/// The UTF-16 column of 1-based byte column `byte_col` of the line `rest` starts.
fn column_in(rest: &str, byte_col: u32) -> u32 {
    if byte_col > MAX_CONVERTED_COLUMN {
        return byte_col;
    }
    let want = byte_col.saturating_sub(1) as usize;
    let (mut bytes, mut units) = (0usize, 0usize);
    for c in rest.chars() {
        if bytes >= want || matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
            break;
        }
        bytes += c.len_utf8();
        units += c.len_utf16();
    }
    u32::try_from(units + want.saturating_sub(bytes) + 1).unwrap_or(byte_col)
}

/// Parses `file:line:col` (the last such triple) out of one stack frame line, e.g.
/// `    at f (script.js:3:5)` gives `(3, 5)`. The file name counts only as a frame's location:
/// right after `(` or `at `, so a file named `host` is not found in `(palisade:host:62:27)`.
///
/// ```
/// assert_eq!(palisade_core::frame_position("    at f (script.js:3:5)", "script.js"), Some((3, 5)));
/// assert_eq!(palisade_core::frame_position("    at script.js:10:1", "script.js"), Some((10, 1)));
/// assert_eq!(palisade_core::frame_position("    at native", "script.js"), None);
/// assert_eq!(palisade_core::frame_position("    at f (palisade:host:62:27)", "host"), None);
/// assert_eq!(palisade_core::frame_position("    at f (my-host:1:2)", "host"), None);
/// ```
pub fn frame_position(frame: &str, file: &str) -> Option<(u32, u32)> {
    if file.is_empty() {
        return None;
    }
    frame
        .match_indices(file)
        .filter(|(i, _)| {
            let before = &frame[..*i];
            before.ends_with('(') || before.ends_with("at ")
        })
        .filter_map(|(i, _)| position_after(&frame[i + file.len()..]))
        .last()
}

/// `:line:col` at the start of `rest`, as numbers.
fn position_after(rest: &str) -> Option<(u32, u32)> {
    let rest = rest.strip_prefix(':')?;
    let mut parts = rest.splitn(2, ':');
    let line = parts.next()?.parse().ok()?;
    let col_str = parts.next()?;
    let end = col_str
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(col_str.len());
    let column = col_str[..end].parse().ok()?;
    Some((line, column))
}

/// The first position in `stack` that points into `file`.
pub fn stack_position(stack: &str, file: &str) -> Option<(u32, u32)> {
    stack.lines().find_map(|l| frame_position(l, file))
}

/// A guest error as a QuickJS engine reports it, made the outcome's: its stack without the
/// host's frames and with its columns in UTF-16 code units ([`utf16_columns`], QuickJS counts
/// bytes), and its line and column those of the first frame in the request's own file. The
/// native engine and the wasm guest's host both build theirs here.
pub fn quickjs_guest_error(
    name: Option<String>,
    message: String,
    stack: Option<&str>,
    request: &Request,
) -> GuestError {
    let stack = stack.map(|s| utf16_columns(&without_host_frames(s), |file| request.text_of(file)));
    let pos = stack
        .as_deref()
        .and_then(|s| stack_position(s, request.file_name()));
    GuestError {
        name,
        message,
        stack,
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
    }
}

/// The deepest result nesting Palisade converts; deeper results are `not_serializable`.
pub const MAX_RESULT_DEPTH: usize = 1000;

/// Turns an engine's `JSON.stringify` text of the result into the outcome's value, with the rules
/// every engine shares: nesting deeper than [`MAX_RESULT_DEPTH`] is `not_serializable`, whatever
/// the size (the depth is checked first: QuickJS's recursive `JSON.stringify` fails on a very
/// deep value before any text exists, while V8 converts it, and until 2026-12-01 v8 then said
/// `result_limit` for the same script); over `limit` bytes is `result_limit`; lone surrogates
/// (valid JSON text, but not Unicode) are `not_serializable`.
///
/// ```
/// use palisade_core::{result_from_json, ErrorKind};
/// assert_eq!(result_from_json("[1]", 10).unwrap(), serde_json::json!([1]));
/// assert_eq!(result_from_json("\"long\"", 3).unwrap_err().kind(), ErrorKind::ResultLimit);
/// assert_eq!(result_from_json(r#""\ud800""#, 99).unwrap_err().kind(), ErrorKind::NotSerializable);
/// ```
pub fn result_from_json(json: &str, limit: u64) -> Result<serde_json::Value, ExecError> {
    let len = json.len() as u64;
    if len > limit {
        return Err(result_over_limit(len, json_depth(json), limit));
    }
    if json_depth(json) > MAX_RESULT_DEPTH {
        return Err(result_too_deep());
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.disable_recursion_limit();
    serde::Deserialize::deserialize(&mut de).map_err(|e| ExecError::NotSerializable {
        // The engine's own text is valid JSON, so what serde refuses is a lone surrogate (an
        // escape `\udXXX` with no partner): said so, not in serde's words ("unexpected end of
        // hex escape"), until 2026-12-02.
        message: match lone_surrogate(json) {
            Some((unit, at)) => format!(
                "the result holds a string with a lone surrogate (\\u{unit:04x} at byte {at} of \
                 its JSON text), which is not Unicode and cannot be returned"
            ),
            None => format!("the result cannot be represented as Unicode JSON: {e}"),
        },
    })
}

/// The error for a result whose JSON text is `len` bytes, over `limit`, with objects nested
/// `depth` deep: the same rules as [`result_from_json`] (too deep is `not_serializable` first), for
/// an engine that counted the text without keeping it, so that a result far over its limit is
/// `result_limit` and not the memory its text would take (the QuickJS engines, since 2026-12-02;
/// until then their `JSON.stringify` ran out of memory first, `memory_limit`, where V8 said
/// `result_limit`).
///
/// ```
/// use palisade_core::{result_over_limit, ErrorKind};
/// assert_eq!(result_over_limit(12, 1, 10).kind(), ErrorKind::ResultLimit);
/// assert_eq!(result_over_limit(1 << 20, 1001, 10).kind(), ErrorKind::NotSerializable);
/// ```
pub fn result_over_limit(len: u64, depth: usize, limit: u64) -> ExecError {
    if depth > MAX_RESULT_DEPTH {
        return result_too_deep();
    }
    ExecError::limit(
        Limit::Result,
        limit,
        Some(len),
        format!("the result is {len} bytes, over the result limit of {limit} bytes"),
    )
}

/// The first `\uXXXX` escape in a JSON text that is a surrogate without its partner, and the
/// byte offset of its backslash.
///
/// ```
/// assert_eq!(palisade_core::lone_surrogate(r#"["a\ud800b"]"#), Some((0xd800, 3)));
/// assert_eq!(palisade_core::lone_surrogate(r#""\udc00""#), Some((0xdc00, 1)));
/// assert_eq!(palisade_core::lone_surrogate(r#""\ud83d\ude00 \\ud800""#), None);
/// ```
pub fn lone_surrogate(json: &str) -> Option<(u16, usize)> {
    let bytes = json.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        let hex = bytes.get(at..at + 6)?;
        if !hex.starts_with(b"\\u") {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match unit(i) {
            Some(u @ 0xd800..=0xdbff) => match unit(i + 6) {
                Some(0xdc00..=0xdfff) => i += 12,
                _ => return Some((u, i)),
            },
            Some(u @ 0xdc00..=0xdfff) => return Some((u, i)),
            Some(_) => i += 6,
            // Any other escape is two bytes; its second may be a backslash.
            None => i += 2,
        }
    }
    None
}

/// The maximum nesting depth of arrays and objects in a JSON text (0 for a scalar), found by a
/// linear scan that skips string contents.
///
/// ```
/// assert_eq!(palisade_core::json_depth("1"), 0);
/// assert_eq!(palisade_core::json_depth(r#"[{"a": "[[["}, [2]]"#), 2);
/// ```
pub fn json_depth(json: impl AsRef<[u8]>) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in json.as_ref() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only frames in a known file change; the last `:line:col` of a location is the position,
    /// whatever colons the file's name holds; lines end as ECMAScript ends them.
    #[test]
    fn utf16_columns_rewrite_only_known_frames() {
        let main = "é\r\nü = 1; f()\u{2028}😀 x";
        let module = "'é'; g()";
        let sources = |f: &str| match f {
            "main.js" => Some(main),
            "lib:v2.mjs" => Some(module),
            _ => None,
        };
        let stack = "    at f (main.js:2:9)\n    at lib:v2.mjs:1:8\n    at h (other.js:2:9)\n    \
                     at <eval> (main.js:3:6)\n    at native\n";
        assert_eq!(
            utf16_columns(stack, sources),
            "    at f (main.js:2:8)\n    at lib:v2.mjs:1:7\n    at h (other.js:2:9)\n    \
             at <eval> (main.js:3:4)\n    at native\n"
        );
        // A line past the end, or a frame without a position, is left alone.
        assert_eq!(utf16_column(main, 9, 4), 4);
        assert_eq!(utf16_column(main, 0, 4), 4);
        assert_eq!(utf16_columns("at main.js", sources), "at main.js");
    }

    /// A guest can throw any `stack` text: only the first 64 frames are converted, and no
    /// column past 2^20, so the host's work stays bounded whatever the text names.
    #[test]
    fn utf16_columns_bound_their_work() {
        let line = "é".repeat(3 << 20);
        let sources = |f: &str| (f == "main.js").then_some(line.as_str());
        let far = format!("at main.js:1:{}\n", 6 << 20);
        assert_eq!(utf16_columns(&far, sources), far);
        let stack = "at main.js:1:5\n".repeat(100);
        let done = utf16_columns(&stack, sources);
        assert_eq!(done.matches("main.js:1:3\n").count(), 64);
        assert_eq!(done.matches("main.js:1:5\n").count(), 36);
    }
}
