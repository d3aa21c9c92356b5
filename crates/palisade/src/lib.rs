//! Palisade runs untrusted JavaScript in a fresh, isolated context and returns the result value,
//! the console output and a resource receipt, or a typed error. It never crashes the host, and
//! nothing leaks from one run into the next.
//!
//! ```
//! use palisade::{Limits, Request, Sandbox};
//! use std::time::Duration;
//!
//! let sandbox = Sandbox::new();
//! let outcome = sandbox.run(&Request::script("console.log('adding'); input.a + input.b")
//!     .with_input(serde_json::json!({"a": 2, "b": 3})));
//! assert_eq!(outcome.result, Ok(serde_json::json!(5)));
//! assert_eq!(outcome.stdout, "adding\n");
//!
//! // Hostile code ends with a typed error, within its limits.
//! let limits = Limits { timeout: Duration::from_millis(50), ..Limits::default() };
//! let outcome = sandbox.run(&Request::script("for (;;) {}").with_limits(limits));
//! assert_eq!(outcome.error_kind(), Some(palisade::ErrorKind::Timeout));
//! ```
//!
//! The facade names no engine internals: engines are chosen by [`EngineKind`], and every engine
//! takes the same [`Request`] and returns the same [`Outcome`].
#![forbid(unsafe_code)]

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub use palisade_host::{
    fetch::{denied_range, internal_address_range},
    AccessContext, AccessResult, AuditLog, AuditRecord, AuditSink, FileSecretStore,
    HostConfigError, HostServices, MasterKey, MemoryAudit, MemorySecretStore, SecretEntry,
    SecretError, SecretStore, MASTER_KEY_ENV, MIN_REDACTED_LEN, REDACTED,
};

pub use palisade_core::outcome::MAX_ERROR_TEXT;
pub use palisade_core::{
    json_depth, output, policy, units, Capabilities, ConfigError, Engine, EngineInfo, ErrorKind,
    ErrorRecord, ExecError, GuestError, HostGlobal, Limit, LimitExceeded, Limits, Metrics, Mode,
    Outcome, OutcomeRecord, Policy, PolicyError, Request, Status, MAX_RESULT_DEPTH,
};

/// The engines Palisade knows, by their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EngineKind {
    /// QuickJS-NG, native. The embedded default.
    #[default]
    QuickJs,
    /// QuickJS-NG compiled to WASI, under Wasmtime.
    Wasm,
    /// V8, through libmini_racer.
    V8,
}

impl EngineKind {
    /// Every engine, in the order `palisade engines` lists them.
    pub const ALL: [EngineKind; 3] = [EngineKind::QuickJs, EngineKind::Wasm, EngineKind::V8];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::QuickJs => "quickjs",
            EngineKind::Wasm => "wasm",
            EngineKind::V8 => "v8",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EngineKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown engine `{s}` (expected quickjs, wasm or v8)"))
    }
}

/// Describes every engine Palisade knows, available or not.
pub fn engines() -> Vec<EngineInfo> {
    EngineKind::ALL.into_iter().map(engine_info).collect()
}

/// Describes one engine.
pub fn engine_info(kind: EngineKind) -> EngineInfo {
    match kind {
        EngineKind::QuickJs => palisade_quickjs::QuickJs::new().info(),
        EngineKind::Wasm => palisade_wasm::info(),
        EngineKind::V8 => palisade_v8::info(),
    }
}

/// Options for a [`Sandbox`], validated once by [`SandboxBuilder::build`].
#[derive(Debug, Clone, Default)]
pub struct SandboxBuilder {
    engine: EngineKind,
    prewarm: usize,
    limits: Option<Limits>,
    services: HostServices,
}

impl SandboxBuilder {
    /// The engine to run on. Default: [`EngineKind::QuickJs`].
    pub fn engine(mut self, engine: EngineKind) -> Self {
        self.engine = engine;
        self
    }

    /// How many unused contexts to keep ready in the background (0, the default, builds each
    /// one on demand). Pre-warmed contexts have never run guest code. Only `v8` builds
    /// contexts per run; `quickjs` and `wasm` restore a snapshot instead, which needs no
    /// background thread, so for them this is accepted and has no effect.
    pub fn prewarm(mut self, n: usize) -> Self {
        self.prewarm = n;
        self
    }

    /// The host's services: the secret store and its audit log, extra TLS roots for `fetch`.
    /// Default: no secrets, the public web's roots.
    pub fn host_services(mut self, services: HostServices) -> Self {
        self.services = services;
        self
    }

    /// Checks these limits against the engine when building, so that a limit the engine cannot
    /// enforce is a configuration error up front rather than on every run.
    pub fn expect_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Builds the sandbox; fails if the engine is unavailable or cannot enforce the limits.
    pub fn build(self) -> Result<Sandbox, BuildError> {
        let engine: Arc<dyn Engine> = match self.engine {
            EngineKind::QuickJs => Arc::new(palisade_quickjs::QuickJs::with_options(
                palisade_quickjs::QuickJsOptions::default().prewarm(self.prewarm),
            )),
            EngineKind::Wasm => Arc::new(
                palisade_wasm::Wasm::with_options(
                    palisade_wasm::WasmOptions::default().prewarm(self.prewarm),
                )
                .map_err(|reason| BuildError::Unavailable {
                    engine: EngineKind::Wasm,
                    reason,
                })?,
            ),
            EngineKind::V8 => Arc::new(
                palisade_v8::V8::with_options(
                    palisade_v8::V8Options::default().prewarm(self.prewarm),
                )
                .map_err(|reason| BuildError::Unavailable {
                    engine: EngineKind::V8,
                    reason,
                })?,
            ),
        };
        if let Some(limits) = &self.limits {
            engine.check_limits(limits)?;
        }
        Ok(Sandbox {
            engine,
            services: self.services,
        })
    }
}

