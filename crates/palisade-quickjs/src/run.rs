//! One execution in a fresh runtime: globals, evaluation, awaiting, result conversion, and the
//! mapping of every way it can end onto the contract's outcome.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::ffi::Json;
use palisade_core::host::{HostCalls, HostError, HostValue};
use palisade_core::output::{Output, Stream};
use palisade_core::policy::HostGlobal;
use palisade_core::policy::Policy;
use palisade_core::primordials::{Capture, PRIMORDIALS};
use palisade_core::rng::{unpredictable_u64, DeterministicClock, DeterministicRng};
use palisade_core::{ExecError, GuestError, Limit, Metrics, Mode, Outcome, Request};
use rquickjs::function::Rest;
use rquickjs::promise::PromiseState;
use rquickjs::{Ctx, Function, Object, Promise, Value};

use crate::ffi::{self, Meter};
use crate::{lock, Fresh, Guard, HostSlot};
use palisade_core::code_cache::{CodeCache, Lookup};

/// Per-run host state the guest's functions reach.
struct RunState<'a> {
    request: &'a Request,
    guard: &'a Guard,
    meter: &'a Meter,
    denials: &'a Mutex<palisade_core::policy::Denials>,
    host: &'a dyn HostCalls,
    start: Instant,
    code: &'a CodeCache,
}

/// Runs `request` in `fresh`, which must be untouched by guest code; afterwards it is spent (to be
/// dropped, or restored by `crate::snapshot`).
pub(crate) fn run(
    fresh: &Fresh,
    request: &Request,
    host: Arc<dyn HostCalls>,
    start: Instant,
    code: &CodeCache,
) -> Outcome {
    let Fresh {
        rt: _,
        ctx,
        meter,
        guard,
        output,
        modules,
        denials,
        host: host_slot,
        rng,
        clock,
    } = fresh;
    let limits = &request.limits;
    meter.set_limit(usize::try_from(limits.memory).unwrap_or(usize::MAX));
    guard.set_deadline(start + limits.timeout);
    modules.set(&request.modules, request.file_name(), &request.policy);
    lock(denials).clear();
    let deterministic = request.policy.deterministic.as_ref();
    // Outside deterministic mode, a seed no run can predict from another's.
    *lock(rng) = DeterministicRng::new(deterministic.map_or_else(unpredictable_u64, |d| d.seed));
    *lock(clock) = deterministic.map(DeterministicClock::new);
    *lock(output) = Output::new(limits.output);
    *lock(host_slot) = Some(host.clone());

    let state = RunState {
        request,
        guard,
        meter,
        denials,
        host: host.as_ref(),
        start,
        code,
    };
    take_host_panic();
    let stack = crate::stack_bytes(limits);
    let result = ctx.with(|ctx| {
        // From the stack top `with` just took (see ffi::set_stack_limit: not rquickjs's setter).
        ffi::set_stack_limit(&ctx, stack);
        execute(&ctx, &state)
    });
    // A host function that panicked answered the guest with an error (see `shielded`); the
    // run as a whole is a host failure, whatever the guest made of that error.
    let result = if take_host_panic() {
        Err(ExecError::internal("a host function failed (it panicked)"))
    } else {
        result
    };
    *lock(host_slot) = None;
    let peak = meter.peak();
    let (stdout, stderr, truncated) = std::mem::take(&mut *lock(output)).into_parts();
    Outcome {
        result,
        stdout,
        stderr,
        truncated,
        metrics: Metrics {
            engine: crate::NAME.to_owned(),
            wall_us: 0,
            memory_bytes: peak as u64,
            fuel_used: None,
        },
    }
}

