//! The outcome of one execution: a JSON value or a typed error, the captured console output, and
//! a resource receipt.

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::limits::Limit;
use crate::units::millis;

/// The stable error kinds of the contract. Their snake_case names are used by the library, the
/// CLI and HTTP alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The source does not parse.
    SyntaxError,
    /// A thrown value reached the top.
    Exception,
    /// The wall-clock deadline passed.
    Timeout,
    /// The guest heap limit was hit (even if the guest caught the error).
    MemoryLimit,
    /// The guest stack overflowed.
    StackOverflow,
    /// The fuel budget ran out.
    FuelExhausted,
    /// The serialized result is larger than the result limit.
    ResultLimit,
    /// The result cannot be represented as JSON.
    NotSerializable,
    /// The policy forbids what the guest tried to do.
    PolicyDenied,
    /// The requested engine is not available on this host.
    EngineUnavailable,
    /// The request itself is invalid (bad limits, bad input JSON, ...).
    InvalidRequest,
    /// A host failure: a bug or fault in Palisade or an engine, never the guest's doing.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the contract's order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::SyntaxError,
        ErrorKind::Exception,
        ErrorKind::Timeout,
        ErrorKind::MemoryLimit,
        ErrorKind::StackOverflow,
        ErrorKind::FuelExhausted,
        ErrorKind::ResultLimit,
        ErrorKind::NotSerializable,
        ErrorKind::PolicyDenied,
        ErrorKind::EngineUnavailable,
        ErrorKind::InvalidRequest,
        ErrorKind::Internal,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::SyntaxError => "syntax_error",
            ErrorKind::Exception => "exception",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MemoryLimit => "memory_limit",
            ErrorKind::StackOverflow => "stack_overflow",
            ErrorKind::FuelExhausted => "fuel_exhausted",
            ErrorKind::ResultLimit => "result_limit",
            ErrorKind::NotSerializable => "not_serializable",
            ErrorKind::PolicyDenied => "policy_denied",
            ErrorKind::EngineUnavailable => "engine_unavailable",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Internal => "internal",
        }
    }

    /// The CLI exit status for a run that ended with this kind: 3 for `engine_unavailable` and
    /// `internal`, 1 for everything else.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::EngineUnavailable | ErrorKind::Internal => 3,
            _ => 1,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value thrown by guest code, or a syntax error in it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GuestError {
    /// The error's `name` (`TypeError`, ...). `None` when the thrown value is not an Error-like
    /// object (`throw 42`).
    pub name: Option<String>,
    /// The error's `message`, or the thrown value printed as `console.log` would.
    pub message: String,
    /// The stack as the engine printed it, when there is one.
    pub stack: Option<String>,
    /// 1-based line in the guest source, where known.
    pub line: Option<u32>,
    /// 1-based column in the guest source, where known.
    pub column: Option<u32>,
}

/// The most bytes of a guest error's `name`, `message` or `stack` an outcome carries
/// ([`Outcome::cap_error_text`]). The result and output caps bound the rest of an outcome; until
/// 2026-12-01 nothing bounded these, so `throw new Error("x".repeat(3e8))` made a 300 MB outcome
/// past every cap (and more than the service's store takes).
pub const MAX_ERROR_TEXT: usize = 64 << 10;

/// `text` cut to [`MAX_ERROR_TEXT`] bytes at a character boundary, with how much was cut.
fn cap_text(text: &mut String) {
    if text.len() <= MAX_ERROR_TEXT {
        return;
    }
    let mut cut = MAX_ERROR_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let more = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!("\u{2026} [{more} more bytes]"));
}

impl GuestError {
    /// Cuts `name`, `message` and `stack` to [`MAX_ERROR_TEXT`] bytes each.
    pub fn cap_text(&mut self) {
        cap_text(&mut self.message);
        if let Some(name) = &mut self.name {
            cap_text(name);
        }
        if let Some(stack) = &mut self.stack {
            cap_text(stack);
        }
    }
}

impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) if !name.is_empty() => write!(f, "{name}: {}", self.message)?,
            _ => write!(f, "{}", self.message)?,
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (at {line}:{column})")?;
        }
        Ok(())
    }
}

/// A limit that stopped the run: which one, what it was set to, and what was observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitExceeded {
    /// The limit that was hit.
    pub limit: Limit,
    /// Its configured value (bytes, milliseconds or fuel units).
    pub configured: u64,
    /// What was observed when the run stopped (bytes requested, milliseconds elapsed, ...), where
    /// the engine knows it.
    pub observed: Option<u64>,
    /// A human-readable sentence.
    pub message: String,
}

