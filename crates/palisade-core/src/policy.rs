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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// `performance`: `now()`, milliseconds since the run started (0.1 ms resolution), or from
    /// the deterministic clock. Off by default.
    #[serde(rename = "performance")]
    Performance,
}

impl HostGlobal {
    /// Every host global, in order.
    pub const ALL: [HostGlobal; 4] = [
        HostGlobal::Console,
        HostGlobal::Input,
        HostGlobal::Crypto,
        HostGlobal::Performance,
    ];

    /// The global's name in the guest.
    pub fn name(self) -> &'static str {
        match self {
            HostGlobal::Console => "console",
            HostGlobal::Input => "input",
            HostGlobal::Crypto => "crypto",
            HostGlobal::Performance => "performance",
        }
    }
}

/// How the clock behaves in deterministic mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Host globals that exist in the guest. Default: `console`, `input`, `crypto`. The
    /// ECMAScript built-ins always exist (except the dangerous ones below); engine extras that are
    /// neither (QuickJS's `performance`, `atob`, ...) are removed.
    #[cfg_attr(feature = "schema", schemars(with = "Vec<HostGlobal>"))]
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
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub modules: Option<BTreeSet<String>>,
    /// Deterministic time and randomness. Default: off.
    pub deterministic: Option<Deterministic>,
    /// `fetch`: which URLs it may reach, and its per-run caps. `fetch` (with `Headers` and
    /// `Response`) exists only when [`FetchPolicy::allow`] names at least one origin. Default:
    /// no origins.
    pub fetch: FetchPolicy,
    /// Names the guest may read with `secrets.get(name)`; `secrets` exists only when this is
    /// not empty. The secret store still decides per tenant and function. Default: none.
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub secrets: BTreeSet<String>,
}

/// `fetch`'s allowlist and caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct FetchPolicy {
    /// URL patterns: scheme, exact host, port (explicit or the scheme's default), and an optional
    /// path prefix, e.g. `https://api.example.com/v1/`. No wildcards, no suffix matching.
    pub allow: Vec<UrlPattern>,
    /// Per-request timeout in milliseconds (connect to last body byte); the run's own deadline
    /// still applies. Default 10000.
    pub timeout_ms: u64,
    /// Response body cap per request, in bytes. Default 5 MiB.
    pub max_response_bytes: u64,
    /// Requests per run, redirects included. Default 16.
    pub max_requests: u32,
    /// Redirects followed per request. Default 5.
    pub max_redirects: u32,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow: Vec::new(),
            timeout_ms: 10_000,
            max_response_bytes: 5 << 20,
            max_requests: 16,
            max_redirects: 5,
        }
    }
}

/// One `fetch` allowlist entry, parsed and normalized as browsers parse URLs (WHATWG): IDNA
/// applied to the host, IPv4 literals in any form (`2130706433`, `0x7f000001`, `0177.0.0.1`)
/// normalized to dotted decimal.
///
/// ```
/// use palisade_core::policy::UrlPattern;
/// let p: UrlPattern = "https://API.example.com/v1/".parse().unwrap();
/// assert!(p.matches(&"https://api.example.com:443/v1/users".parse().unwrap()));
/// assert!(!p.matches(&"https://api.example.com/v2".parse().unwrap()));
/// assert!(!p.matches(&"https://api.example.com/v1/..%2Fadmin".parse().unwrap()));
/// assert!(!p.matches(&"https://api.example.com.evil/v1/".parse().unwrap()));
/// assert!("https://user@api.example.com/".parse::<UrlPattern>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UrlPattern {
    /// `http` or `https`.
    pub scheme: String,
    /// The normalized host: a domain, a dotted IPv4 address, or a bracketed IPv6 address.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// A path prefix; `/` matches every path.
    pub path: String,
}

impl UrlPattern {
    /// Whether `url` falls under this entry: same scheme, host and port, and a path that starts
    /// with the prefix (at a segment boundary when the prefix does not end in `/`).
    ///
    /// Under an entry that names a path, a path with an encoded `/`, `\`, `.` or `%` (`%2F`,
    /// `%5C`, `%2E`, `%25`, either case) or a dot segment with parameters (`..;x`) never matches
    /// (unless it is the entry's own path): `/v1/..%2Fadmin` starts with `/v1/`, but a server
    /// that decodes before it resolves dot segments serves `/admin`, and one that drops `;x`
    /// reads `..`.
    pub fn matches(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        if url.scheme() != self.scheme
            || host != self.host
            || url.port_or_known_default() != Some(self.port)
        {
            return false;
        }
        let path = url.path();
        if self.path == "/" || path == self.path {
            return true;
        }
        let lower = path.to_ascii_lowercase();
        if ["%2f", "%5c", "%2e", "%25"]
            .iter()
            .any(|e| lower.contains(e))
        {
            return false;
        }
        // `..;x` is `..` to servers that drop path parameters (Tomcat, Spring).
        if path
            .split('/')
            .any(|seg| matches!(seg.split(';').next(), Some(".." | ".")) && seg.contains(';'))
        {
            return false;
        }
        self.covers_path(path)
    }

