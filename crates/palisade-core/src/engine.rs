//! The small trait every engine implements.

use std::sync::Arc;

use crate::host::HostCalls;
use crate::limits::{ConfigError, Limit, Limits};
use crate::outcome::Outcome;
use crate::policy::Policy;
use crate::request::Request;

/// What an engine can enforce beyond the limits every engine must (memory, timeout, stack depth,
/// output and result size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// Counts instructions deterministically, so it accepts [`Limits::fuel`].
    pub fuel: bool,
    /// Accepts an explicit [`Limits::stack`] size (otherwise only its default applies).
    pub stack_size: bool,
    /// Can offer `WebAssembly` when a policy allows it.
    pub wasm: bool,
}

impl Capabilities {
    /// Capabilities with the given flags.
    pub const fn new(fuel: bool, stack_size: bool, wasm: bool) -> Self {
        Capabilities {
            fuel,
            stack_size,
            wasm,
        }
    }
}

/// How an engine describes itself to `palisade engines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// The engine's stable name: `quickjs`, `wasm`, `v8`.
    pub name: &'static str,
    /// The JavaScript engine's version, where known.
    pub version: String,
    /// Whether it can run here.
    pub available: bool,
    /// When unavailable: why, and the one command that installs it.
    pub detail: Option<String>,
}

/// A JavaScript engine behind Palisade's contract.
///
/// An engine receives a [`Request`] and returns an [`Outcome`]: it never panics on guest input
/// and never lets state from one execution reach the next.
pub trait Engine: Send + Sync + std::fmt::Debug {
    /// The stable name.
    fn name(&self) -> &'static str;

    /// Name, version and availability.
    fn info(&self) -> EngineInfo;

    /// The optional limits this engine enforces.
    fn capabilities(&self) -> Capabilities;

    /// Checks that `limits` are in range and that this engine can enforce every one that is set.
    fn check_limits(&self, limits: &Limits) -> Result<(), ConfigError> {
        limits.validate()?;
        let caps = self.capabilities();
        if limits.fuel.is_some() && !caps.fuel {
            return Err(ConfigError::Unsupported {
                engine: self.name(),
                limit: Limit::Fuel,
            });
        }
        if limits.stack.is_some() && !caps.stack_size {
            return Err(ConfigError::Unsupported {
                engine: self.name(),
                limit: Limit::Stack,
            });
        }
        Ok(())
    }

    /// Checks that this engine can honour `policy`.
    fn check_policy(&self, policy: &Policy) -> Result<(), ConfigError> {
        if policy.allow_wasm && !self.capabilities().wasm {
            return Err(ConfigError::Invalid(format!(
                "engine `{}` cannot provide WebAssembly (policy.allow_wasm)",
                self.name()
            )));
        }
        Ok(())
    }

    /// Runs one request in a fresh context. The request's limits have passed
    /// [`Engine::check_limits`] and its policy [`Engine::check_policy`]. `host` serves this one
    /// execution's host calls (`crypto`, `fetch`, `secrets`): see [`crate::host`].
    fn execute(&self, request: &Request, host: Arc<dyn HostCalls>) -> Outcome;
}