thread_local! {
    static HOST_PANICKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs the body of a Rust callback the guest can reach, turning a panic into a JS error.
///
/// Left to rquickjs, a panic is stored in its Rust-side runtime data and re-raised at the next
/// exception it handles: a guest that caught the error would leave it there, and with a
/// restored heap a later, unrelated run would raise it. Caught here, the run's outcome becomes
/// `internal` instead (`run`), and nothing is left behind.
pub(crate) fn shielded<'js, R>(
    ctx: &Ctx<'js>,
    f: impl FnOnce() -> rquickjs::Result<R>,
) -> rquickjs::Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            HOST_PANICKED.with(|p| p.set(true));
            Err(rquickjs::Exception::throw_type(
                ctx,
                "internal error in a host function",
            ))
        }
    }
}

/// Whether a callback panicked since the last call (and clears it).
pub(crate) fn take_host_panic() -> bool {
    HOST_PANICKED.with(|p| p.replace(false))
}

/// Stops the run, uncatchably, if it is past its deadline or over its memory limit. QuickJS asks
/// its interrupt handler only once every 10,000 polls (backward jumps and calls), so a loop of
/// calls that each take milliseconds went on far past the deadline: 5,000 console lines of 1 MiB
/// or 1,000 digests of 30 MB under a 300 ms timeout ran until the CLI's watchdog ended the
/// process at 2.3 s, and a library caller's thread was held for as long as the loop lasted
/// (until 2026-12-01). The console and the host door check at every call, as the other engines
/// stop at their deadline wherever they are (wasm's memory revocation, v8's watchdog). The run
/// is then classified as usual: the timeout (or memory) latch is set.
fn stop_if_due(ctx: &Ctx<'_>, guard: &Guard) -> rquickjs::Result<()> {
    if guard.should_stop() {
        return Err(ffi::throw_interrupted(ctx));
    }
    Ok(())
}

/// Keeps a Rust-backed function reachable for the runtime's whole life, from the primordials
/// (which guest code never sees), so that no run can make QuickJS finalize it: a restored heap
/// would otherwise still reference a closure freed during the run.
pub(crate) fn pin<'js>(ctx: &Ctx<'js>, f: &Function<'js>) -> rquickjs::Result<()> {
    let p = primordials(ctx)?;
    let pins: Value<'js> = p.get(PINS)?;
    let pins = match pins.into_array() {
        Some(a) => a,
        None => {
            let a = rquickjs::Array::new(ctx.clone())?;
            p.set(PINS, a.clone())?;
            a
        }
    };
    pins.set(pins.len(), f.clone())
}

const PINS: &str = "pins";

fn execute<'js>(ctx: &Ctx<'js>, st: &RunState<'_>) -> Result<serde_json::Value, ExecError> {
    let req = st.request;
    let file = req.file_name();
    let p = primordials(ctx).map_err(|_| failure(ctx, st))?;
    crate::policy::apply(ctx, &p, &req.policy).map_err(|_| failure(ctx, st))?;
    let input = set_input(ctx, st).map_err(|_| failure(ctx, st))?;
    // Compile once, run many (palisade_core::code_cache): a source's second run keeps its
    // bytecode, and later runs under the same limits read it. Not its first: writing bytecode
    // for a source that never comes back made one-off sources ~10% slower (a 4 KB script,
    // 2026-11-30). Only the keeping run copies the source, into the key it is kept under.
    let lookup = st.code.lookup(req);
    let value = match req.mode {
        Mode::Script => {
            let compiled = match lookup {
                Lookup::Read(bytes) => {
                    ffi::read_bytecode(ctx, &bytes).map_err(|_| compile_failure(ctx, st))?
                }
                then => {
                    let compiled = unmask_stack_overflow(ctx, st, || {
                        ffi::compile_script(ctx, &req.source, file)
                    })
                    .map_err(|_| compile_failure(ctx, st))?;
                    keep(ctx, st, then, || ffi::write_bytecode(ctx, &compiled));
                    compiled
                }
            };
            ffi::run_compiled(ctx, compiled).map_err(|_| failure(ctx, st))?
        }
        Mode::Module => {
            let declared = match lookup {
                // Reading a module resolves its imports from this run's modules, as compiling
                // does (the cache leaves out the one case where the two differ: an import cycle
                // back into the module itself). A broken import fails the same way either way:
                // a syntax error in it is `syntax_error`.
                Lookup::Read(bytes) => {
                    ffi::load_module(ctx, &bytes).map_err(|_| compile_failure(ctx, st))?
                }
                then => {
                    let declared = unmask_stack_overflow(ctx, st, || {
                        ffi::declare_module(ctx, file, req.source.as_bytes())
                    })
                    .map_err(|_| compile_failure(ctx, st))?;
                    keep(ctx, st, then, || {
                        declared.write(rquickjs::module::WriteOptions::default())
                    });
                    declared
                }
            };
            let (module, done) = declared.eval().map_err(|_| failure(ctx, st))?;
            settle(ctx, st, done.into_value())?;
            let ns = module.namespace().map_err(|_| failure(ctx, st))?;
            let default: Value<'js> = ns.get("default").map_err(|_| failure(ctx, st))?;
            if default.is_function() {
                ffi::call(ctx, &default, &[input]).map_err(|_| failure(ctx, st))?
            } else {
                default
            }
        }
    };
    let value = settle(ctx, st, value)?;
    to_json(ctx, st, value)
}