/// Why an execution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The source does not parse.
    #[error("SyntaxError: {0}")]
    Syntax(GuestError),
    /// An uncaught guest exception.
    #[error("uncaught {0}")]
    Exception(GuestError),
    /// A resource limit was hit.
    #[error("{}", .0.message)]
    Limit(LimitExceeded),
    /// The result cannot be represented as JSON.
    #[error("result is not serializable: {message}")]
    NotSerializable {
        /// Why.
        message: String,
    },
    /// The policy forbids what the guest tried to do.
    #[error("policy denied: {message}")]
    PolicyDenied {
        /// What was denied.
        message: String,
    },
    /// The engine is not available on this host.
    #[error("engine `{engine}` is unavailable: {reason}")]
    EngineUnavailable {
        /// The engine's name.
        engine: String,
        /// Why, and how to install it.
        reason: String,
    },
    /// The request is invalid.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
    },
    /// A host failure.
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

impl ExecError {
    /// The stable kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExecError::Syntax(_) => ErrorKind::SyntaxError,
            ExecError::Exception(_) => ErrorKind::Exception,
            ExecError::Limit(l) => match l.limit {
                Limit::Memory => ErrorKind::MemoryLimit,
                Limit::Timeout => ErrorKind::Timeout,
                Limit::Stack => ErrorKind::StackOverflow,
                Limit::Fuel => ErrorKind::FuelExhausted,
                Limit::Result | Limit::Output => ErrorKind::ResultLimit,
            },
            ExecError::NotSerializable { .. } => ErrorKind::NotSerializable,
            ExecError::PolicyDenied { .. } => ErrorKind::PolicyDenied,
            ExecError::EngineUnavailable { .. } => ErrorKind::EngineUnavailable,
            ExecError::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            ExecError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Shorthand for a limit error.
    pub fn limit(limit: Limit, configured: u64, observed: Option<u64>, message: String) -> Self {
        ExecError::Limit(LimitExceeded {
            limit,
            configured,
            observed,
            message,
        })
    }

    /// The run passed its wall-clock limit `timeout` after `elapsed`: a `timeout` limit error
    /// whose message is "the timeout of N ms was exceeded". Every engine, the CLI and the
    /// service build their `timeout` here, so the figures are whole milliseconds alike.
    pub fn timeout(timeout: Duration, elapsed: Duration) -> Self {
        Self::timeout_with(
            timeout,
            elapsed,
            format!("the timeout of {} ms was exceeded", millis(timeout)),
        )
    }

    /// [`ExecError::timeout`], with why it was exceeded added in parentheses.
    pub fn timeout_because(timeout: Duration, elapsed: Duration, why: &str) -> Self {
        Self::timeout_with(
            timeout,
            elapsed,
            format!("the timeout of {} ms was exceeded ({why})", millis(timeout)),
        )
    }

    /// A result promise that can never settle (nothing is left to run that could settle it):
    /// reported as `timeout` at once, rather than after waiting out the limit.
    pub fn never_settles(timeout: Duration, elapsed: Duration) -> Self {
        Self::timeout_with(
            timeout,
            elapsed,
            "the result promise can never settle: no pending jobs remain",
        )
    }

    /// A `timeout` limit error with its own `message`.
    pub fn timeout_with(timeout: Duration, elapsed: Duration, message: impl Into<String>) -> Self {
        Self::limit(
            Limit::Timeout,
            millis(timeout),
            Some(millis(elapsed)),
            message.into(),
        )
    }

    /// Shorthand for an internal error.
    pub fn internal(message: impl Into<String>) -> Self {
        ExecError::Internal {
            message: message.into(),
        }
    }

    /// The guest error, for syntax errors and exceptions.
    pub fn guest(&self) -> Option<&GuestError> {
        match self {
            ExecError::Syntax(g) | ExecError::Exception(g) => Some(g),
            _ => None,
        }
    }

    /// The flat JSON record of the contract's `error` field.
    pub fn to_record(&self) -> ErrorRecord {
        let mut rec = ErrorRecord {
            kind: self.kind(),
            name: None,
            message: String::new(),
            stack: None,
            line: None,
            column: None,
            limit: None,
            configured: None,
            observed: None,
        };
        match self {
            ExecError::Syntax(g) | ExecError::Exception(g) => {
                rec.name = g.name.clone();
                rec.message = g.message.clone();
                rec.stack = g.stack.clone();
                rec.line = g.line;
                rec.column = g.column;
            }
            ExecError::Limit(l) => {
                rec.message = l.message.clone();
                rec.limit = Some(l.limit);
                rec.configured = Some(l.configured);
                rec.observed = l.observed;
            }
            ExecError::NotSerializable { message }
            | ExecError::PolicyDenied { message }
            | ExecError::InvalidRequest { message }
            | ExecError::Internal { message } => rec.message = message.clone(),
            ExecError::EngineUnavailable { .. } => rec.message = self.to_string(),
        }
        rec
    }
}