/// Why a [`Sandbox`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The engine cannot run here.
    #[error("engine `{engine}` is unavailable: {reason}")]
    Unavailable {
        /// The engine.
        engine: EngineKind,
        /// Why, and how to install it.
        reason: String,
    },
    /// The configuration is invalid for this engine.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl BuildError {
    /// The outcome a run would have had with this configuration, on the engine the build asked
    /// for (`requested`, which a configuration error does not carry).
    pub fn to_outcome(&self, requested: EngineKind) -> Outcome {
        match self {
            BuildError::Unavailable { engine, reason } => Outcome::failed(
                engine.as_str(),
                ExecError::EngineUnavailable {
                    engine: engine.as_str().to_owned(),
                    reason: reason.clone(),
                },
            ),
            BuildError::Config(e) => Outcome::failed(
                requested.as_str(),
                ExecError::InvalidRequest {
                    message: e.to_string(),
                },
            ),
        }
    }
}

/// Runs requests on one engine, each in a fresh context.
#[derive(Debug, Clone)]
pub struct Sandbox {
    engine: Arc<dyn Engine>,
    services: HostServices,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A sandbox on the default engine (`quickjs`), building contexts on demand.
    pub fn new() -> Self {
        Sandbox {
            engine: Arc::new(palisade_quickjs::QuickJs::new()),
            services: HostServices::new(),
        }
    }

    /// Options for a sandbox.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// The engine's description.
    pub fn engine_info(&self) -> EngineInfo {
        self.engine.info()
    }

    /// Checks that `request`'s source (and, for a module, the modules it imports) parses,
    /// without running any of the guest's own statements: the engine parses a copy whose first
    /// statement throws. A syntax error comes back as [`ExecError::Syntax`] with its line and
    /// column in the original source; a configuration the engine refuses as its
    /// `invalid_request` or `engine_unavailable` error.
    ///
    /// Limits: strict-mode-only errors in a script that opens with `"use strict"` are not
    /// caught (the probe statement ends the directive prologue), and the bodies of imported
    /// modules do run, under the request's limits and a default (deny-all) policy.
    ///
    /// ```
    /// let sandbox = palisade::Sandbox::new();
    /// assert!(sandbox.check_syntax(&palisade::Request::script("1 +")).is_err());
    /// assert!(sandbox.check_syntax(&palisade::Request::script("while (true) {}")).is_ok());
    /// ```
    pub fn check_syntax(&self, request: &Request) -> Result<(), ExecError> {
        const PROBE: &str = "throw 0;";
        let mut probe = request.clone();
        probe.source = format!("{PROBE}{}", request.source);
        probe.input = serde_json::Value::Null;
        probe.policy = Policy::default();
        probe.limits.timeout = probe.limits.timeout.min(std::time::Duration::from_secs(2));
        match self.run(&probe).result {
            Err(ExecError::Syntax(mut e)) => {
                if e.line == Some(1) {
                    let shift = PROBE.len() as u32;
                    e.column = e.column.map(|c| c.saturating_sub(shift).max(1));
                }
                Err(ExecError::Syntax(e))
            }
            Err(e @ (ExecError::InvalidRequest { .. } | ExecError::EngineUnavailable { .. })) => {
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Runs one request as the `default` tenant, outside any deployed function. Invalid limits
    /// give `invalid_request`; nothing here panics on guest input, and a host bug that does is
    /// reported as `internal`.
    pub fn run(&self, request: &Request) -> Outcome {
        self.run_as(request, AccessContext::anonymous())
    }

    /// Runs one request on behalf of `context` (tenant, function, execution id): secret reads
    /// are decided and audited against it. Secret values the guest read are replaced with
    /// `[REDACTED]` in the outcome's output, result and error.
    pub fn run_as(&self, request: &Request, context: AccessContext) -> Outcome {
        let checked = self
            .engine
            .check_limits(&request.limits)
            .and_then(|()| self.engine.check_policy(&request.policy));
        if let Err(e) = checked {
            return Outcome::failed(
                self.engine.name(),
                ExecError::InvalidRequest {
                    message: e.to_string(),
                },
            );
        }
        let deadline = std::time::Instant::now() + request.limits.timeout;
        let session = Arc::new(palisade_host::Session::new(
            &self.services,
            &request.policy,
            deadline,
            context,
        ));
        let host: Arc<dyn palisade_core::HostCalls> = session.clone();
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.engine.execute(request, host))) {
            Ok(mut outcome) => {
                palisade_host::redact_outcome(&mut outcome, &session.revealed());
                outcome.cap_error_text();
                outcome
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Outcome::failed(
                    self.engine.name(),
                    ExecError::internal(format!("engine panicked: {what}")),
                )
            }
        }
    }
}