    /// Whether `path` is this entry's path or lies under it, at a segment boundary when the
    /// entry's path does not end in `/` (`/v1` covers `/v1/x`, not `/v1x`), as written: what
    /// [`UrlPattern::matches`] also requires of its encodings is not checked here.
    pub fn covers_path(&self, path: &str) -> bool {
        self.path == "/"
            || path == self.path
            || path
                .strip_prefix(&self.path)
                .is_some_and(|rest| self.path.ends_with('/') || rest.starts_with('/'))
    }
}

impl std::str::FromStr for UrlPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|e| format!("invalid URL pattern `{s}`: {e}"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "invalid URL pattern `{s}`: the scheme must be http or https"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "invalid URL pattern `{s}`: user names and passwords are not allowed"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "invalid URL pattern `{s}`: a pattern has no query or fragment"
            ));
        }
        if s.contains('*') {
            return Err(format!(
                "invalid URL pattern `{s}`: wildcards are not supported; list each origin"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("invalid URL pattern `{s}`: no host"))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("invalid URL pattern `{s}`: no port"))?;
        Ok(UrlPattern {
            scheme: url.scheme().to_owned(),
            host,
            port,
            path: url.path().to_owned(),
        })
    }
}

impl TryFrom<String> for UrlPattern {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<UrlPattern> for String {
    fn from(p: UrlPattern) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme, self.host, self.port, self.path
        )
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            globals: Policy::DEFAULT_GLOBALS.into_iter().collect(),
            allow_eval: false,
            allow_wasm: false,
            allow_shared_memory: false,
            modules: None,
            deterministic: None,
            fetch: FetchPolicy::default(),
            secrets: BTreeSet::new(),
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

/// The `Atomics` methods a policy without `allow_shared_memory` replaces with throwers; the same
/// list on every engine.
pub const ATOMICS_METHODS: &[&str] = &[
    "add",
    "and",
    "compareExchange",
    "exchange",
    "isLockFree",
    "load",
    "notify",
    "or",
    "pause",
    "store",
    "sub",
    "wait",
    "waitAsync",
    "xor",
];

/// The `WebAssembly` members a policy without `allow_wasm` replaces with throwers; the same list
/// on every engine.
pub const WASM_MEMBERS: &[&str] = &[
    "compile",
    "compileStreaming",
    "instantiate",
    "instantiateStreaming",
    "validate",
    "Module",
    "Instance",
    "Memory",
    "Table",
    "Global",
    "Tag",
    "Exception",
];

/// Globals QuickJS-NG adds that are neither ECMAScript nor Palisade host globals; both QuickJS
/// engines (native and wasm) remove them so every engine offers the same global object.
pub const QUICKJS_EXTRAS: &[&str] = &[
    "performance",
    "atob",
    "btoa",
    "queueMicrotask",
    "DOMException",
    "InternalError",
];

/// The denial thrown by `eval` and the `Function` constructors: the same text on every engine.
pub fn code_generation_denied() -> String {
    denied_message(
        "generating code from strings: eval and the Function constructors",
        "allow it with policy.allow_eval",
    )
}

/// The denial thrown by `SharedArrayBuffer` and `Atomics`.
pub fn shared_memory_denied() -> String {
    denied_message(
        "shared memory: SharedArrayBuffer and Atomics",
        "allow it with policy.allow_shared_memory",
    )
}

/// The denial thrown by `WebAssembly`.
pub fn wasm_denied() -> String {
    denied_message(
        "WebAssembly",
        "allow it with policy.allow_wasm on an engine that has it",
    )
}

/// The message of the error thrown to the guest for a denied operation.
pub fn denied_message(what: &str, how_to_allow: &str) -> String {
    format!("{DENIED_PREFIX}{what} ({how_to_allow})")
}

/// The policy denials the host threw to the guest in one run, so that an uncaught error
/// carrying one is reported as `policy_denied` (and a guest's own error with the same text is
/// not). Bounded: a guest that catches its denials and asks again, with new names each time
/// (an import of a 30 MB specifier, forty times, caught), grew the host's memory by gigabytes,
/// outside any limit the guest has. Repeats are kept once, and past [`Denials::MAX_BYTES`] of
/// messages no more are kept: an uncaught denial among those is then an `exception`, the
/// guest's own doing.
///
/// ```
/// use palisade_core::policy::Denials;
/// let mut d = Denials::default();
/// d.record("Palisade policy denies eval");
/// d.record("Palisade policy denies eval");
/// assert!(d.contains("Palisade policy denies eval"));
/// assert_eq!(d.bytes(), 27);
/// d.record(&"x".repeat(Denials::MAX_BYTES));
/// assert_eq!(d.bytes(), 27);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Denials {
    seen: std::collections::HashSet<String>,
    bytes: usize,
}

