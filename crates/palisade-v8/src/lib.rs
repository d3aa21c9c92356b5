//! Palisade's `v8` engine: V8 through libmini_racer.
//!
//! Skeleton: the engine is being built; until then it reports itself unavailable.

use std::sync::Arc;

use palisade_core::{Capabilities, Engine, EngineInfo, ExecError, HostCalls, Outcome, Request};

const NAME: &str = "v8";

/// Describes the engine without starting it (cheap: for `palisade engines`).
pub fn info() -> EngineInfo {
    EngineInfo {
        name: NAME,
        version: String::new(),
        available: false,
        detail: Some("the `v8` engine is not part of this build of Palisade yet".into()),
    }
}

/// Options for [`V8`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct V8Options {
    /// Unused instances kept ready in the background.
    pub prewarm: usize,
}

impl V8Options {
    /// Sets [`V8Options::prewarm`].
    pub fn prewarm(mut self, n: usize) -> Self {
        self.prewarm = n;
        self
    }
}

/// The `v8` engine.
#[derive(Debug)]
pub struct V8 {
    _options: V8Options,
}

impl V8 {
    /// Starts the engine; `Err` says why it cannot run here and how to fix that.
    pub fn with_options(options: V8Options) -> Result<V8, String> {
        let _ = options;
        Err(info().detail.unwrap_or_default())
    }
}

impl Engine for V8 {
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
