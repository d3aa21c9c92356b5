//! The service's configuration: a TOML file, overridden by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use palisade::policy::UrlPattern;
use palisade::{Limits, Policy};
use serde::Deserialize;

use crate::ceiling::{internal_host, FetchRules, MaxLimits};

/// One bearer API key and the tenant it acts for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The secret sent as `Authorization: Bearer <key>`.
    pub key: String,
    /// The tenant whose functions, executions and secrets the key reaches.
    pub tenant: String,
}

/// Everything `palisade serve` can be told.
///
/// ```
/// let config = palisade_server::Config::parse(r#"
///     listen = "127.0.0.1:9000"
///     workers = 2
///     fetch_allow_ceiling = ["https://api.example.com/"]
///     [limits]
///     timeout = 1000
///     [max_limits]
///     timeout = 10000
///     [[keys]]
///     key = "k-alice-0123456789"
///     tenant = "alice"
/// "#).unwrap();
/// assert_eq!(config.workers, 2);
/// assert_eq!(config.limits.timeout.as_millis(), 1000);
/// assert_eq!(config.max_limits.timeout.as_millis(), 10_000);
/// assert_eq!(config.max_limits.result, 256 << 20);
/// assert_eq!(config.keys[0].tenant, "alice");
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Where functions, execution records and the audit log are kept, migrated at start:
    /// a SQLite database file (created if missing; `:memory:` keeps nothing), or a
    /// PostgreSQL server named by a `postgres://` or `postgresql://` URL, such as
    /// `postgres://palisade:secret@127.0.0.1:5432/palisade` (libpq's URL parameters apply:
    /// `?options=-csearch_path%3Dpalisade` puts the tables in an existing schema `palisade`;
    /// no TLS). A password the URL leaves out is read from `PGPASSWORD`, as libpq does: that
    /// keeps it out of this file and out of the workers' command lines, which get `database`
    /// to write the secret-access audit log. Default `palisade.db`.
    pub database: PathBuf,
    /// Worker processes. Default: the number of CPUs.
    pub workers: usize,
    /// Unused contexts each worker keeps ready per engine, built in the background. Default 1.
    pub prewarm: usize,
    /// Executions that may wait for a worker; past it, requests get 429. Default 1024.
    pub queue: usize,
    /// The longest an execution may wait for a worker, in milliseconds; past it, it is
    /// answered 429 (with `Retry-After`) instead of run. Default 5000.
    pub queue_timeout_ms: u64,
    /// Worker processes of the slow lane, which runs the functions that recently hit a limit or
    /// ran past `slow_threshold` (see `palisade_server::lanes`). Default 1.
    pub slow_workers: usize,
    /// Executions that may wait in the slow lane; past it, those functions get 429. Default 64.
    pub slow_queue: usize,
    /// A run whose execution takes longer than this many milliseconds sends its function to
    /// the slow lane. Default 100.
    pub slow_threshold_ms: u64,
    /// The CPU priority (`nice` value, 0 to 19) of the slow lane's workers, so hostile code
    /// yields the CPU to the fast lane. Default 5.
    pub slow_nice: i32,
    /// The largest request body, in bytes (413 past it). Default 1 MiB.
    pub max_body: usize,
    /// The most client connections open at once; past it new connections wait in the kernel's
    /// backlog until one closes. Default 4096.
    pub max_connections: u32,
    /// The longest a client may take to send a request's head (request line and headers), and
    /// the longest a kept-alive connection may sit idle between requests, in milliseconds;
    /// past it the connection is closed. Default 30000.
    pub header_timeout_ms: u64,
    /// The longest a request's body may take to arrive, from when the server starts reading
    /// it, in milliseconds; past it the request is answered 408 and the connection closed.
    /// Default 60000.
    pub body_timeout_ms: u64,
    /// The longest a client may take no byte of a response (its socket stays full), in
    /// milliseconds; past it the connection is closed. Default 60000.
    pub send_timeout_ms: u64,
    /// A worker is replaced after this many executions. Default 10,000.
    pub worker_max_executions: u64,
    /// A worker is replaced once its resident memory passes this many bytes. Default 1 GiB.
    pub worker_max_memory: u64,
    /// The command that starts a worker (`[program, args...]`). Default: this executable with
    /// the `worker` argument.
    pub worker_command: Option<Vec<String>>,
    /// Default limits; a request's `limits` object overrides them field by field. Each must be
    /// within its `max_limits` ceiling.
    pub limits: Limits,
    /// The largest limits a request or a deployed function may ask for (400 past one; see
    /// [`MaxLimits`] for the defaults: the contract's maxima, but 256 MiB for `result` and
    /// `output`, so a recorded outcome fits in a SQLite value).
    pub max_limits: MaxLimits,
    /// Default policy; a request's `policy` object overrides it field by field. It is the
    /// operator's: its `fetch.allow` entries are not held to `allow_internal_fetch` or
    /// `fetch_allow_ceiling`, and a request may name them again, or narrower ones (the same
    /// scheme, host and port, a path under theirs).
    pub policy: Policy,
    /// Whether a request's or a function's `policy.fetch.allow` may name an IP address in a
    /// range fetch treats as internal (loopback, private, link-local, CGNAT, cloud metadata,
    /// unspecified, ...: those [`palisade::denied_range`] refuses) or a `localhost` name.
    /// Such an entry is what lets fetch reach the address, so by default only the operator's
    /// `[policy]` may have one: a tenant could otherwise read this server's `/metrics`, the
    /// cloud metadata service or anything on the private network. Default `false`.
    pub allow_internal_fetch: bool,
    /// When set, every `policy.fetch.allow` entry of a request or a function must fall inside
    /// one of these: the same scheme, host and port, and a path under its path. Unset (the
    /// default): any entry `allow_internal_fetch` permits; empty: none.
    pub fetch_allow_ceiling: Option<Vec<UrlPattern>>,
    /// The most response-body bytes one run's `fetch` may hold: `policy.fetch.max_requests` ×
    /// `max_response_bytes` of a request or a function (the server's own `[policy]` included)
    /// may not exceed it. Unread bodies are held by the worker outside the guest's memory
    /// limit, so without it one tenant's policy could ask a worker for gigabytes. Default
    /// 256 MiB (the library's default policy asks 16 × 5 MiB).
    pub max_fetch_bytes: u64,
    /// The encrypted secret store (see `palisade secrets`), keyed by `PALISADE_MASTER_KEY`.
    pub secrets: Option<PathBuf>,
    /// API keys. With none, authentication is off and every request acts for tenant `default`.
    pub keys: Vec<ApiKey>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: PathBuf::from("palisade.db"),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            prewarm: 1,
            queue: 1024,
            queue_timeout_ms: 5000,
            slow_workers: 1,
            slow_queue: 64,
            slow_threshold_ms: 100,
            slow_nice: 5,
            max_body: 1 << 20,
            max_connections: 4096,
            header_timeout_ms: 30_000,
            body_timeout_ms: 60_000,
            send_timeout_ms: 60_000,
            worker_max_executions: 10_000,
            worker_max_memory: 1 << 30,
            worker_command: None,
            limits: Limits::default(),
            max_limits: MaxLimits::default(),
            policy: Policy::default(),
            allow_internal_fetch: false,
            fetch_allow_ceiling: None,
            max_fetch_bytes: crate::ceiling::DEFAULT_MAX_FETCH_BYTES,
            secrets: None,
            keys: Vec::new(),
        }
    }
}

