//! What the guest may touch: which host globals exist, which dangerous built-ins work, which
//! modules can be imported, and whether time and randomness are deterministic.
//!
//! ```
//! use palisade_core::policy::{HostGlobal, Policy};
//!
//! let policy = Policy::from_toml(r#"
//!     globals = ["console", "input"]
//!     modules = ["./util.js"]
//!     [deterministic]
//!     seed = 42
//! "#).unwrap();
//! assert!(!policy.globals.contains(&HostGlobal::Crypto));
//! assert!(!policy.allow_eval);
//! assert!(Policy::from_toml("allow_evil = true").unwrap_err().to_string().contains("line 1"));
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Host-provided globals, beyond the ECMAScript built-ins, that a policy can allow. Their JSON
/// and TOML names are the globals' own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HostGlobal {
    /// `console` (captured output).
    #[serde(rename = "console")]
    Console,
    /// `input` (the request's input value).
    #[serde(rename = "input")]
    Input,
    /// `crypto`: `getRandomValues`, `randomUUID`, `subtle.digest`.
    #[serde(rename = "crypto")]
    Crypto,
}

impl HostGlobal {
    /// Every host global, in order.
    pub const ALL: [HostGlobal; 3] = [HostGlobal::Console, HostGlobal::Input, HostGlobal::Crypto];

    /// The global's name in the guest.
    pub fn name(self) -> &'static str {
        match self {
            HostGlobal::Console => "console",
            HostGlobal::Input => "input",
            HostGlobal::Crypto => "crypto",
        }
    }
}

/// How the clock behaves in deterministic mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Every read gives the start time.
    #[default]
    Fixed,
    /// Starts at the start time and advances by 1 ms at every read.
    Virtual,
}

/// Deterministic mode: the same script, input and seed give byte-identical outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Deterministic {
    /// Seeds `Math.random` and `crypto.getRandomValues`/`randomUUID`. Default 0.
    pub seed: u64,
    /// The start time, in milliseconds since the Unix epoch. Default 2024-01-01T00:00:00Z.
    pub time_ms: i64,
    /// Fixed (the default) or virtual.
    pub clock: Clock,
}

impl Default for Deterministic {
    fn default() -> Self {
        Deterministic {
            seed: 0,
            time_ms: 1_704_067_200_000,
            clock: Clock::Fixed,
        }
    }
}

/// What the guest may touch. See the module docs; [`Policy::default`] documents each default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Host globals that exist in the guest. Default: `console`, `input`, `crypto`. The
    /// ECMAScript built-ins always exist (except the dangerous ones below); engine extras that are
    /// neither (QuickJS's `performance`, `atob`, ...) are removed.
    pub globals: BTreeSet<HostGlobal>,
    /// `eval` and the `Function`, `AsyncFunction`, `GeneratorFunction` and
    /// `AsyncGeneratorFunction` constructors. Default: off.
    pub allow_eval: bool,
    /// `WebAssembly`. Default: off.
    pub allow_wasm: bool,
    /// `SharedArrayBuffer` and `Atomics`. Default: off.
    pub allow_shared_memory: bool,
    /// Module specifiers the guest may import (statically or with `import()`), each resolved only
    /// to a source supplied with the request. `None` (the default) allows every supplied module.
    pub modules: Option<BTreeSet<String>>,
    /// Deterministic time and randomness. Default: off.
    pub deterministic: Option<Deterministic>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            globals: [HostGlobal::Console, HostGlobal::Input, HostGlobal::Crypto]
                .into_iter()
                .collect(),
            allow_eval: false,
            allow_wasm: false,
            allow_shared_memory: false,
            modules: None,
            deterministic: None,
        }
    }
}

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy at line {line}, column {column}: {message}")]
pub struct PolicyError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The message every policy denial starts with; engines throw it to the guest, and an uncaught
/// denial is reported as `policy_denied`.
pub const DENIED_PREFIX: &str = "Palisade policy denies ";

/// The message of the error thrown to the guest for a denied operation.
pub fn denied_message(what: &str, how_to_allow: &str) -> String {
    format!("{DENIED_PREFIX}{what} ({how_to_allow})")
}

impl Policy {
    /// A policy that allows everything an engine can offer: every host global, the dangerous
    /// built-ins, and every supplied module. For trusted code and conformance suites.
    pub fn permissive() -> Self {
        Policy {
            globals: HostGlobal::ALL.into_iter().collect(),
            allow_eval: true,
            allow_wasm: false,
            allow_shared_memory: true,
            modules: None,
            deterministic: None,
        }
    }

    /// Whether `global` exists in the guest.
    pub fn allows_global(&self, global: HostGlobal) -> bool {
        self.globals.contains(&global)
    }

    /// Whether a module specifier (normalized as [`crate::modules::normalize_key`]) may be
    /// imported.
    pub fn allows_module(&self, normalized: &str) -> bool {
        self.modules.as_ref().is_none_or(|m| {
            m.iter()
                .any(|s| crate::modules::normalize_key(s) == normalized)
        })
    }

    /// Parses a TOML policy file; unknown keys and bad values are errors with their position.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
            PolicyError {
                line,
                column,
                message: e.message().to_owned(),
            }
        })
    }

    /// Parses a JSON policy; unknown keys and bad values are errors with their position.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        serde_json::from_str(text).map_err(|e| PolicyError {
            line: e.line().max(1),
            column: e.column().max(1),
            message: e.to_string(),
        })
    }

    /// Parses a policy file, JSON if it starts with `{`, TOML otherwise.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.trim_start().starts_with('{') {
            Policy::from_json(text)
        } else {
            Policy::from_toml(text)
        }
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_documented_defaults() {
        let p = Policy::default();
        assert_eq!(p.globals.len(), 3);
        assert!(!p.allow_eval && !p.allow_wasm && !p.allow_shared_memory);
        assert!(p.allows_module("anything.js"));
        assert_eq!(Policy::from_toml("").unwrap(), p);
        assert_eq!(Policy::from_json("{}").unwrap(), p);
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let e = Policy::from_toml("allow_eval = true\n\nglobalz = []\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("globalz"), "{e}");
        let e = Policy::from_json("{\n  \"allow_eval\": true,\n  \"nope\": 1\n}").unwrap_err();
        assert_eq!(e.line, 3);
        let e = Policy::from_toml("globals = [\"console\", \"window\"]").unwrap_err();
        assert!(e.message.contains("window"), "{e}");
        let e = Policy::from_toml("[deterministic]\nseed = -1\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn module_allowlist_normalizes() {
        let p = Policy::from_toml("modules = [\"./a.js\", \"lodash\"]").unwrap();
        assert!(p.allows_module("a.js"));
        assert!(p.allows_module("lodash"));
        assert!(!p.allows_module("b.js"));
    }
}
