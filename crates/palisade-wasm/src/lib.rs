//! Palisade's `wasm` engine: QuickJS-NG compiled to WASI, run under Wasmtime.
//!
//! Skeleton: the engine is being built; until then it reports itself unavailable.

use std::sync::Arc;

use palisade_core::{Capabilities, Engine, EngineInfo, ExecError, HostCalls, Outcome, Request};

const NAME: &str = "wasm";

/// Describes the engine without starting it (cheap: for `palisade engines`).
pub fn info() -> EngineInfo {
    EngineInfo {
        name: NAME,
        version: String::new(),
        available: false,
        detail: Some("the `wasm` engine is not part of this build of Palisade yet".into()),
    }
}

/// Options for [`Wasm`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WasmOptions {
    /// Unused instances kept ready in the background.
    pub prewarm: usize,
}

impl WasmOptions {
    /// Sets [`WasmOptions::prewarm`].
    pub fn prewarm(mut self, n: usize) -> Self {
        self.prewarm = n;
        self
    }
}

/// The `wasm` engine.
#[derive(Debug)]
pub struct Wasm {
    _options: WasmOptions,
}

impl Wasm {
    /// Starts the engine; `Err` says why it cannot run here and how to fix that.
    pub fn with_options(options: WasmOptions) -> Result<Wasm, String> {
        let _ = options;
        Err(info().detail.unwrap_or_default())
    }
}

impl Engine for Wasm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn info(&self) -> EngineInfo {
        info()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn execute(&self, _request: &Request, _host: Arc<dyn HostCalls>) -> Outcome {
        Outcome::failed(
            NAME,
            ExecError::EngineUnavailable {
                engine: NAME.into(),
                reason: info().detail.unwrap_or_default(),
            },
        )
    }
}
