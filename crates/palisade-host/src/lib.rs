//! Palisade's host APIs: what lies behind the guest's one door ([`palisade_core::host`]).
//!
//! A [`HostServices`] holds what outlives executions (the secret store, the audit log, extra
//! TLS roots). For each execution the facade opens a [`Session`] with the run's policy, deadline
//! and [`AccessContext`]; the engine routes the guest's host calls to it. After the run, the
//! facade redacts every secret the session handed out from the outcome ([`redact_outcome`]).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use palisade_core::{host::{HostCalls, HostValue}, Policy};
//! use palisade_host::{AccessContext, HostServices, MemoryAudit, MemorySecretStore, Session};
//!
//! let store = Arc::new(MemorySecretStore::new());
//! store.insert("acme", "API_KEY", "s3cr3t-token");
//! let audit = Arc::new(MemoryAudit::default());
//! let services = HostServices::new().secrets(store, audit.clone());
//! let mut policy = Policy::default();
//! policy.secrets.insert("API_KEY".into());
//! let ctx = AccessContext { tenant: "acme".into(), function: None, execution_id: "e1".into() };
//! let session = Session::new(&services, &policy, Instant::now() + Duration::from_secs(1), ctx);
//! assert_eq!(session.call("secrets.get", "API_KEY", None), Ok(HostValue::Str("s3cr3t-token".into())));
//! assert!(session.call("secrets.get", "OTHER", None).is_err());
//! assert_eq!(audit.records().len(), 2);
//! assert_eq!(session.revealed(), ["s3cr3t-token"]);
//! ```
#![forbid(unsafe_code)]

mod crypto;
pub mod fetch;
mod redact;
pub mod secrets;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use palisade_core::host::{HostCalls, HostError, HostValue};
use palisade_core::policy::{denied_message, HostGlobal, Policy};

pub use crypto::MAX_RANDOM_BYTES;
pub use redact::{redact_outcome, FRAGMENT_LEN, MIN_REDACTED_LEN, REDACTED};
pub use secrets::{
    new_execution_id, AccessContext, AccessResult, AuditLog, AuditRecord, AuditSink,
    FileSecretStore, MasterKey, MemoryAudit, MemorySecretStore, SecretEntry, SecretError,
    SecretStore, MASTER_KEY_ENV,
};

/// What outlives executions: the secret store, the audit log, extra TLS roots for `fetch`.
#[derive(Debug, Clone, Default)]
pub struct HostServices {
    secrets: Option<(Arc<dyn SecretStore>, Arc<dyn AuditSink>)>,
    roots: Arc<Vec<reqwest::Certificate>>,
}

/// A configuration the host cannot use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostConfigError {
    /// A PEM certificate does not parse.
    #[error("invalid root certificate: {0}")]
    Certificate(String),
}

impl HostServices {
    /// No secret store (every `secrets.get` finds nothing) and the public web's TLS roots.
    pub fn new() -> Self {
        Self::default()
    }

    /// The secret store, and the audit log every access to it is written to. A store without
    /// an audit log cannot be configured: every access, granted or denied, is audited.
    pub fn secrets(mut self, store: Arc<dyn SecretStore>, audit: Arc<dyn AuditSink>) -> Self {
        self.secrets = Some((store, audit));
        self
    }

    /// Also trusts this PEM root certificate for `fetch` over HTTPS (an internal CA).
    pub fn add_root_certificate(mut self, pem: &[u8]) -> Result<Self, HostConfigError> {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| HostConfigError::Certificate(e.to_string()))?;
        Arc::make_mut(&mut self.roots).push(cert);
        Ok(self)
    }
}

#[derive(Debug)]
struct State {
    random: crypto::Randomness,
    clock: PerformanceClock,
    fetcher: fetch::Fetcher,
    revealed: Vec<String>,
    denials: palisade_core::policy::Denials,
}

/// The clock behind `performance.now()`: milliseconds since the session opened, at 0.1 ms
/// resolution, or in deterministic mode the deterministic clock's time since its start (so
/// fixed reads 0 every time, virtual 0, 1, 2, ...).
#[derive(Debug)]
enum PerformanceClock {
    Real(Instant),
    Deterministic(palisade_core::rng::DeterministicClock),
}

impl PerformanceClock {
    fn new(policy: &Policy) -> Self {
        match &policy.deterministic {
            Some(d) => {
                PerformanceClock::Deterministic(palisade_core::rng::DeterministicClock::new(d))
            }
            None => PerformanceClock::Real(Instant::now()),
        }
    }

    fn now_ms(&mut self) -> f64 {
        match self {
            // Coarsened to 100 µs, as browsers coarsen timers for untrusted code.
            PerformanceClock::Real(start) => (start.elapsed().as_micros() / 100) as f64 / 10.0,
            PerformanceClock::Deterministic(clock) => clock.since_start_ms() as f64,
        }
    }
}

/// One execution's host side: implements [`HostCalls`] for the engine.
#[derive(Debug)]
pub struct Session {
    policy: Policy,
    context: AccessContext,
    secrets: Option<(Arc<dyn SecretStore>, Arc<dyn AuditSink>)>,
    state: Mutex<State>,
}

