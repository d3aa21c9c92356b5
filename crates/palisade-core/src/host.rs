//! The one door between the guest and the host: a synchronous call primitive that every engine
//! exposes to the shared host prelude ([`crate::HOST_JS`]), which builds `crypto`, `fetch` and
//! `secrets` on top of it.
//!
//! An engine installs a private function `hostcall(op, arg, bytes)`:
//! - `op` and `arg` are strings, `bytes` is an `ArrayBuffer` or `undefined`;
//! - it calls [`HostCalls::call`] and returns a string for [`HostValue::Str`], a fresh
//!   `ArrayBuffer` for [`HostValue::Bytes`] and `undefined` for [`HostValue::Undefined`];
//! - on [`HostError`] it throws an `Error` whose `name` and `message` are the error's.
//!
//! The prelude converts every guest argument exactly once (with intrinsics captured before guest
//! code ran) before calling `hostcall`, so the host validates and uses the same value. The
//! primitive never calls back into the guest.
//!
//! ```
//! use palisade_core::host::{HostCalls, HostValue, NoHost};
//! let err = NoHost.call("crypto.randomUUID", "", None).unwrap_err();
//! assert_eq!(err.name, "TypeError");
//! assert!(!NoHost.denied(&err.message));
//! ```

use std::fmt;
use std::sync::Arc;

/// What a host call returns to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostValue {
    /// A string.
    Str(String),
    /// An `ArrayBuffer` with these bytes.
    Bytes(Vec<u8>),
    /// `undefined`.
    Undefined,
}

/// A host call's failure, thrown into the guest as an `Error` with this `name` and `message`.
/// The prelude turns `TypeError` into a real `TypeError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct HostError {
    /// `TypeError`, `QuotaExceededError`, `NotSupportedError`, `OperationError` or `Error`.
    pub name: String,
    /// What went wrong; a policy denial starts with [`crate::policy::DENIED_PREFIX`].
    pub message: String,
}

impl HostError {
    /// A `TypeError`.
    pub fn type_error(message: impl Into<String>) -> Self {
        HostError {
            name: "TypeError".into(),
            message: message.into(),
        }
    }

    /// An error with this name.
    pub fn named(name: &str, message: impl Into<String>) -> Self {
        HostError {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// The host side of one execution's host calls. One value serves one execution: it carries that
/// execution's policy, deadline, counters and access context.
pub trait HostCalls: Send + Sync + fmt::Debug {
    /// Performs one call. Blocks until done (fetch included); never calls back into the guest.
    fn call(&self, op: &str, arg: &str, bytes: Option<&[u8]>) -> Result<HostValue, HostError>;

    /// Whether this host refused a call with exactly this message during the execution, so that
    /// an uncaught error carrying it is reported as `policy_denied` (and a guest-made error with
    /// the same text is not).
    fn denied(&self, message: &str) -> bool;
}

/// A host that offers nothing: every call is a `TypeError`. For engines used without the facade.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHost;

impl HostCalls for NoHost {
    fn call(&self, op: &str, _arg: &str, _bytes: Option<&[u8]>) -> Result<HostValue, HostError> {
        Err(HostError::type_error(format!(
            "host call `{op}` is not available in this sandbox"
        )))
    }

    fn denied(&self, _message: &str) -> bool {
        false
    }
}

/// A shared [`NoHost`].
pub fn no_host() -> Arc<dyn HostCalls> {
    Arc::new(NoHost)
}