impl From<ErrorRecord> for ExecError {
    fn from(r: ErrorRecord) -> Self {
        let guest = || GuestError {
            name: r.name.clone(),
            message: r.message.clone(),
            stack: r.stack.clone(),
            line: r.line,
            column: r.column,
        };
        let limit = |limit| {
            ExecError::Limit(LimitExceeded {
                limit: r.limit.unwrap_or(limit),
                configured: r.configured.unwrap_or(0),
                observed: r.observed,
                message: r.message.clone(),
            })
        };
        match r.kind {
            ErrorKind::SyntaxError => ExecError::Syntax(guest()),
            ErrorKind::Exception => ExecError::Exception(guest()),
            ErrorKind::Timeout => limit(Limit::Timeout),
            ErrorKind::MemoryLimit => limit(Limit::Memory),
            ErrorKind::StackOverflow => limit(Limit::Stack),
            ErrorKind::FuelExhausted => limit(Limit::Fuel),
            ErrorKind::ResultLimit => limit(Limit::Result),
            ErrorKind::NotSerializable => ExecError::NotSerializable { message: r.message },
            ErrorKind::PolicyDenied => ExecError::PolicyDenied { message: r.message },
            ErrorKind::EngineUnavailable => ExecError::EngineUnavailable {
                engine: String::new(),
                reason: r.message,
            },
            ErrorKind::InvalidRequest => ExecError::InvalidRequest { message: r.message },
            ErrorKind::Internal => ExecError::Internal { message: r.message },
        }
    }
}

/// The flat `error` object of the JSON outcome (the contract's shape, extended with the limit
/// fields for limit kinds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorRecord {
    /// The stable kind.
    pub kind: ErrorKind,
    /// The guest error's name, for `syntax_error` and `exception`.
    pub name: Option<String>,
    /// A human-readable message.
    pub message: String,
    /// The guest stack, where there is one.
    pub stack: Option<String>,
    /// 1-based line, where known.
    pub line: Option<u32>,
    /// 1-based column, where known.
    pub column: Option<u32>,
    /// For limit kinds: which limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// For limit kinds: its configured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured: Option<u64>,
    /// For limit kinds: what was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<u64>,
}

/// The resource receipt of one execution.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Metrics {
    /// The engine that ran it.
    pub engine: String,
    /// Wall-clock microseconds, from accepting the request to having the outcome.
    pub wall_us: u64,
    /// Peak guest heap bytes.
    pub memory_bytes: u64,
    /// Fuel consumed, on engines that count it and when a fuel budget was set.
    pub fuel_used: Option<u64>,
}

/// The outcome of one execution.
///
/// Serializes to the contract's JSON shape:
/// `{"status", "value", "error", "stdout", "stderr", "truncated", "metrics"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The JSON result, or why there is none.
    pub result: Result<serde_json::Value, ExecError>,
    /// Captured `console.log`/`info`/`debug` lines.
    pub stdout: String,
    /// Captured `console.warn`/`error` lines.
    pub stderr: String,
    /// Whether output past the output cap was dropped.
    pub truncated: bool,
    /// The resource receipt.
    pub metrics: Metrics,
}

impl Outcome {
    /// Cuts a guest error's text to [`MAX_ERROR_TEXT`] bytes a field, as every engine's outcome
    /// is cut (the `palisade` facade calls it after every run, once secrets are redacted).
    pub fn cap_error_text(&mut self) {
        if let Err(ExecError::Syntax(g) | ExecError::Exception(g)) = &mut self.result {
            g.cap_text();
        }
    }

    /// An outcome with no output, for failures before any guest code ran.
    pub fn failed(engine: &str, error: ExecError) -> Self {
        Outcome {
            result: Err(error),
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
            metrics: Metrics {
                engine: engine.to_owned(),
                ..Metrics::default()
            },
        }
    }