/// The largest `max_connections`: far past any file-descriptor limit, and within what the
/// front door's semaphore counts.
const MAX_CONNECTIONS: u32 = 1 << 24;

/// The longest client timeout, in milliseconds: a day.
const MAX_CLIENT_TIMEOUT_MS: u64 = 86_400_000;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or names an unknown field.
    #[error("invalid configuration: {0}")]
    Parse(String),
}

impl Config {
    /// The rules a request's or a function's `fetch.allow` entries are held to.
    pub fn fetch_rules(&self) -> FetchRules {
        FetchRules {
            allow_internal: self.allow_internal_fetch,
            ceiling: self.fetch_allow_ceiling.clone(),
            operator: self.policy.fetch.allow.clone(),
            max_bytes: self.max_fetch_bytes,
        }
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigFileError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigFileError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigFileError> {
        let bad = |m: &str| Err(ConfigFileError::Parse(m.to_owned()));
        if self.workers == 0 {
            return bad("workers must be at least 1");
        }
        if self.queue == 0 || self.slow_queue == 0 {
            return bad("queue and slow_queue must be at least 1");
        }
        if self.slow_workers == 0 {
            return bad("slow_workers must be at least 1");
        }
        if !(0..=19).contains(&self.slow_nice) {
            return bad("slow_nice must be between 0 and 19");
        }
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS {
            return bad(&format!(
                "max_connections must be between 1 and {MAX_CONNECTIONS}"
            ));
        }
        for (name, ms) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("send_timeout_ms", self.send_timeout_ms),
        ] {
            if !(1..=MAX_CLIENT_TIMEOUT_MS).contains(&ms) {
                return bad(&format!(
                    "{name} must be between 1 and {MAX_CLIENT_TIMEOUT_MS} (one day)"
                ));
            }
        }
        if self.worker_max_executions == 0 {
            return bad("worker_max_executions must be at least 1");
        }
        if let Err(e) = self.limits.validate() {
            return Err(ConfigFileError::Parse(format!("limits: {e}")));
        }
        if let Err(e) = self.max_limits.validate() {
            return Err(ConfigFileError::Parse(e.to_string()));
        }
        if let Err(e) = self.max_limits.check(&self.limits) {
            return Err(ConfigFileError::Parse(format!(
                "the default [limits] (the library's defaults where not set) must be within \
                 [max_limits]: {e}"
            )));
        }
        if let Err(e) = self.fetch_rules().check_bytes(&self.policy) {
            return Err(ConfigFileError::Parse(format!(
                "the default [policy] must be within max_fetch_bytes: {e}"
            )));
        }
        if !self.allow_internal_fetch {
            // Such an entry could never be used: say so now rather than at every request.
            for c in self.fetch_allow_ceiling.iter().flatten() {
                if let Some(what) = internal_host(&c.host) {
                    return Err(ConfigFileError::Parse(format!(
                        "fetch_allow_ceiling entry `{c}` names {what}, which needs \
                         allow_internal_fetch = true"
                    )));
                }
            }
        }
        for k in &self.keys {
            if k.key.len() < 16 {
                return bad("every API key must be at least 16 characters");
            }
            if k.tenant.is_empty() {
                return bad("every API key needs a tenant");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_rejections() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(Config::parse("listne = \"x\"").is_err());
        assert!(Config::parse("workers = 0").is_err());
        assert_eq!(c.max_connections, 4096);
        assert_eq!(c.header_timeout_ms, 30_000);
        assert!(Config::parse("max_connections = 0").is_err());
        assert!(Config::parse("header_timeout_ms = 0").is_err());
        assert!(Config::parse("body_timeout_ms = 86400001").is_err());
        assert!(Config::parse("send_timeout_ms = 0").is_err());
        assert_eq!(
            Config::parse("send_timeout_ms = 5")
                .unwrap()
                .send_timeout_ms,
            5
        );
        assert!(Config::parse("[[keys]]\nkey = \"short\"\ntenant = \"a\"").is_err());
        let c = Config::parse("[policy]\nallow_eval = true").unwrap();
        assert!(c.policy.allow_eval);
    }

    #[test]
    fn ceilings_are_checked_at_load() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.max_limits.result, 256 << 20);
        assert_eq!(c.max_limits.memory, 16 << 30);
        assert!(!c.allow_internal_fetch);
        let c = Config::parse("[limits]\ntimeout = 1000\n[max_limits]\ntimeout = 2000\nfuel = 100")
            .unwrap();
        assert_eq!(c.max_limits.timeout.as_millis(), 2000);
        assert_eq!(c.max_limits.fuel, Some(100));
        // Above the contract's maximum, or a default (the library's, unless set) above its
        // ceiling.
        assert!(Config::parse("[max_limits]\ntimeout = 2000").is_err());
        assert!(Config::parse("[max_limits]\nresult = 2147483648").is_err());
        assert!(Config::parse("[max_limits]\nheap = 1").is_err());
        let e = Config::parse("[limits]\ntimeout = 3000\n[max_limits]\ntimeout = 2000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_limits.timeout"), "{e}");
        // A ceiling entry that names an internal address needs the switch.
        let internal = "fetch_allow_ceiling = [\"http://10.0.0.5:8080/\"]";
        assert!(Config::parse(internal).is_err());
        Config::parse(&format!("allow_internal_fetch = true\n{internal}")).unwrap();
        assert!(Config::parse("fetch_allow_ceiling = [\"ftp://x/\"]").is_err());
    }
}