/// After compiling: when the lookup said so ([`Lookup::Keep`]), writes the bytecode and puts it
/// in the code cache. The write is outside the run's memory accounting
/// ([`ffi::Meter::exempt`]): a run that keeps bytecode ends as one that compiles without
/// keeping. A failed write leaves no pending exception behind; the run goes on without caching.
fn keep(
    ctx: &Ctx<'_>,
    st: &RunState<'_>,
    lookup: Lookup,
    write: impl FnOnce() -> rquickjs::Result<Vec<u8>>,
) {
    let Lookup::Keep(key) = lookup else {
        return;
    };
    match st.meter.exempt(write) {
        Ok(bytes) => st.code.put(key, bytes),
        Err(_) => drop(ctx.catch()),
    }
}

fn set_input<'js>(ctx: &Ctx<'js>, st: &RunState<'_>) -> rquickjs::Result<Value<'js>> {
    let json = serde_json::to_string(&st.request.input).unwrap_or_else(|_| "null".into());
    let input = ctx.json_parse(json)?;
    if st.request.policy.allows_global(HostGlobal::Input) {
        ctx.globals().set("input", input.clone())?;
    }
    Ok(input)
}

/// Installs `console`, writing into `output` (which each run resets with its own cap).
pub(crate) fn install_console<'js>(
    ctx: &Ctx<'js>,
    output: &Arc<Mutex<Output>>,
    guard: &Arc<Guard>,
) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for method in ["log", "info", "debug", "warn", "error"] {
        let stream = Stream::for_method(method).unwrap_or(Stream::Stdout);
        let output = output.clone();
        let guard = guard.clone();
        let f = Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<()> {
                shielded(&ctx, || {
                    stop_if_due(&ctx, &guard)?;
                    // Past the cap the line is dropped before it is formatted, as on every
                    // engine: the formatter can run guest code (a proxy's traps) and would cost
                    // a microsecond or more per call for nothing.
                    if lock(&output).truncated() {
                        return Ok(());
                    }
                    let line = format_args(&ctx, args.0)?;
                    lock(&output).write_line(stream, &line);
                    Ok(())
                })
            },
        )?
        .with_name(method)?;
        pin(ctx, &f)?;
        console.set(method, f)?;
    }
    // Not enumerable, as on the web and in V8 (the `v8` engine's global object).
    ctx.globals().prop(
        "console",
        rquickjs::object::Property::from(console)
            .writable()
            .configurable(),
    )?;
    Ok(())
}

