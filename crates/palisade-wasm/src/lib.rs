//! Palisade's `wasm` engine: QuickJS-NG compiled to WASI, run under Wasmtime.
//!
//! ```
//! use palisade_core::{Engine, Request};
//! use palisade_wasm::{Wasm, WasmOptions};
//!
//! let engine = Wasm::with_options(WasmOptions::default()).expect("the wasm engine starts");
//! let outcome = engine.execute(&Request::script("console.log('hi'); 1 + 2"), palisade_core::host::no_host());
//! assert_eq!(outcome.result.unwrap(), serde_json::json!(3));
//! assert_eq!(outcome.stdout, "hi\n");
//! ```
//!
//! # Design
//! - **The guest** (`guest/palisade-guest.wasm`, built by `scripts/build-wasm-guest` from the
//!   QuickJS-NG sources vendored in `rquickjs-sys` plus `guest/glue.c`) is committed, so a
//!   machine without the WASI toolchain still runs the engine; CI rebuilds it and compares bytes.
//!   It imports only the `palisade.*` functions of [`run`]'s ABI and five stubbed WASI calls.
//! - **The snapshot**: once per process, the host instantiates the guest, runs its
//!   `wizer-initialize` (runtime, context, primordials, console, host prelude, default policy —
//!   fed the JS texts of `palisade-core`, so the guest binary never changes when they do) and
//!   snapshots the result with `wasmtime-wizer`. The snapshot is compiled with Cranelift and
//!   cached on disk (see [`WasmOptions::cache_dir`]), keyed by the guest, the texts and
//!   `Engine::precompile_compatibility_hash`, so later processes start in milliseconds.
//! - **A fresh instance per execution**, from the pooling allocator with copy-on-write memory
//!   images: a run never sees another run's memory. After the run (or any trap) the instance is
//!   dropped.
//! - **Limits**: memory by the glue's metered allocator (the native engine's latch: a caught
//!   out-of-memory still ends as `memory_limit`) plus a `StoreLimits` cap on linear memory; the
//!   deadline by revoking the run's linear memory from a watchdog thread, so that its next load
//!   or store traps (uncatchable; `watch`); fuel by Wasmtime's fuel (a second,
//!   fuel-counting compilation made on first use); the JS stack by QuickJS's own check, set by
//!   the glue from the linker's shadow-stack bounds; it also fails once the run has used its
//!   share of Wasmtime's native stack (the host is asked every 128 checks), so deep C recursion
//!   throws the same catchable `RangeError` as on the native engine instead of trapping.
#![deny(unsafe_code)]

mod error;
#[allow(unsafe_code)]
mod ffi;
mod guest;
mod run;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use palisade_core::limits::{ConfigError, Limit, Limits};
use palisade_core::{Capabilities, Engine, EngineInfo, ExecError, HostCalls, Outcome, Request};

pub use error::WasmError;

/// The engine's stable name.
pub const NAME: &str = "wasm";

/// The QuickJS-NG version inside the guest.
pub const QUICKJS_VERSION: &str = "QuickJS-NG 0.16.2";

/// The JS stack budget when the request sets none, and the largest one accepted: 1 MiB of the
/// guest's shadow stack (about 9,000 plain JS frames).
pub const DEFAULT_STACK: u64 = 1 << 20;

/// The environment variable that sizes the process's instance pools: the most wasm executions
/// at once without a fuel budget, and as many with one (1 to 256 each, default 256; empty is
/// unset). A caller beyond them waits for a slot, within its timeout (the wait is part of its
/// run's time; a timeout that passes first is `timeout`). Read once, when the process's first
/// `Wasm` engine starts. `palisade run` and the service's workers, which execute one request at
/// a time, set 1.
pub const POOL_SLOTS_VAR: &str = "PALISADE_WASM_POOL_SLOTS";

/// The largest memory limit a 32-bit guest can honour.
pub const MAX_MEMORY: u64 = 3 << 30;

/// Describes the engine without starting it (cheap: for `palisade engines`).
pub fn info() -> EngineInfo {
    EngineInfo {
        name: NAME,
        version: format!("{QUICKJS_VERSION} on Wasmtime {}", guest::WASMTIME_VERSION),
        available: true,
        detail: None,
    }
}

/// Options for [`Wasm`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WasmOptions {
    /// Unused instances kept ready in the background. Instances come from a copy-on-write pool
    /// in microseconds, so this is accepted and needs no thread.
    pub prewarm: usize,
    /// Where compiled snapshots are cached. `None` (the default): `$PALISADE_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/palisade/wasm`, else `~/.cache/palisade/wasm`, else no disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Disables the disk cache (each process compiles the guest once).
    pub no_disk_cache: bool,
}

impl WasmOptions {
    /// Sets [`WasmOptions::prewarm`].
    pub fn prewarm(mut self, n: usize) -> Self {
        self.prewarm = n;
        self
    }

    /// Sets [`WasmOptions::cache_dir`].
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Sets [`WasmOptions::no_disk_cache`].
    pub fn no_disk_cache(mut self, off: bool) -> Self {
        self.no_disk_cache = off;
        self
    }
}

/// The `wasm` engine.
#[derive(Debug)]
pub struct Wasm {
    options: WasmOptions,
    plain: Arc<guest::Compiled>,
    /// Bytecode of recently run sources (compile once, run many).
    code: palisade_core::code_cache::CodeCache,
}

impl Wasm {
    /// Starts the engine (compiling or loading the snapshot on first use in this process);
    /// `Err` says why it cannot run here.
    pub fn with_options(options: WasmOptions) -> Result<Wasm, String> {
        let plain = guest::compiled(false, &options).map_err(|e| e.to_string())?;
        Ok(Wasm {
            options,
            plain,
            code: Default::default(),
        })
    }

