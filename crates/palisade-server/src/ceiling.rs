//! What tenants may ask for: the operator's ceilings on a request's or a function's limits
//! (`[max_limits]`) and on the URLs its policy lets `fetch` reach (`allow_internal_fetch`,
//! `fetch_allow_ceiling`).
//!
//! A request's `limits` and `policy` override the server's defaults field by field, and the
//! contract's own ranges ([`Limits::validate`]) are far wider than one server can afford: a
//! tenant could ask for a 1 GiB result (which the server then holds several times over, and
//! which SQLite cannot store), or let `fetch` reach the server's own `/metrics`, the cloud
//! metadata address or the operator's private network by naming them in `fetch.allow` (fetch
//! refuses internal addresses *unless* an entry names them, which is right for the operator's
//! own policy and wrong for a tenant's). These checks run on the request as the server will
//! run it, before any worker sees it.

use std::time::Duration;

use palisade::policy::UrlPattern;
use palisade::units::format_size;
use palisade::{Limit, Limits, Policy};
use serde::{Deserialize, Deserializer};

/// The contract's largest `memory` (see [`Limits::validate`]).
const CONTRACT_MAX_MEMORY: u64 = 16 << 30;
/// The contract's longest `timeout`.
const CONTRACT_MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The contract's largest explicit `stack`.
const CONTRACT_MAX_STACK: u64 = 64 << 20;
/// The default ceiling on `result` and on `output`: 256 MiB each. A stored outcome carries
/// both (as JSON), and SQLite refuses a value over 10^9 bytes ("string or blob too big"): at
/// the contract's 1 GiB a result could run and then not be recorded, after the server had
/// held it several times over.
pub const DEFAULT_MAX_RESULT: u64 = 256 << 20;
/// See [`DEFAULT_MAX_RESULT`].
pub const DEFAULT_MAX_OUTPUT: u64 = 256 << 20;
/// The default `max_fetch_bytes`: 256 MiB of response bodies per run.
pub const DEFAULT_MAX_FETCH_BYTES: u64 = 256 << 20;

/// The largest limits a request or a deployed function may ask for (`[max_limits]`).
///
/// Defaults: the contract's maxima (memory 16 GiB, timeout 1 h, stack 64 MiB, fuel without a
/// ceiling), except `result` and `output`, 256 MiB each. A ceiling bounds the values a request
/// sets; an unset `stack` is the engine's default (at most 4 MiB), and an unset `fuel` is no
/// budget, which the timeout still bounds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaxLimits {
    /// Guest heap, in bytes.
    pub memory: u64,
    /// Wall clock, in milliseconds in TOML.
    #[serde(deserialize_with = "millis")]
    pub timeout: Duration,
    /// Guest stack, in bytes.
    pub stack: u64,
    /// Captured stdout + stderr, in bytes.
    pub output: u64,
    /// Serialized result, in bytes.
    pub result: u64,
    /// Instruction budget; `None`: no ceiling.
    pub fuel: Option<u64>,
}

impl Default for MaxLimits {
    fn default() -> Self {
        MaxLimits {
            memory: CONTRACT_MAX_MEMORY,
            timeout: CONTRACT_MAX_TIMEOUT,
            stack: CONTRACT_MAX_STACK,
            output: DEFAULT_MAX_OUTPUT,
            result: DEFAULT_MAX_RESULT,
            fuel: None,
        }
    }
}

fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_millis(u64::deserialize(d)?))
}

/// A request, a function or a configuration that asks for more than a ceiling allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CeilingError {
    /// A limit above its ceiling.
    #[error(
        "limits.{limit} = {value} is above this server's ceiling, max_limits.{limit} = {ceiling}"
    )]
    Limit {
        /// The limit.
        limit: Limit,
        /// The value asked for, as written in JSON, with its size spelled out.
        value: String,
        /// The ceiling, likewise.
        ceiling: String,
    },
    /// A ceiling outside the contract's own range.
    #[error("max_limits: {0}")]
    OutOfRange(palisade::ConfigError),
    /// A `fetch.allow` entry naming an internal address or a `localhost` name.
    #[error(
        "policy.fetch.allow entry `{entry}` names {what}; this server does not let a request \
         or a function allow fetch to internal addresses (allow_internal_fetch = false)"
    )]
    InternalFetch {
        /// The entry.
        entry: String,
        /// What it names: the address range, or a `localhost` name.
        what: String,
    },
    /// `fetch.max_requests` × `fetch.max_response_bytes` above `max_fetch_bytes`.
    #[error(
        "policy.fetch.max_requests ({requests}) × policy.fetch.max_response_bytes ({bytes}) \
         lets one run hold {total} of response bodies, above this server's max_fetch_bytes \
         ({ceiling})"
    )]
    FetchBytes {
        /// `max_requests`.
        requests: u32,
        /// `max_response_bytes`, spelled out.
        bytes: String,
        /// Their product, spelled out.
        total: String,
        /// The ceiling, spelled out.
        ceiling: String,
    },
    /// A `fetch.allow` entry outside every `fetch_allow_ceiling` entry.
    #[error(
        "policy.fetch.allow entry `{entry}` is outside this server's fetch_allow_ceiling \
         ({ceiling}): an entry must have a ceiling entry's scheme, host and port, and a path \
         under its path"
    )]
    OutsideFetchCeiling {
        /// The entry.
        entry: String,
        /// The ceiling's entries, listed.
        ceiling: String,
    },
}