/// Installs the host prelude ([`palisade_core::HOST_JS`], with [`palisade_core::HOST_FETCH_JS`]
/// read on demand) over the `hostcall` primitive, which
/// reaches the current run's host through `slot`. The default policy's host globals are
/// defined here, once per runtime; [`crate::policy::apply`] deletes those a run's policy does
/// not allow and adds those it allows beyond the default.
pub(crate) fn install_host<'js>(
    ctx: &Ctx<'js>,
    primordials: &Object<'js>,
    slot: &HostSlot,
    guard: &Arc<Guard>,
) -> rquickjs::Result<()> {
    let slot = slot.clone();
    let guard = guard.clone();
    let hostcall = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              op: Value<'js>,
              arg: Value<'js>,
              bytes: rquickjs::function::Opt<Value<'js>>|
              -> rquickjs::Result<Value<'js>> {
            shielded(&ctx, || {
                stop_if_due(&ctx, &guard)?;
                // Lone surrogates in an argument become U+FFFD, as on every engine.
                let (op, arg) = (js_string(&op), js_string(&arg));
                let host = lock(&slot).clone();
                let Some(host) = host else {
                    return Err(throw_host_error(
                        &ctx,
                        &HostError::type_error("host calls are unavailable outside a run"),
                    ));
                };
                let buffer = match bytes.0 {
                    Some(v) if v.is_object() => {
                        Some(rquickjs::ArrayBuffer::from_value(v).ok_or_else(|| {
                            throw_host_error(
                                &ctx,
                                &HostError::type_error("hostcall: bytes must be an ArrayBuffer"),
                            )
                        })?)
                    }
                    _ => None,
                };
                let data: Option<Vec<u8>> = buffer.as_ref().and_then(ffi::array_buffer_copy);
                let answer = host.call(&op, &arg, data.as_deref());
                // A call can itself take long (a digest of a large buffer, a fetch).
                stop_if_due(&ctx, &guard)?;
                match answer {
                    Ok(HostValue::Str(s)) => {
                        Ok(rquickjs::String::from_str(ctx.clone(), &s)?.into_value())
                    }
                    // Copied into the QuickJS heap: a buffer backed by Rust memory would outlive a
                    // restored heap (see `crate::snapshot`).
                    Ok(HostValue::Bytes(b)) => {
                        Ok(rquickjs::ArrayBuffer::new_copy(ctx.clone(), b)?.into_value())
                    }
                    Ok(HostValue::Undefined) => Ok(Value::new_undefined(ctx.clone())),
                    Err(e) => Err(throw_host_error(&ctx, &e)),
                }
            })
        },
    )?
    .with_name("hostcall")?;
    pin(ctx, &hostcall)?;
    // The same name and strictness `ctx.eval` gives, from bytecode compiled at build time.
    let factory = ffi::eval_trusted(ctx, &crate::trusted::HOST)?;
    let factory: Function<'js> = Function::from_value(factory)?;
    // The fetch part is read only when a run first reads `fetch`, `Headers` or `Response`
    // (half the prelude's bytecode, and most runs' policies do not allow fetch).
    let load_fetch = Function::new(ctx.clone(), |ctx: Ctx<'js>| {
        shielded(&ctx, || {
            ffi::eval_trusted(&ctx, &crate::trusted::HOST_FETCH)
        })
    })?;
    pin(ctx, &load_fetch)?;
    let api: Object<'js> = factory.call((primordials.clone(), hostcall, load_fetch))?;
    // Only what the default policy has is built now (the prelude builds each API on its first
    // read); a run whose policy allows more adds the rest (`define_host_global`).
    for name in Policy::default().host_globals() {
        define_host_global(ctx, &api, name)?;
    }
    primordials.set(HOST_API, api)?;
    Ok(())
}

/// Where the host prelude's API object is kept, beside the primordials (never seen by guests).
const HOST_API: &str = "hostApi";

/// Defines the host prelude's global `name` (building it if it was not yet).
fn define_host_global<'js>(ctx: &Ctx<'js>, api: &Object<'js>, name: &str) -> rquickjs::Result<()> {
    let v: Value<'js> = api.get(name)?;
    if !v.is_undefined() {
        ctx.globals().prop(
            name,
            rquickjs::object::Property::from(v)
                .writable()
                .configurable(),
        )?;
    }
    Ok(())
}