impl Denials {
    /// The most message bytes one run keeps.
    pub const MAX_BYTES: usize = 1 << 20;

    /// Keeps `message`, unless it is kept already or would pass [`Denials::MAX_BYTES`].
    pub fn record(&mut self, message: &str) {
        if self.seen.contains(message) || self.bytes + message.len() > Self::MAX_BYTES {
            return;
        }
        self.bytes += message.len();
        self.seen.insert(message.to_owned());
    }

    /// Whether `message` was kept in this run.
    pub fn contains(&self, message: &str) -> bool {
        self.seen.contains(message)
    }

    /// The message bytes kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets every message (a new run).
    pub fn clear(&mut self) {
        self.seen.clear();
        self.bytes = 0;
    }
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
            fetch: FetchPolicy::default(),
            secrets: BTreeSet::new(),
        }
    }

    /// The host globals the default policy allows.
    pub const DEFAULT_GLOBALS: [HostGlobal; 3] =
        [HostGlobal::Console, HostGlobal::Input, HostGlobal::Crypto];

    /// Whether the guest's global object under this policy has the default policy's globals: the
    /// same host globals, no `fetch` and no secrets. The QuickJS engines prepare their runtimes
    /// with the default policy applied, so a run under such a policy has no global to delete or
    /// add. Cheap: it allocates nothing.
    pub fn has_default_globals(&self) -> bool {
        self.globals.len() == Policy::DEFAULT_GLOBALS.len()
            && Policy::DEFAULT_GLOBALS
                .iter()
                .all(|g| self.globals.contains(g))
            && self.fetch.allow.is_empty()
            && self.secrets.is_empty()
    }

    /// The globals of the host prelude ([`crate::HOST_JS`]) that exist in the guest under this
    /// policy; engines delete the others.
    pub fn host_globals(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.allows_global(HostGlobal::Crypto) {
            out.push("crypto");
        }
        if self.allows_global(HostGlobal::Performance) {
            out.push("performance");
        }
        if !self.fetch.allow.is_empty() {
            out.extend(["fetch", "Headers", "Response"]);
        }
        if !self.secrets.is_empty() {
            out.push("secrets");
        }
        out
    }

    /// The globals this policy removes from a prepared runtime: host globals it does not allow,
    /// then the host prelude's globals it does not keep ([`Policy::host_globals`]), each once.
    pub fn removed_globals(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = HostGlobal::ALL
            .into_iter()
            .filter(|g| !self.allows_global(*g))
            .map(HostGlobal::name)
            .collect();
        let keep = self.host_globals();
        for g in Policy::HOST_PRELUDE_GLOBALS {
            if !keep.contains(&g) && !out.contains(&g) {
                out.push(g);
            }
        }
        out
    }

    /// Every global the host prelude can define.
    pub const HOST_PRELUDE_GLOBALS: [&'static str; 6] = [
        "crypto",
        "performance",
        "fetch",
        "Headers",
        "Response",
        "secrets",
    ];

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
            let start = e.span().map_or(0, |s| {
                // A bad element of an array is reported with the array's span: point at the
                // element itself (the pattern the message quotes) when it is in that span.
                let quoted = e
                    .message()
                    .split_once("invalid URL pattern `")
                    .and_then(|(_, rest)| rest.split_once('`'))
                    .map(|(pattern, _)| pattern);
                let within = text.get(s.start..s.end.min(text.len())).unwrap_or("");
                quoted
                    .filter(|p| !p.is_empty())
                    .and_then(|p| within.find(p))
                    .map_or(s.start, |at| s.start + at)
            });
            let (line, column) = line_column(text, start);
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