/// A size as JSON writes it, and readably.
fn bytes(n: u64) -> String {
    format!("{n} ({})", format_size(n))
}

/// A duration as JSON writes it (milliseconds).
fn ms(d: Duration) -> String {
    format!("{} (ms)", d.as_millis())
}

impl MaxLimits {
    /// The ceilings as a [`Limits`], to check them against the contract's ranges.
    fn as_limits(&self) -> Limits {
        Limits {
            memory: self.memory,
            timeout: self.timeout,
            stack: Some(self.stack),
            output: self.output,
            result: self.result,
            fuel: self.fuel,
        }
    }

    /// Checks the ceilings themselves: each within the contract's range, so none promises
    /// what no request could be given.
    pub fn validate(&self) -> Result<(), CeilingError> {
        self.as_limits()
            .validate()
            .map_err(CeilingError::OutOfRange)
    }

    /// Checks `limits` (a request's, after the server's defaults were applied) against the
    /// ceilings; the error names the first limit above its ceiling.
    pub fn check(&self, limits: &Limits) -> Result<(), CeilingError> {
        let over = |limit, value: String, ceiling: String| {
            Err(CeilingError::Limit {
                limit,
                value,
                ceiling,
            })
        };
        if limits.memory > self.memory {
            return over(Limit::Memory, bytes(limits.memory), bytes(self.memory));
        }
        if limits.timeout > self.timeout {
            return over(Limit::Timeout, ms(limits.timeout), ms(self.timeout));
        }
        if let Some(stack) = limits.stack.filter(|s| *s > self.stack) {
            return over(Limit::Stack, bytes(stack), bytes(self.stack));
        }
        if limits.output > self.output {
            return over(Limit::Output, bytes(limits.output), bytes(self.output));
        }
        if limits.result > self.result {
            return over(Limit::Result, bytes(limits.result), bytes(self.result));
        }
        if let (Some(fuel), Some(max)) = (limits.fuel, self.fuel) {
            if fuel > max {
                return over(Limit::Fuel, fuel.to_string(), max.to_string());
            }
        }
        Ok(())
    }
}

/// Which `fetch.allow` entries a request or a function may name, and how much its fetch may
/// hold. The default: no internal addresses, no ceiling list, [`DEFAULT_MAX_FETCH_BYTES`].
#[derive(Debug, Clone)]
pub struct FetchRules {
    /// Whether entries may name internal addresses and `localhost` names
    /// (`allow_internal_fetch`).
    pub allow_internal: bool,
    /// When set, every entry must fall inside one of these (`fetch_allow_ceiling`).
    pub ceiling: Option<Vec<UrlPattern>>,
    /// The server's own `[policy]` entries: the operator's. An entry inside one of them (the
    /// same, or narrower) reaches nothing the operator has not allowed every tenant, and
    /// passes as it is.
    pub operator: Vec<UrlPattern>,
    /// The most response-body bytes a run may hold (`max_fetch_bytes`).
    pub max_bytes: u64,
}

/// What a `localhost` name is: `localhost` itself or a name under it (RFC 6761 has both
/// resolve to loopback), with or without the root's trailing dot.
fn localhost_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host
            .len()
            .checked_sub(".localhost".len())
            .and_then(|at| host.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"))
}

/// What an entry's host names that only the operator may allow, if anything.
pub fn internal_host(host: &str) -> Option<String> {
    if let Some(range) = palisade::internal_address_range(host) {
        return Some(format!("a {range} address"));
    }
    localhost_name(host).then(|| "a localhost name".to_owned())
}

/// Whether `entry` lies inside `ceiling`: the same scheme, host and port (both are normalized
/// when parsed), and a path under the ceiling's path ([`UrlPattern::covers_path`], as
/// `UrlPattern::matches` reads a prefix). Every URL the entry lets through then
/// has a path the ceiling lets through too: dot segments, encoded or not, were resolved when
/// the entry was parsed.
fn within(ceiling: &UrlPattern, entry: &UrlPattern) -> bool {
    ceiling.scheme == entry.scheme
        && ceiling.host == entry.host
        && ceiling.port == entry.port
        && ceiling.covers_path(&entry.path)
}

impl Default for FetchRules {
    fn default() -> Self {
        FetchRules {
            allow_internal: false,
            ceiling: None,
            operator: Vec::new(),
            max_bytes: DEFAULT_MAX_FETCH_BYTES,
        }
    }
}