/// Adds the host prelude's globals that `keep` lists and the runtime does not have yet (those
/// beyond the default policy). Runs before any guest code, so the global object is pristine.
pub(crate) fn add_host_globals<'js>(
    ctx: &Ctx<'js>,
    primordials: &Object<'js>,
    keep: &[&str],
) -> rquickjs::Result<()> {
    let g = ctx.globals();
    let mut missing = Vec::new();
    for name in keep {
        if !g.contains_key(*name)? {
            missing.push(*name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let api: Object<'js> = primordials.get(HOST_API)?;
    for name in missing {
        define_host_global(ctx, &api, name)?;
    }
    Ok(())
}

/// Throws an `Error` with the host error's name and message.
fn throw_host_error(ctx: &Ctx<'_>, e: &HostError) -> rquickjs::Error {
    match rquickjs::Exception::from_message(ctx.clone(), &e.message) {
        Ok(exc) => {
            let _ = exc.as_object().set("name", e.name.as_str());
            ctx.throw(exc.into_value())
        }
        Err(err) => err,
    }
}

/// Formats the arguments of one console call into one line, with the shared formatter.
fn format_args<'js>(ctx: &Ctx<'js>, args: Vec<Value<'js>>) -> rquickjs::Result<String> {
    let specifiers = args.len() > 1 && args[0].is_string() && js_string(&args[0]).contains('%');
    if !specifiers && args.iter().all(Value::is_string) {
        let mut line = String::new();
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&js_string(a));
        }
        return Ok(line);
    }
    let formatter = formatter(ctx)?;
    let array = rquickjs::Array::new(ctx.clone())?;
    for (i, a) in args.into_iter().enumerate() {
        array.set(i, a)?;
    }
    // Not `formatter.call`: guest code (getters) runs inside, at the guest's depth (ffi::call).
    let line = ffi::call(ctx, &formatter.into_value(), &[array.into_value()])?;
    Ok(js_string(&line))
}

/// The shared console formatter over the primordials captured when the context was created:
/// evaluated once, while the runtime is built (`Fresh::build`), and looked up afterwards.
pub(crate) fn formatter<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    if let Some(f) = ctx.userdata::<Function<'js>>() {
        return Ok(f.clone());
    }
    let primordials = primordials(ctx)?;
    // Strict, and a backtrace barrier, from bytecode compiled at build time: parsing 15 KB on
    // a run's first console call cost more than the rest of a small run.
    let factory = ffi::eval_trusted(ctx, &crate::trusted::CONSOLE)?;
    let factory: Function<'js> = Function::from_value(factory)?;
    let f: Function<'js> = factory.call((primordials,))?;
    // Called once, while the runtime is built (`Fresh::build`): nothing else stores a function.
    let _ = ctx.store_userdata(f.clone());
    Ok(f)
}

/// The primordials captured when the runtime was built (never re-captured: a capture now would
/// see the guest's replacements).
pub(crate) fn primordials<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    ctx.userdata::<Object<'js>>()
        .map(|p| p.clone())
        .ok_or(rquickjs::Error::Unknown)
}

/// Captures [`PRIMORDIALS`] from the global object into one plain object. Called before any
/// guest code runs.
pub(crate) fn capture_primordials<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let out = Object::new(ctx.clone())?;
    let globals = ctx.globals();
    let object: Object<'js> = globals.get("Object")?;
    let descriptor: Function<'js> = object.get("getOwnPropertyDescriptor")?;
    // Paths share prefixes (`Object.prototype.*`): look each holder up once.
    let mut holders: Vec<(&str, Object<'js>)> = Vec::new();
    for &(key, path, how) in PRIMORDIALS {
        let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
        let holder = if parent.is_empty() {
            globals.clone()
        } else if let Some((_, h)) = holders.iter().find(|(p, _)| *p == parent) {
            h.clone()
        } else {
            let mut h = globals.clone();
            for seg in parent.split('.') {
                h = if seg == "__proto__" {
                    h.get_prototype()
                        .ok_or_else(|| rquickjs::Error::new_from_js("null", "prototype"))?
                } else {
                    h.get(seg)?
                };
            }
            holders.push((parent, h.clone()));
            h
        };
        let value: Value<'js> = match how {
            Capture::Value => holder.get(last)?,
            Capture::Getter => {
                let desc: Object<'js> = descriptor.call((holder, last))?;
                desc.get("get")?
            }
        };
        out.set(key, value)?;
    }
    Ok(out)
}

