//! Palisade's `v8` engine: V8 14 through `libmini_racer.so` (from the pinned PyPI wheel
//! `mini-racer==0.14.1`), loaded at run time.
//!
//! V8 never runs in the host process. Each execution is sent to a worker process (this same
//! program re-executed with `PALISADE_V8_WORKER=1`, or the `palisade-v8-worker` binary), which
//! runs it in a fresh V8 context and sends the outcome back. A worker that crashes (V8 aborts on
//! some out-of-memory shapes) fails only the execution it was running, and is replaced.
//!
//! ```no_run
//! use palisade_core::{Engine, Request};
//! use palisade_v8::{V8, V8Options};
//!
//! // Needs the library: `scripts/fetch-v8`, or PALISADE_V8_LIB=/path/to/libmini_racer.so.
//! let engine = V8::with_options(V8Options::default()).expect("v8 is unavailable here");
//! let outcome = engine.execute(&Request::script("console.log('hi'); 1 + 2"), palisade_core::host::no_host());
//! assert_eq!(outcome.result.unwrap(), serde_json::json!(3));
//! assert_eq!(outcome.stdout, "hi\n");
//! ```
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod ffi;
mod modules;
mod pool;
mod protocol;
#[doc(hidden)]
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use palisade_core::{
    Capabilities, ConfigError, Engine, EngineInfo, HostCalls, Limit, Limits, Outcome, Request,
};

/// The engine's stable name.
pub const NAME: &str = "v8";

/// The V8 version in the pinned `libmini_racer.so`.
pub const V8_VERSION: &str = "14.4.258.23";

/// The largest JS stack a request may ask for on v8 (the isolate thread's native stack is 8 MiB).
pub const MAX_STACK: u64 = 7 << 20;

/// The environment variable that points at a `libmini_racer.so` (with `icudtl.dat` beside it).
pub const LIB_ENV: &str = "PALISADE_V8_LIB";

/// The environment variable that names the worker executable (default: re-execute the current
/// program, which runs the worker before `main` when started as one).
pub const WORKER_ENV: &str = "PALISADE_V8_WORKER_EXE";

const INSTALL: &str = "install it with `scripts/fetch-v8` (or set PALISADE_V8_LIB to a libmini_racer.so with icudtl.dat beside it)";

/// Where the library was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) lib: PathBuf,
    pub(crate) icu: PathBuf,
}

fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os(LIB_ENV) {
        let p = PathBuf::from(p);
        out.push(if p.is_dir() {
            p.join("libmini_racer.so")
        } else {
            p
        });
        return out;
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            out.push(dir.join("libmini_racer.so"));
        }
    }
    out.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/v8/libmini_racer.so"));
    out
}

pub(crate) fn locate() -> Result<Located, String> {
    let tried = candidates();
    for lib in &tried {
        if lib.is_file() {
            let icu = lib.with_file_name("icudtl.dat");
            if !icu.is_file() {
                return Err(format!(
                    "{} has no icudtl.dat beside it; {INSTALL}",
                    lib.display()
                ));
            }
            let lib = lib.canonicalize().unwrap_or_else(|_| lib.clone());
            let icu = icu.canonicalize().unwrap_or(icu);
            return Ok(Located { lib, icu });
        }
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "libmini_racer.so (V8 {V8_VERSION}) was not found (looked at {}); {INSTALL}",
        list.join(", ")
    ))
}

/// Describes the engine without starting it (cheap: it only looks for the library files).
pub fn info() -> EngineInfo {
    match locate() {
        Ok(_) => EngineInfo {
            name: NAME,
            version: format!("V8 {V8_VERSION}"),
            available: true,
            detail: None,
        },
        Err(why) => EngineInfo {
            name: NAME,
            version: format!("V8 {V8_VERSION}"),
            available: false,
            detail: Some(why),
        },
    }
}

/// Options for [`V8`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct V8Options {
    /// Unused contexts each worker keeps ready (at least 1), and, when above 0, a spare worker
    /// process kept ready in the background.
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
    pool: Arc<pool::Pool>,
}

impl V8 {
    /// Starts the engine (one worker process, to prove V8 runs here); `Err` says why it cannot
    /// run here and how to fix that.
    pub fn with_options(options: V8Options) -> Result<V8, String> {
        // The start-up hook must be linked into every program that can become a worker.
        std::hint::black_box(&ffi::WORKER_HOOK);
        let located = locate()?;
        let pool = pool::Pool::new(located, options.prewarm)?;
        Ok(V8 {
            pool: Arc::new(pool),
        })
    }
}

impl Engine for V8 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: NAME,
            version: format!("V8 {}", self.pool.version()),
            available: true,
            detail: None,
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(false, true, true)
    }

    fn check_limits(&self, limits: &Limits) -> Result<(), ConfigError> {
        limits.validate()?;
        if limits.fuel.is_some() {
            return Err(ConfigError::Unsupported {
                engine: NAME,
                limit: Limit::Fuel,
            });
        }
        if let Some(stack) = limits.stack {
            if stack > MAX_STACK {
                return Err(ConfigError::OutOfRange {
                    limit: Limit::Stack,
                    value: palisade_core::units::format_size(stack),
                    allowed: "64KiB..=7MiB on the v8 engine",
                });
            }
        }
        Ok(())
    }

    fn execute(&self, request: &Request, host: Arc<dyn HostCalls>) -> Outcome {
        let start = Instant::now();
        let mut outcome = match self.pool.execute(request, &*host, start) {
            Ok(o) => o,
            Err(e) => Outcome::failed(NAME, e),
        };
        outcome.metrics.engine = NAME.to_owned();
        outcome.metrics.wall_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_says_how_to_install() {
        let info = EngineInfo {
            name: NAME,
            version: String::new(),
            available: false,
            detail: locate().err(),
        };
        if let Some(d) = info.detail {
            assert!(d.contains("scripts/fetch-v8"), "{d}");
        }
    }
}
