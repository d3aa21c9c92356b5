//! Palisade's `quickjs` engine: QuickJS-NG, native, through `rquickjs`.
//!
//! Every execution starts from a runtime and context no guest code has touched; nothing a run
//! creates survives it. Each thread builds one such runtime in an arena (see `ffi::arena` and
//! `snapshot`), seals it, and after every run restores the arena's bytes to the sealed state,
//! which is what a fresh runtime would be, for a fraction of the cost of building one. The
//! memory limit is enforced by a metered allocator that latches when the limit is hit, the
//! deadline and that latch by QuickJS's interrupt handler (an uncatchable termination), and the
//! stack limit by QuickJS's own stack check on a native stack guaranteed to be large enough.
//!
//! ```
//! use palisade_core::{Engine, Request};
//! use palisade_quickjs::QuickJs;
//!
//! let engine = QuickJs::new();
//! let outcome = engine.execute(&Request::script("console.log('hi'); 1 + 2"), palisade_core::host::no_host());
//! assert_eq!(outcome.result.unwrap(), serde_json::json!(3));
//! assert_eq!(outcome.stdout, "hi\n");
//! ```
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod ffi;
mod modules;
mod policy;
mod pool;
mod run;
mod snapshot;
mod trusted;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use palisade_core::output::Output;
use palisade_core::{Capabilities, Engine, EngineInfo, ExecError, HostCalls, Outcome, Request};
use rquickjs::context::intrinsic;
use rquickjs::{Context, Runtime};

use palisade_core::rng::{DeterministicClock, DeterministicRng};
use rquickjs::allocator::Allocator;

use crate::ffi::{Meter, MeteredAllocator};

/// The engine's stable name.
pub const NAME: &str = "quickjs";

/// The QuickJS-NG version compiled in.
pub const QUICKJS_VERSION: &str = "QuickJS-NG 0.16.2";

/// The JS stack QuickJS may use when the request sets none: 4 MiB (about 6,500 plain JS frames
/// in a release build; V8 allows about 11,000 with its default).
pub const DEFAULT_STACK: u64 = 4 << 20;

/// The run's JS stack limit in bytes: its own, or [`DEFAULT_STACK`].
fn stack_bytes(limits: &palisade_core::Limits) -> usize {
    usize::try_from(limits.stack.unwrap_or(DEFAULT_STACK)).unwrap_or(usize::MAX)
}

/// Options for [`QuickJs`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QuickJsOptions {
    /// Whether each thread runs from its sealed runtime, restored after every run (the
    /// default, `true`), or builds a new runtime for every run (`false`). Both give every run
    /// the same untouched starting state; restoring is several times cheaper.
    pub snapshot: bool,
    /// With `snapshot` off: how many unused runtimes a background thread keeps ready, so a run
    /// does not pay for building one. 0 (the default) builds each runtime on the calling thread,
    /// on demand. With `snapshot` on, runtimes are restored, not built, and this is unused.
    pub prewarm: usize,
}

impl Default for QuickJsOptions {
    fn default() -> Self {
        QuickJsOptions {
            snapshot: true,
            prewarm: 0,
        }
    }
}

impl QuickJsOptions {
    /// Sets [`QuickJsOptions::prewarm`].
    pub fn prewarm(mut self, n: usize) -> Self {
        self.prewarm = n;
        self
    }

    /// Sets [`QuickJsOptions::snapshot`].
    pub fn snapshot(mut self, on: bool) -> Self {
        self.snapshot = on;
        self
    }
}

/// The native QuickJS-NG engine.
#[derive(Debug)]
pub struct QuickJs {
    pool: Option<pool::Pool>,
    snapshot: bool,
    /// Bytecode of recently run sources (compile once, run many).
    code: palisade_core::code_cache::CodeCache,
}

impl Default for QuickJs {
    fn default() -> Self {
        QuickJs::new()
    }
}

impl QuickJs {
    /// An engine that builds each runtime on demand.
    pub fn new() -> Self {
        QuickJs::with_options(QuickJsOptions::default())
    }

    /// An engine with options.
    pub fn with_options(options: QuickJsOptions) -> Self {
        QuickJs {
            pool: (!options.snapshot && options.prewarm > 0)
                .then(|| pool::Pool::start(options.prewarm)),
            snapshot: options.snapshot,
            code: palisade_core::code_cache::CodeCache::default(),
        }
    }

    fn fresh(&self) -> Result<Fresh, ExecError> {
        match self.pool.as_ref().and_then(pool::Pool::take) {
            Some(f) => Ok(f),
            None => Fresh::new_malloc(),
        }
    }
}