    /// Whether the run succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The error kind, if the run failed.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.result.as_ref().err().map(ExecError::kind)
    }

    /// The error, if the run failed.
    pub fn error(&self) -> Option<&ExecError> {
        self.result.as_ref().err()
    }

    /// The CLI exit status: 0 ok, 1 for a failed script, 3 for `engine_unavailable`/`internal`.
    pub fn exit_code(&self) -> i32 {
        self.error_kind().map_or(0, ErrorKind::exit_code)
    }

    /// The contract's JSON record.
    pub fn to_record(&self) -> OutcomeRecord {
        OutcomeRecord {
            status: if self.is_ok() {
                Status::Ok
            } else {
                Status::Error
            },
            value: self
                .result
                .as_ref()
                .ok()
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            error: self.error().map(ExecError::to_record),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            truncated: self.truncated,
            metrics: self.metrics.clone(),
        }
    }

    /// The contract's JSON object, as a string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_record()).unwrap_or_else(|e| {
            format!(r#"{{"status":"error","value":null,"error":{{"kind":"internal","message":"cannot serialize outcome: {e}"}}}}"#)
        })
    }
}

/// `ok` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The run produced a value.
    Ok,
    /// The run failed.
    Error,
}

/// The serialized form of an [`Outcome`]: exactly the contract's JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OutcomeRecord {
    /// `ok` or `error`.
    pub status: Status,
    /// The result (`null` on error).
    pub value: serde_json::Value,
    /// The error (`null` on success).
    pub error: Option<ErrorRecord>,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// Whether output was truncated.
    pub truncated: bool,
    /// The resource receipt.
    pub metrics: Metrics,
}

impl From<OutcomeRecord> for Outcome {
    fn from(r: OutcomeRecord) -> Self {
        Outcome {
            result: match (r.status, r.error) {
                (Status::Ok, _) => Ok(r.value),
                (Status::Error, Some(e)) => Err(e.into()),
                (Status::Error, None) => Err(ExecError::internal("error outcome without an error")),
            },
            stdout: r.stdout,
            stderr: r.stderr,
            truncated: r.truncated,
            metrics: r.metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_report_whole_milliseconds_and_say_why() {
        let ms = Duration::from_millis;
        let ExecError::Limit(l) = ExecError::timeout(Duration::from_micros(100_900), ms(140))
        else {
            panic!("a limit error");
        };
        assert_eq!(
            (l.limit, l.configured, l.observed),
            (Limit::Timeout, 100, Some(140))
        );
        assert_eq!(l.message, "the timeout of 100 ms was exceeded");
        let e = ExecError::timeout_because(ms(5), ms(2005), "the worker was stopped");
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(
            e.to_string(),
            ExecError::timeout_with(
                ms(5),
                ms(2005),
                "the timeout of 5 ms was exceeded (the worker was stopped)"
            )
            .to_string()
        );
        let ExecError::Limit(l) = ExecError::never_settles(Duration::MAX, ms(3)) else {
            panic!("a limit error");
        };
        assert_eq!((l.configured, l.observed), (u64::MAX, Some(3)));
        assert!(l.message.contains("can never settle"));
    }

    #[test]
    fn kinds_serialize_as_contract_names() {
        for k in ErrorKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn json_shape_matches_contract() {
        let o = Outcome {
            result: Ok(serde_json::json!(3)),
            stdout: "hi\n".into(),
            stderr: String::new(),
            truncated: false,
            metrics: Metrics {
                engine: "quickjs".into(),
                wall_us: 85,
                memory_bytes: 120_000,
                fuel_used: None,
            },
        };
        let v: serde_json::Value = serde_json::from_str(&o.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "ok", "value": 3, "error": null,
                "stdout": "hi\n", "stderr": "", "truncated": false,
                "metrics": {"engine": "quickjs", "wall_us": 85, "memory_bytes": 120000, "fuel_used": null}})
        );
        let back: Outcome = serde_json::from_value::<OutcomeRecord>(v).unwrap().into();
        assert_eq!(back, o);
    }

    #[test]
    fn error_roundtrip() {
        let e = ExecError::Exception(GuestError {
            name: Some("TypeError".into()),
            message: "x is null".into(),
            stack: Some("...".into()),
            line: Some(3),
            column: Some(5),
        });
        let rec = e.to_record();
        assert_eq!(rec.kind, ErrorKind::Exception);
        assert_eq!(ExecError::from(rec), e);
        let l = ExecError::limit(Limit::Memory, 10, Some(11), "m".into());
        assert_eq!(l.kind(), ErrorKind::MemoryLimit);
        assert_eq!(ExecError::from(l.to_record()), l);
        assert_eq!(ErrorKind::Internal.exit_code(), 3);
        assert_eq!(ErrorKind::Timeout.exit_code(), 1);
    }
}