impl FetchRules {
    /// Checks that `policy`'s fetch caps hold at most `max_bytes` of bodies in one run.
    pub fn check_bytes(&self, policy: &Policy) -> Result<(), CeilingError> {
        let f = &policy.fetch;
        let total = u64::from(f.max_requests).saturating_mul(f.max_response_bytes);
        if total > self.max_bytes {
            return Err(CeilingError::FetchBytes {
                requests: f.max_requests,
                bytes: bytes(f.max_response_bytes),
                total: bytes(total),
                ceiling: bytes(self.max_bytes),
            });
        }
        Ok(())
    }

    /// Checks every `fetch.allow` entry of `policy` (a request's or a function's, after the
    /// server's defaults were applied) that does not lie inside an entry of the server's own
    /// `[policy]`.
    pub fn check(&self, policy: &Policy) -> Result<(), CeilingError> {
        self.check_bytes(policy)?;
        for entry in &policy.fetch.allow {
            if self.operator.iter().any(|o| within(o, entry)) {
                continue;
            }
            if !self.allow_internal {
                if let Some(what) = internal_host(&entry.host) {
                    return Err(CeilingError::InternalFetch {
                        entry: entry.to_string(),
                        what,
                    });
                }
            }
            if let Some(ceiling) = &self.ceiling {
                if !ceiling.iter().any(|c| within(c, entry)) {
                    let listed: Vec<String> = ceiling.iter().map(|c| format!("`{c}`")).collect();
                    return Err(CeilingError::OutsideFetchCeiling {
                        entry: entry.to_string(),
                        ceiling: if listed.is_empty() {
                            "empty: no entry at all".to_owned()
                        } else {
                            listed.join(", ")
                        },
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> UrlPattern {
        s.parse().unwrap()
    }

    fn policy(entries: &[&str]) -> Policy {
        let mut p = Policy::default();
        p.fetch.allow = entries.iter().map(|e| pattern(e)).collect();
        p
    }

    #[test]
    fn limits_above_a_ceiling_are_named() {
        let max = MaxLimits::default();
        max.validate().unwrap();
        max.check(&Limits::default()).unwrap();
        let big = Limits {
            result: 1 << 30,
            ..Limits::default()
        };
        let e = max.check(&big).unwrap_err().to_string();
        assert!(e.contains("limits.result = 1073741824"), "{e}");
        assert!(e.contains("max_limits.result = 268435456"), "{e}");
        let fuel = MaxLimits {
            fuel: Some(10),
            ..MaxLimits::default()
        };
        let e = fuel
            .check(&Limits {
                fuel: Some(11),
                ..Limits::default()
            })
            .unwrap_err();
        assert!(matches!(
            e,
            CeilingError::Limit {
                limit: Limit::Fuel,
                ..
            }
        ));
        assert!(MaxLimits {
            memory: 32 << 30,
            ..MaxLimits::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn internal_hosts_and_the_ceiling() {
        let rules = FetchRules::default();
        for bad in [
            "http://127.0.0.1:8080/",
            "http://169.254.169.254/",
            "http://[::1]/",
            "http://10.1.2.3/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://LOCALHOST./",
        ] {
            assert!(rules.check(&policy(&[bad])).is_err(), "{bad}");
        }
        rules.check(&policy(&["https://api.example.com/"])).unwrap();
        let operator = FetchRules {
            operator: vec![pattern("http://127.0.0.1:9/")],
            ..FetchRules::default()
        };
        operator.check(&policy(&["http://127.0.0.1:9/"])).unwrap();
        operator
            .check(&policy(&["http://127.0.0.1:9/narrower/"]))
            .unwrap();
        assert!(operator.check(&policy(&["http://127.0.0.1:10/"])).is_err());
        let ceiling = FetchRules {
            ceiling: Some(vec![pattern("https://api.example.com/v1/")]),
            ..FetchRules::default()
        };
        ceiling
            .check(&policy(&["https://api.example.com:443/v1/users"]))
            .unwrap();
        for bad in [
            "https://api.example.com/v2/",
            "https://api.example.com/",
            "http://api.example.com/v1/",
            "https://api.example.com:8443/v1/",
            "https://other.example.com/v1/",
        ] {
            assert!(ceiling.check(&policy(&[bad])).is_err(), "{bad}");
        }
        let segment = FetchRules {
            ceiling: Some(vec![pattern("https://api.example.com/v1")]),
            ..FetchRules::default()
        };
        segment
            .check(&policy(&["https://api.example.com/v1/x"]))
            .unwrap();
        assert!(segment
            .check(&policy(&["https://api.example.com/v1x"]))
            .is_err());
    }

    #[test]
    fn fetch_bodies_a_run_may_hold_are_capped() {
        let rules = FetchRules::default();
        rules.check(&Policy::default()).unwrap();
        let mut p = Policy::default();
        p.fetch.max_requests = 1000;
        p.fetch.max_response_bytes = 1 << 30;
        let e = rules.check(&p).unwrap_err().to_string();
        assert!(e.contains("max_fetch_bytes"), "{e}");
        p.fetch.max_requests = u32::MAX;
        p.fetch.max_response_bytes = u64::MAX;
        assert!(rules.check(&p).is_err(), "the product saturates");
    }
}