impl Engine for QuickJs {
    fn name(&self) -> &'static str {
        NAME
    }

    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: NAME,
            version: QUICKJS_VERSION.to_owned(),
            available: true,
            detail: None,
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(false, true, false)
    }

    fn execute(&self, request: &Request, host: Arc<dyn HostCalls>) -> Outcome {
        let start = Instant::now();
        let stack = stack_bytes(&request.limits);
        let run = |fresh: &Fresh| run::run(fresh, request, host.clone(), start, &self.code);
        // QuickJS checks its stack limit against the native stack pointer, so the native stack
        // must have room for the whole JS limit plus the host's own frames, and for the
        // recompile of a failed compile with more stack (`run::unmask_stack_overflow`).
        let room = stack + run::RECOMPILE_EXTRA_STACK + (256 << 10);
        let mut outcome = stacker::maybe_grow(room, room + (2 << 20), || {
            if self.snapshot {
                if let Some(outcome) = snapshot::with(run) {
                    return outcome;
                }
            }
            match self.fresh() {
                Ok(fresh) => {
                    let outcome = run(&fresh);
                    // Freeing a runtime takes tens of µs; with a pool, its thread does it.
                    match &self.pool {
                        Some(pool) => pool.retire(fresh),
                        None => drop(fresh),
                    }
                    outcome
                }
                Err(e) => Outcome::failed(NAME, e),
            }
        });
        outcome.metrics.engine = NAME.to_owned();
        outcome.metrics.wall_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        outcome
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// What the interrupt handler consults: the deadline (kept in the meter, whose allocator also
/// reads it) and the memory latch.
#[derive(Debug)]
pub(crate) struct Guard {
    meter: Arc<Meter>,
    timed_out: AtomicBool,
}

impl Guard {
    fn new(meter: Arc<Meter>) -> Self {
        Guard {
            meter,
            timed_out: AtomicBool::new(false),
        }
    }

    /// Ready for a new run: no deadline yet, not timed out.
    fn reset(&self) {
        self.meter.set_deadline(u64::MAX);
        self.timed_out.store(false, Ordering::Relaxed);
    }

    fn set_deadline(&self, at: Instant) {
        self.meter.set_deadline(nanos_since_epoch(at));
    }

    /// Whether the run must stop now; latches the timeout.
    pub(crate) fn should_stop(&self) -> bool {
        self.meter.hit() || self.deadline_passed()
    }

    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }

    /// Whether the deadline has passed, polled or not (QuickJS polls nothing while it parses or
    /// runs some builtins); latches the timeout.
    pub(crate) fn deadline_passed(&self) -> bool {
        if !self.timed_out() && self.meter.past_deadline() {
            self.timed_out.store(true, Ordering::Relaxed);
        }
        self.timed_out()
    }

    /// The deadline, in [`nanos_since_epoch`] units.
    pub(crate) fn deadline(&self) -> u64 {
        self.meter.deadline()
    }
}

/// The intrinsics of a fresh context (see [`Fresh::new`]).
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
    intrinsic::WeakRef,
);

/// A runtime and context no guest code has touched, with the console, host prelude, policy
/// defaults and module loader already installed (they read per-run state through `output`,
/// `modules`, `host`, `rng` and `clock`, which each run resets).
///
/// Every function backed by a Rust closure is created here, before any run, and kept reachable
/// from the primordials (`run::pin`), so no run can make QuickJS finalize one. A run itself
/// creates no Rust-backed JS object and stores nothing in rquickjs's Rust-side runtime data:
/// that is what lets `snapshot` restore the heap bytes alone.
pub(crate) struct Fresh {
    ctx: Context,
    rt: Runtime,
    meter: Arc<Meter>,
    guard: Arc<Guard>,
    output: Arc<Mutex<Output>>,
    modules: modules::Modules,
    /// Policy denials thrown to the guest during the current run.
    denials: Arc<Mutex<palisade_core::policy::Denials>>,
    /// The current run's host, behind the guest's `hostcall` primitive.
    host: HostSlot,
    /// Behind `Math.random`: reseeded for every run (from the policy's seed in deterministic
    /// mode), because a restored heap would otherwise replay QuickJS's own generator.
    rng: Arc<Mutex<DeterministicRng>>,
    /// Behind deterministic mode's clock; `None` outside it.
    clock: Arc<Mutex<Option<DeterministicClock>>>,
}

/// Where the `hostcall` primitive finds the current run's host (empty between runs).
pub(crate) type HostSlot = Arc<Mutex<Option<Arc<dyn HostCalls>>>>;

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh").finish_non_exhaustive()
    }
}

impl Fresh {
    /// A runtime on glibc's malloc, used for one run and then dropped.
    fn new_malloc() -> Result<Fresh, ExecError> {
        let meter = Meter::new();
        Fresh::build(MeteredAllocator(meter.clone()), meter)
    }