impl Session {
    /// Opens the session of one execution.
    pub fn new(
        services: &HostServices,
        policy: &Policy,
        deadline: Instant,
        context: AccessContext,
    ) -> Self {
        let seed = policy.deterministic.as_ref().map(|d| d.seed);
        Session {
            policy: policy.clone(),
            context,
            secrets: services.secrets.clone(),
            state: Mutex::new(State {
                random: crypto::Randomness::new(seed),
                clock: PerformanceClock::new(policy),
                fetcher: fetch::Fetcher::new(
                    policy.fetch.clone(),
                    deadline,
                    services.roots.clone(),
                ),
                revealed: Vec::new(),
                denials: palisade_core::policy::Denials::default(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The secret values handed to the guest so far: what [`redact_outcome`] must remove.
    pub fn revealed(&self) -> Vec<String> {
        self.state().revealed.clone()
    }

    /// The access context.
    pub fn context(&self) -> &AccessContext {
        &self.context
    }

    fn audit(
        &self,
        audit: &dyn AuditSink,
        name: &str,
        result: AccessResult,
        reason: Option<String>,
    ) -> bool {
        let record = AuditRecord {
            ts: secrets::now_rfc3339(),
            action: "secret.get".into(),
            tenant: self.context.tenant.clone(),
            function: self.context.function.clone(),
            execution_id: self.context.execution_id.clone(),
            secret: name.into(),
            result,
            reason,
        };
        audit.append(&record).is_ok()
    }

    fn secret(&self, name: &str) -> Result<HostValue, HostError> {
        let deny = |why: &str| {
            HostError::named(
                "Error",
                denied_message(&format!("reading secret {name:?}"), why),
            )
        };
        let Some((store, audit)) = &self.secrets else {
            if !self.policy.secrets.contains(name) {
                return Err(deny("it is not in the policy's secrets list"));
            }
            return Ok(HostValue::Undefined);
        };
        let refuse = |why: &str| {
            let e = deny(why);
            if !self.audit(audit.as_ref(), name, AccessResult::Denied, Some(why.into())) {
                return HostError::named("Error", "secrets.get: the audit log cannot be written");
            }
            e
        };
        if !self.policy.secrets.contains(name) {
            return Err(refuse("it is not in the policy's secrets list"));
        }
        match store.lookup(&self.context.tenant, name) {
            Err(e) => {
                let _ = self.audit(
                    audit.as_ref(),
                    name,
                    AccessResult::Error,
                    Some(e.to_string()),
                );
                Err(HostError::named(
                    "Error",
                    "secrets.get: the secret store failed",
                ))
            }
            Ok(None) => {
                if self.audit(audit.as_ref(), name, AccessResult::NotFound, None) {
                    Ok(HostValue::Undefined)
                } else {
                    Err(HostError::named(
                        "Error",
                        "secrets.get: the audit log cannot be written",
                    ))
                }
            }
            Ok(Some(entry)) => {
                if let Some(functions) = &entry.functions {
                    let ok = self
                        .context
                        .function
                        .as_ref()
                        .is_some_and(|f| functions.contains(f));
                    if !ok {
                        return Err(refuse("the secret is not granted to this function"));
                    }
                }
                if !self.audit(audit.as_ref(), name, AccessResult::Granted, None) {
                    return Err(HostError::named(
                        "Error",
                        "secrets.get: the audit log cannot be written",
                    ));
                }
                self.state().revealed.push(entry.value.clone());
                Ok(HostValue::Str(entry.value))
            }
        }
    }

    fn dispatch(&self, op: &str, arg: &str, bytes: Option<&[u8]>) -> Result<HostValue, HostError> {
        // A host API the policy's globals leave out is refused even if a guest reaches its op.
        let allowed = |global: HostGlobal| {
            if self.policy.allows_global(global) {
                Ok(())
            } else {
                Err(HostError::type_error(denied_message(
                    global.name(),
                    "policy globals",
                )))
            }
        };
        let crypto = || allowed(HostGlobal::Crypto);
        match op {
            "crypto.getRandomValues" => {
                crypto()?;
                self.state().random.random_values(arg)
            }
            "crypto.randomUUID" => {
                crypto()?;
                self.state().random.uuid()
            }
            "crypto.digest" => {
                crypto()?;
                crypto::digest(arg, bytes.unwrap_or_default())
            }
            "fetch" => self.state().fetcher.fetch(arg, bytes),
            "fetch.body" => self.state().fetcher.body(arg),
            "performance.now" => {
                allowed(HostGlobal::Performance)?;
                Ok(HostValue::Str(self.state().clock.now_ms().to_string()))
            }
            "text.encode" => Ok(HostValue::Bytes(arg.as_bytes().to_vec())),
            "secrets.get" => self.secret(arg),
            _ => Err(HostError::type_error(format!("unknown host call `{op}`"))),
        }
    }
}

impl HostCalls for Session {
    fn call(&self, op: &str, arg: &str, bytes: Option<&[u8]>) -> Result<HostValue, HostError> {
        let result = self.dispatch(op, arg, bytes);
        if let Err(e) = &result {
            if e.message.starts_with(palisade_core::policy::DENIED_PREFIX) {
                self.state().denials.record(&e.message);
            }
        }
        result
    }

    fn denied(&self, message: &str) -> bool {
        self.state().denials.contains(message)
    }
}