/// A JS string (or any value's ToString) as Rust text; lone surrogates become U+FFFD. A value
/// whose ToString throws (a Symbol, a hostile `toString`) gives "", the exception cleared.
fn js_string(v: &Value<'_>) -> String {
    ffi::to_text(v.ctx(), v).unwrap_or_else(|| {
        let _ = v.ctx().catch();
        String::new()
    })
}

/// Awaits a thenable and drains the microtask queue, all under the deadline.
fn settle<'js>(
    ctx: &Ctx<'js>,
    st: &RunState<'_>,
    value: Value<'js>,
) -> Result<Value<'js>, ExecError> {
    let promise: Option<Promise<'js>> = if let Some(p) = value.as_promise() {
        Some(p.clone())
    } else if let Some(obj) = value.as_object() {
        let then: Value<'js> = obj.get("then").map_err(|_| failure(ctx, st))?;
        if then.is_function() {
            // A foreign thenable: adopt it the way `await` would, through the intrinsic
            // promise capability (never the guest's `Promise` global).
            let (p, resolve, _reject) = Promise::new(ctx).map_err(|_| failure(ctx, st))?;
            ffi::call(ctx, &resolve.into_value(), std::slice::from_ref(&value))
                .map_err(|_| failure(ctx, st))?;
            Some(p)
        } else {
            None
        }
    } else {
        None
    };
    // Drain every microtask, so work queued by the guest finishes (or hits a limit).
    loop {
        if st.guard.should_stop() {
            return Err(failure(ctx, st));
        }
        if !ctx.execute_pending_job() {
            break;
        }
    }
    if st.guard.should_stop() {
        return Err(failure(ctx, st));
    }
    let Some(promise) = promise else {
        return Ok(value);
    };
    match promise.state() {
        PromiseState::Resolved => promise.result::<Value<'js>>().map_or_else(
            || Err(ExecError::internal("settled promise has no result")),
            |r| r.map_err(|_| failure(ctx, st)),
        ),
        PromiseState::Rejected => {
            let _ = promise.result::<Value<'js>>();
            Err(failure(ctx, st))
        }
        PromiseState::Pending => Err(ExecError::never_settles(
            st.request.limits.timeout,
            st.start.elapsed(),
        )),
    }
}

/// Converts the result as `JSON.stringify` would (with the intrinsic, not the guest's global),
/// keeping no more text than the result limit allows (`ffi::json_stringify_bounded`).
fn to_json<'js>(
    ctx: &Ctx<'js>,
    st: &RunState<'_>,
    value: Value<'js>,
) -> Result<serde_json::Value, ExecError> {
    let limit = st.request.limits.result;
    let json = match crate::ffi::json_stringify_bounded(ctx, &value, limit) {
        Ok(Json::Text(s)) => s.to_string().map_err(|e| ExecError::NotSerializable {
            message: format!("result is not valid UTF-8: {e}"),
        })?,
        Ok(Json::Undefined) => return Ok(serde_json::Value::Null),
        Ok(Json::Over { total, depth }) => {
            return Err(palisade_core::result_over_limit(total, depth, limit))
        }
        Err(_) => {
            return Err(match uncaught(ctx, st) {
                Ok(guest) => palisade_core::classify_conversion_failure(guest, |m| denied(st, m)),
                Err(limit) => limit,
            });
        }
    };
    palisade_core::result_from_json(&json, st.request.limits.result)
}

/// How much more stack [`unmask_stack_overflow`] compiles with the second time. The engine
/// grows the native stack for it (`QuickJs::execute`).
pub(crate) const RECOMPILE_EXTRA_STACK: usize = 256 << 10;