    fn compiled(&self, fuel: bool) -> Result<Arc<guest::Compiled>, WasmError> {
        if fuel {
            guest::compiled(true, &self.options)
        } else {
            Ok(self.plain.clone())
        }
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
        Capabilities::new(true, true, false)
    }

    fn check_limits(&self, limits: &Limits) -> Result<(), ConfigError> {
        limits.validate()?;
        if limits.memory > MAX_MEMORY {
            return Err(ConfigError::OutOfRange {
                limit: Limit::Memory,
                value: palisade_core::units::format_size(limits.memory),
                allowed: "1MiB..=3GiB on the wasm engine (a 32-bit guest)",
            });
        }
        if let Some(stack) = limits.stack {
            if stack > DEFAULT_STACK {
                return Err(ConfigError::OutOfRange {
                    limit: Limit::Stack,
                    value: palisade_core::units::format_size(stack),
                    allowed: "64KiB..=1MiB on the wasm engine",
                });
            }
        }
        Ok(())
    }

    fn execute(&self, request: &Request, host: Arc<dyn HostCalls>) -> Outcome {
        let mut start = Instant::now();
        let mut outcome = match self.check_limits(&request.limits) {
            Err(e) => Outcome::failed(
                NAME,
                ExecError::InvalidRequest {
                    message: e.to_string(),
                },
            ),
            Ok(()) => match self.compiled(request.limits.fuel.is_some()) {
                Ok(compiled) => {
                    // The run's clock starts once its compilation is at hand: the first fuel
                    // run of a process makes the fuel-counting one (a cache load, or a compile
                    // of a second or more), which is the host's one-off cost, not the run's.
                    // Until 2026-12-01 it counted against the run's timeout.
                    start = Instant::now();
                    // A caller beyond the pool's size waits for a slot, within its timeout
                    // (`guest::Slots`). The permit outlives `run::run`'s store.
                    match compiled.slots.take(start + request.limits.timeout) {
                        Some(_slot) => run::run(&compiled, &self.code, request, host, start),
                        None => Outcome::failed(NAME, no_slot(request, start)),
                    }
                }
                Err(e) => Outcome::failed(NAME, ExecError::internal(e.to_string())),
            },
        };
        outcome.metrics.engine = NAME.to_owned();
        outcome.metrics.wall_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        outcome
    }
}

/// The `timeout` of a caller that found every pool slot in use until its deadline.
fn no_slot(request: &Request, start: Instant) -> ExecError {
    ExecError::timeout_with(
        request.limits.timeout,
        start.elapsed(),
        "the timeout passed while every wasm instance of this process was in use \
         (more executions at once than PALISADE_WASM_POOL_SLOTS; the run did not start)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_cheap_and_available() {
        let i = info();
        assert!(i.available);
        assert!(i.version.contains("QuickJS-NG"));
    }

    #[test]
    fn refuses_limits_it_cannot_enforce() {
        let engine = Wasm::with_options(WasmOptions::default()).unwrap();
        let big = Limits {
            memory: 8 << 30,
            ..Limits::default()
        };
        assert!(engine.check_limits(&big).is_err());
        let stack = Limits {
            stack: Some(4 << 20),
            ..Limits::default()
        };
        assert!(engine.check_limits(&stack).is_err());
        let fuel = Limits {
            fuel: Some(1_000_000),
            stack: Some(256 << 10),
            ..Limits::default()
        };
        assert!(engine.check_limits(&fuel).is_ok());
    }

    #[test]
    fn a_source_compiles_until_its_second_run_keeps_it_and_each_run_gets_fresh_objects() {
        let engine = Wasm::with_options(WasmOptions::default()).unwrap();
        let host = Arc::new(palisade_core::host::NoHost);
        let run = |req: &Request| engine.execute(req, host.clone());
        // Each run mutates a built-in and counts on seeing it pristine: from bytecode too.
        let script = Request::script(
            "const seen = Array.prototype.tainted; Array.prototype.tainted = 1; [seen, input * 2]",
        )
        .with_input(serde_json::json!(21));
        let peaks: Vec<u64> = (0..4)
            .map(|_| {
                let o = run(&script);
                assert_eq!(o.result, Ok(serde_json::json!([null, 42])));
                o.metrics.memory_bytes
            })
            .collect();
        // Run 1 compiled, run 2 compiled and kept, runs 3 and 4 read the bytecode.
        assert_eq!(engine.code.stats(), (1, 2));
        // Writing the kept bytecode is not the run's memory (glue.c, `compile`).
        assert_eq!(peaks[0], peaks[1]);
        assert_eq!(peaks[2], peaks[3]);
        let module = Request::module("import { k } from './k.js'; export default (x) => x * k;")
            .with_input(serde_json::json!(2))
            .with_module("./k.js", "export const k = 21;");
        for _ in 0..3 {
            assert_eq!(run(&module).result, Ok(serde_json::json!(42)));
        }
        assert_eq!(engine.code.stats(), (2, 3));
        // A syntax error is reported each time and never kept.
        let bad = Request::script("let x = ;");
        for _ in 0..3 {
            let e = run(&bad).to_record().error.unwrap();
            assert_eq!(e.kind, palisade_core::ErrorKind::SyntaxError);
            assert_eq!(e.line, Some(1));
        }
        assert_eq!(engine.code.stats(), (2, 3));
        // A fuel budget never reads or keeps bytecode.
        let metered = Request::script("1 + 1").with_limits(Limits {
            fuel: Some(1 << 30),
            ..Limits::default()
        });
        for _ in 0..3 {
            assert_eq!(run(&metered).result, Ok(serde_json::json!(2)));
        }
        assert_eq!(engine.code.stats(), (2, 3));
    }
}
