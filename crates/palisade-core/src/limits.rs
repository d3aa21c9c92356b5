//! Resource limits for one execution.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{format_duration, format_size};

/// A limit an execution can hit. The snake_case names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Limit {
    /// Guest heap bytes ([`Limits::memory`]).
    Memory,
    /// Wall-clock time ([`Limits::timeout`]).
    Timeout,
    /// Guest stack bytes ([`Limits::stack`]).
    Stack,
    /// Captured stdout + stderr bytes ([`Limits::output`]). Hitting it truncates; it never fails a run.
    Output,
    /// Serialized result bytes ([`Limits::result`]).
    Result,
    /// Deterministic instruction budget ([`Limits::fuel`]).
    Fuel,
}

impl Limit {
    /// The stable snake_case name, as used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Memory => "memory",
            Limit::Timeout => "timeout",
            Limit::Stack => "stack",
            Limit::Output => "output",
            Limit::Result => "result",
            Limit::Fuel => "fuel",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resource limits for one execution.
///
/// Every field has a documented default ([`Limits::default`]); [`Limits::validate`] checks the
/// values once, and an engine checks that it can enforce every limit that is set
/// ([`crate::Engine::check_limits`]).
///
/// ```
/// use std::time::Duration;
/// use palisade_core::Limits;
///
/// let limits = Limits { memory: 16 << 20, timeout: Duration::from_millis(500), ..Limits::default() };
/// limits.validate().unwrap();
/// assert_eq!(limits.output, 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Guest heap, in bytes. Default 64 MiB. Allowed: 1 MiB ..= 16 GiB.
    #[cfg_attr(
        feature = "schema",
        schemars(range(min = 1_048_576u64, max = 17_179_869_184u64))
    )]
    pub memory: u64,
    /// Wall clock, including awaiting promises, host calls and result conversion. Default 5 s.
    /// Allowed: 1 ms ..= 1 hour. In milliseconds in JSON and TOML.
    #[serde(with = "duration_ms")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "u64", range(min = 1, max = 3_600_000))
    )]
    pub timeout: Duration,
    /// Guest stack, in bytes. `None` (the default) means the engine's default, which is at least
    /// 256 KiB. Allowed: 64 KiB ..= 64 MiB.
    #[cfg_attr(feature = "schema", schemars(range(min = 65_536, max = 67_108_864)))]
    pub stack: Option<u64>,
    /// Captured stdout + stderr, in bytes. Default 1 MiB. Output past it is dropped and the
    /// outcome is marked truncated; the run does not fail.
    pub output: u64,
    /// Serialized (JSON) result, in bytes. Default 1 MiB.
    pub result: u64,
    /// Deterministic instruction budget. `None` (the default) is off. Only engines that can count
    /// instructions accept it.
    pub fuel: Option<u64>,
}

/// Default guest heap: 64 MiB.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// Default wall-clock timeout: 5 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default output cap: 1 MiB.
pub const DEFAULT_OUTPUT: u64 = 1 << 20;
/// Default result cap: 1 MiB.
pub const DEFAULT_RESULT: u64 = 1 << 20;
/// The smallest stack any engine's default may have: 256 KiB.
pub const MIN_DEFAULT_STACK: u64 = 256 << 10;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            stack: None,
            output: DEFAULT_OUTPUT,
            result: DEFAULT_RESULT,
            fuel: None,
        }
    }
}

/// A configuration that cannot be used: a value out of range, or a limit the chosen engine
/// cannot enforce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit's value is out of its allowed range.
    #[error("{limit} limit {value} is out of range ({allowed})")]
    OutOfRange {
        /// The limit.
        limit: Limit,
        /// The value given, printed.
        value: String,
        /// The allowed range, printed.
        allowed: &'static str,
    },
    /// The engine cannot enforce a limit that was asked for.
    #[error("engine `{engine}` cannot enforce the {limit} limit")]
    Unsupported {
        /// The engine's name.
        engine: &'static str,
        /// The limit.
        limit: Limit,
    },
    /// Any other invalid option.
    #[error("{0}")]
    Invalid(String),
}

impl Limits {
    /// Checks every value against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // The value is only formatted for an error: `validate` runs before every execution.
        fn range(
            limit: Limit,
            ok: bool,
            value: impl FnOnce() -> String,
            allowed: &'static str,
        ) -> Result<(), ConfigError> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    limit,
                    value: value(),
                    allowed,
                })
            }
        }
        range(
            Limit::Memory,
            (1 << 20..=16 << 30).contains(&self.memory),
            || format_size(self.memory),
            "1MiB..=16GiB",
        )?;
        range(
            Limit::Timeout,
            (Duration::from_millis(1)..=Duration::from_secs(3600)).contains(&self.timeout),
            || format_duration(self.timeout),
            "1ms..=1h",
        )?;
        if let Some(stack) = self.stack {
            range(
                Limit::Stack,
                (64 << 10..=64 << 20).contains(&stack),
                || format_size(stack),
                "64KiB..=64MiB",
            )?;
        }
        range(
            Limit::Output,
            self.output <= 1 << 30,
            || format_size(self.output),
            "0..=1GiB",
        )?;
        range(
            Limit::Result,
            (1..=1 << 30).contains(&self.result),
            || format_size(self.result),
            "1B..=1GiB",
        )?;
        if let Some(fuel) = self.fuel {
            range(Limit::Fuel, fuel > 0, || fuel.to_string(), "1..")?;
        }
        Ok(())
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Limits::default().validate().unwrap();
    }

    #[test]
    fn out_of_range() {
        let bad = [
            Limits {
                memory: 1000,
                ..Limits::default()
            },
            Limits {
                timeout: Duration::ZERO,
                ..Limits::default()
            },
            Limits {
                stack: Some(1024),
                ..Limits::default()
            },
            Limits {
                fuel: Some(0),
                ..Limits::default()
            },
            Limits {
                result: 0,
                ..Limits::default()
            },
        ];
        for l in bad {
            assert!(
                matches!(l.validate(), Err(ConfigError::OutOfRange { .. })),
                "{l:?}"
            );
        }
    }

    /// A rejected timeout is shown in the units limits are given in: "0ms", not "0ns" (until
    /// 2026-12-02; found by a sweep of the service, whose API takes milliseconds).
    #[test]
    fn a_rejected_timeout_is_shown_in_milliseconds() {
        let zero = Limits {
            timeout: Duration::ZERO,
            ..Limits::default()
        };
        let message = zero.validate().unwrap_err().to_string();
        assert!(message.contains("timeout limit 0ms "), "{message}");
    }

    #[test]
    fn json_uses_milliseconds_and_rejects_unknown_fields() {
        let l: Limits = serde_json::from_str(r#"{"timeout": 250}"#).unwrap();
        assert_eq!(l.timeout, Duration::from_millis(250));
        assert!(serde_json::from_str::<Limits>(r#"{"heap": 1}"#).is_err());
    }
}