/// Runs `compile`, the compile of the run's source (a module's with every module it imports
/// statically: QuickJS loads those while it compiles), which leaves its error pending, and sees
/// to it that running out of stack while compiling ends as the stack-overflow error.
///
/// QuickJS's parser can report running out of stack as a `SyntaxError`: a lookahead that ran
/// out drops the stack-overflow error it threw, and the parse goes on to fail somewhere else,
/// with "missing formal parameter", "invalid property name" and the like (bellard/quickjs#118).
/// 20,000 nested functions were a `syntax_error` here and on `wasm`, and `stack_overflow` on
/// `v8`. So a compile that fails with a `SyntaxError` runs once more with 256 KiB more stack,
/// and twice the memory outside the run's accounting. A real syntax error fails again with the
/// same message at the same place. One the stack made fails somewhere else, or not at all, and
/// is replaced by the stack-overflow error. Only a failed compile pays for the second one, and
/// not one that already ran past the deadline.
///
/// Only the run's own compile, before any guest code has run, is judged: no guest code (an
/// `Error.prepareStackTrace`, a getter) can run while the second compile is outside the
/// accounting, and a graph of modules is compiled twice at most, not once per level. Source
/// compiled at run time (a dynamic `import()`, and `eval` where the policy allows it) keeps
/// the parser's error. (The `wasm` guest tells the two apart without compiling again: its glue
/// sees every stack check.)
fn unmask_stack_overflow<T>(
    ctx: &Ctx<'_>,
    st: &RunState<'_>,
    compile: impl Fn() -> rquickjs::Result<T>,
) -> rquickjs::Result<T> {
    let first = compile();
    if !matches!(first, Err(rquickjs::Error::Exception))
        || st.meter.hit()
        || st.guard.deadline_passed()
    {
        return first;
    }
    let exc = ctx.catch();
    let Some(site) = syntax_error_site(ctx, &exc) else {
        return Err(ctx.throw(exc));
    };
    // The regexp compiler (a literal is compiled with the source) says so itself, with no
    // position to compare (libregexp.c's `re_parse_error(s, "stack overflow")`).
    let real = site.0 != REGEXP_STACK_OVERFLOW && {
        let limits = &st.request.limits;
        let stack = crate::stack_bytes(limits);
        let memory = usize::try_from(limits.memory).unwrap_or(usize::MAX);
        // Only the compile runs aside; the error it leaves is read afterwards, under the run's
        // accounting.
        let again = st.meter.aside(memory.saturating_mul(2), || {
            ffi::with_stack_limit(
                ctx,
                stack.saturating_add(RECOMPILE_EXTRA_STACK),
                stack,
                || compile().err().map(|_| ctx.catch()),
            )
        });
        again.is_some_and(|e| syntax_error_site(ctx, &e).as_ref() == Some(&site))
    };
    if real {
        Err(ctx.throw(exc))
    } else {
        Err(rquickjs::Exception::throw_range(
            ctx,
            palisade_core::STACK_OVERFLOW_MESSAGE,
        ))
    }
}

/// The message of the `SyntaxError` QuickJS's regexp compiler throws when it runs out of stack.
const REGEXP_STACK_OVERFLOW: &str = "stack overflow";

/// The message and stack of a `SyntaxError`, which say what failed and where; `None` for any
/// other value.
fn syntax_error_site<'js>(ctx: &Ctx<'js>, exc: &Value<'js>) -> Option<(String, String)> {
    let obj = exc.as_object().filter(|_| exc.is_error())?;
    let get = |key: &str| string_property(ctx, obj, key);
    (get("name")? == "SyntaxError").then_some(())?;
    Some((get("message")?, get("stack").unwrap_or_default()))
}