    /// Builds the runtime and context over `alloc`, which meters into `meter`.
    fn build<A: Allocator + 'static>(alloc: A, meter: Arc<Meter>) -> Result<Fresh, ExecError> {
        let rt = Runtime::new_with_alloc(alloc)
            .map_err(|e| ExecError::internal(format!("cannot create a QuickJS runtime: {e}")))?;
        let guard = Arc::new(Guard::new(meter.clone()));
        let g = guard.clone();
        rt.set_interrupt_handler(Some(Box::new(move || g.should_stop())));
        // The GC runs by allocation volume; keep QuickJS's default threshold.
        // Every intrinsic `JS_NewContext` adds except the two the policy deletes from every
        // context before guest code runs (`policy::prepare`, QUICKJS_EXTRAS): `atob`/`btoa` with
        // their `DOMException`, and QuickJS's own `performance`. Building them only to delete
        // them was 3% of a fresh run.
        let ctx = Context::custom::<Intrinsics>(&rt)
            .map_err(|e| ExecError::internal(format!("cannot create a QuickJS context: {e}")))?;
        let output = Arc::new(Mutex::new(Output::default()));
        let denials = Arc::new(Mutex::new(palisade_core::policy::Denials::default()));
        let host: HostSlot = Arc::new(Mutex::new(None));
        let rng = Arc::new(Mutex::new(DeterministicRng::new(
            palisade_core::rng::unpredictable_u64(),
        )));
        let clock = Arc::new(Mutex::new(None));
        let modules = modules::Modules::new(denials.clone());
        rt.set_loader(modules.clone(), modules.clone());
        // Before any guest code: keep the pristine built-ins the console formatter uses, and
        // install the console.
        ctx.with(|ctx| {
            let p = run::capture_primordials(&ctx)?;
            let _ = ctx.store_userdata(p.clone());
            let _ = ctx.store_userdata(ffi::ModuleTable(modules.clone()));
            ffi::set_module_normalizer(&ctx);
            run::install_console(&ctx, &output, &guard)?;
            // The policy first: it deletes QuickJS's own extras (its `performance` among them),
            // which the host prelude may then define in Palisade's shape.
            policy::prepare(&ctx, &p, &denials)?;
            policy::install_clocks(&ctx, &p, &rng, &clock)?;
            run::install_host(&ctx, &p, &host, &guard)?;
            // Built now rather than on a run's first console call: a run must not store
            // anything in the runtime's Rust-side data (see `snapshot`).
            run::formatter(&ctx)?;
            Ok::<_, rquickjs::Error>(())
        })
        .map_err(|e| ExecError::internal(format!("cannot prepare a QuickJS context: {e}")))?;
        Ok(Fresh {
            ctx,
            rt,
            meter,
            guard,
            output,
            modules,
            denials,
            host,
            rng,
            clock,
        })
    }
}

/// A mutex that shrugs off poisoning: the data it guards (captured output) stays usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_source_compiles_until_its_second_run_keeps_it_and_every_run_gets_fresh_objects() {
        use palisade_core::{Engine, Request};
        let engine = crate::QuickJs::new();
        let host = std::sync::Arc::new(palisade_core::host::NoHost);
        let run = |req: &Request| engine.execute(req, host.clone());
        // Each run mutates a built-in and counts on seeing it pristine: from bytecode too.
        let script = Request::script(
            "const seen = Array.prototype.tainted; Array.prototype.tainted = 1; [seen, input * 2]",
        )
        .with_input(serde_json::json!(21));
        for _ in 0..3 {
            assert_eq!(run(&script).result, Ok(serde_json::json!([null, 42])));
        }
        // Run 1 compiled, run 2 compiled and kept, run 3 read the bytecode.
        assert_eq!(engine.code.stats(), (1, 1));
        let module = Request::module("import { k } from './k.js'; export default (x) => x * k;")
            .with_input(serde_json::json!(2))
            .with_module("./k.js", "export const k = 21;");
        for _ in 0..3 {
            assert_eq!(run(&module).result, Ok(serde_json::json!(42)));
        }
        assert_eq!(engine.code.stats(), (2, 2));
        // A syntax error is reported each time and never cached.
        let bad = Request::script("let x = ;");
        for _ in 0..2 {
            let e = run(&bad).to_record().error.unwrap();
            assert_eq!(e.kind, palisade_core::ErrorKind::SyntaxError);
            assert_eq!(e.line, Some(1));
        }
        assert_eq!(engine.code.stats(), (2, 2));
        // Errors thrown by cached code keep their positions.
        let throws = Request::script("1;\nnull.x");
        let first = run(&throws).to_record().error.unwrap();
        let again = run(&throws).to_record().error.unwrap();
        assert_eq!((first.line, first.column), (again.line, again.column));
        assert_eq!(first.line, Some(2));
    }
}