#[cfg(feature = "schema")]
impl schemars::JsonSchema for UrlPattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "UrlPattern".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An allowed URL prefix: `https://host[:port][/path]` (http only for loopback).",
        })
    }
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
    fn only_policies_with_the_default_globals_say_so() {
        let default = Policy::default();
        assert!(default.has_default_globals());
        // Other settings than globals do not count.
        let p = Policy {
            allow_eval: true,
            deterministic: Some(Deterministic::default()),
            ..Policy::default()
        };
        assert!(p.has_default_globals());
        assert!(!Policy::permissive().has_default_globals());
        let mut p = Policy::default();
        p.globals.remove(&HostGlobal::Input);
        assert!(!p.has_default_globals());
        let mut p = Policy::default();
        p.globals.remove(&HostGlobal::Crypto);
        p.globals.insert(HostGlobal::Performance);
        assert!(!p.has_default_globals());
        let mut p = Policy::default();
        p.secrets.insert("TOKEN".into());
        assert!(!p.has_default_globals());
        let mut p = Policy::default();
        p.fetch.allow = vec!["https://api.example.com/".parse().unwrap()];
        assert!(!p.has_default_globals());
    }

    #[test]
    fn removed_globals_follow_the_policy() {
        let p = Policy::default();
        assert_eq!(
            p.removed_globals(),
            ["performance", "fetch", "Headers", "Response", "secrets"]
        );
        let mut p = Policy::default();
        p.globals.remove(&HostGlobal::Crypto);
        p.globals.remove(&HostGlobal::Input);
        assert_eq!(
            p.removed_globals(),
            [
                "input",
                "crypto",
                "performance",
                "fetch",
                "Headers",
                "Response",
                "secrets"
            ]
        );
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
    fn fetch_patterns_are_validated_with_their_line() {
        let p = Policy::from_toml(
            "secrets = [\"API_KEY\"]\n[fetch]\nallow = [\"http://2130706433:8080/api\"]\nmax_requests = 3\n",
        )
        .unwrap();
        assert_eq!(p.fetch.allow[0].host, "127.0.0.1");
        assert_eq!(p.fetch.allow[0].to_string(), "http://127.0.0.1:8080/api");
        assert_eq!(
            p.host_globals(),
            ["crypto", "fetch", "Headers", "Response", "secrets"]
        );
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(p.fetch.allow[0].matches(&u("http://0x7f000001:8080/api/x")));
        assert!(!p.fetch.allow[0].matches(&u("http://127.0.0.1:8080/apix")));
        assert!(!p.fetch.allow[0].matches(&u("http://127.0.0.1/api")));
        // Encoded separators and dots cannot be checked against a path prefix.
        for sneaky in [
            "/api/..%2Fadmin",
            "/api/..%2fadmin",
            "/api/..%5Cadmin",
            "/api/%2e%2e/x",
        ] {
            let url = u(&format!("http://127.0.0.1:8080{sneaky}"));
            assert!(!p.fetch.allow[0].matches(&url), "{sneaky}");
        }
        let root: UrlPattern = "http://127.0.0.1:8080/".parse().unwrap();
        assert!(root.matches(&u("http://127.0.0.1:8080/a%2Fb")));
        for bad in [
            "ftp://a.example",
            "https://*.example.com",
            "http://u:p@a.example/",
            "nope",
        ] {
            let text = format!("[fetch]\n\nallow = [\"{bad}\"]\n");
            let e = Policy::from_toml(&text).unwrap_err();
            assert_eq!(e.line, 3, "{bad}: {e}");
            // In a multi-line array, the element's own line.
            let text = format!("[fetch]\nallow = [\n  \"https://a.example/\",\n  \"{bad}\",\n]\n");
            let e = Policy::from_toml(&text).unwrap_err();
            assert_eq!(e.line, 4, "{bad}: {e}");
            assert!(e.message.contains("invalid URL pattern"), "{e}");
        }
        let e =
            Policy::from_json("{\"fetch\": {\"allow\": [\"https://a.example\"], \"retries\": 1}}")
                .unwrap_err();
        assert!(e.message.contains("retries"), "{e}");
    }

    #[test]
    fn module_allowlist_normalizes() {
        let p = Policy::from_toml("modules = [\"./a.js\", \"lodash\"]").unwrap();
        assert!(p.allows_module("a.js"));
        assert!(p.allows_module("lodash"));
        assert!(!p.allows_module("b.js"));
    }
}