/// A string property of `obj`; `None` if it is not a string or reading it throws (a hostile
/// getter), with the exception cleared.
fn string_property<'js>(ctx: &Ctx<'js>, obj: &Object<'js>, key: &str) -> Option<String> {
    match obj.get::<_, Value<'js>>(key) {
        Ok(v) if v.is_string() => Some(js_string(&v)),
        Ok(_) => None,
        Err(_) => {
            let _ = ctx.catch();
            None
        }
    }
}

/// Turns a failed compile into `syntax_error` (or a limit, if one was hit while compiling).
fn compile_failure(ctx: &Ctx<'_>, st: &RunState<'_>) -> ExecError {
    match failure(ctx, st) {
        ExecError::Exception(g) if g.name.as_deref() == Some("SyntaxError") => ExecError::Syntax(g),
        other => other,
    }
}

/// Classifies the pending exception: a hit limit wins over whatever was thrown.
fn failure(ctx: &Ctx<'_>, st: &RunState<'_>) -> ExecError {
    match uncaught(ctx, st) {
        Ok(guest) => {
            let stack = st.request.limits.stack.unwrap_or(crate::DEFAULT_STACK);
            palisade_core::classify_uncaught(guest, stack, |m| denied(st, m))
        }
        Err(limit) => limit,
    }
}

/// Whether `message` is a policy denial the host threw in this run.
fn denied(st: &RunState<'_>, message: &str) -> bool {
    lock(st.denials).contains(message) || st.host.denied(message)
}

/// The pending exception, taken, or the limit that ended the run (which wins).
fn uncaught(ctx: &Ctx<'_>, st: &RunState<'_>) -> Result<GuestError, ExecError> {
    let exc = ctx.catch();
    if let Some(e) = limit_hit(st) {
        return Err(e);
    }
    let guest = guest_error(ctx, &exc, st.request);
    // Reading the error's properties runs guest code (getters), which can hit a limit too.
    match limit_hit(st) {
        Some(e) => Err(e),
        None => Ok(guest),
    }
}

/// The limit that ended the run, if one did.
///
/// Both may have been hit: QuickJS polls nothing while it parses or runs some builtins, so a
/// long one can pass the deadline and then run out of memory. The one hit first wins, as on the
/// other engines, which stop at the deadline (wasm's memory revocation, v8's watch): a parse of
/// 20 MB under a 200 ms timeout was `memory_limit` here at 530 ms and `timeout` there. A run that failed
/// after the deadline with no poll to see it (a failed compile) is a timeout too.
fn limit_hit(st: &RunState<'_>) -> Option<ExecError> {
    let limits = &st.request.limits;
    let timed_out = st.guard.deadline_passed();
    if st.meter.hit() && !(timed_out && st.meter.hit_at() > st.guard.deadline()) {
        return Some(ExecError::limit(
            Limit::Memory,
            limits.memory,
            Some(st.meter.observed() as u64),
            format!(
                "the memory limit of {} was exceeded",
                palisade_core::units::format_size(limits.memory)
            ),
        ));
    }
    if timed_out {
        return Some(ExecError::timeout(limits.timeout, st.start.elapsed()));
    }
    None
}

/// Reads name, message, stack and position from a thrown value, tolerating hostile getters.
fn guest_error<'js>(ctx: &Ctx<'js>, exc: &Value<'js>, request: &Request) -> GuestError {
    let get = |obj: &Object<'js>, key: &str| string_property(ctx, obj, key);
    if let Some(obj) = exc.as_object() {
        let is_error = exc.is_error();
        let name = get(obj, "name");
        let message = get(obj, "message");
        if is_error || (name.is_some() && message.is_some()) {
            // Positions from the stack the outcome shows, as on every engine.
            let stack = get(obj, "stack");
            return palisade_core::quickjs_guest_error(
                name,
                message.unwrap_or_default(),
                stack.as_deref(),
                request,
            );
        }
    }
    let message = match format_args(ctx, vec![exc.clone()]) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctx.catch();
            String::from("<unprintable thrown value>")
        }
    };
    GuestError {
        name: None,
        message,
        stack: None,
        line: None,
        column: None,
    }
}
