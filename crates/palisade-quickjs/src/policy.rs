//! Enforcing a [`Policy`] in a QuickJS context.
//!
//! A fresh runtime is prepared with the *default* policy already applied (the dangerous
//! built-ins replaced by functions that throw a policy error), keeping the originals aside; a run
//! whose policy allows more restores them. So the default costs nothing per run.

use std::sync::{Arc, Mutex};

use palisade_core::policy::{
    code_generation_denied, shared_memory_denied, wasm_denied, Policy, ATOMICS_METHODS,
    QUICKJS_EXTRAS, WASM_MEMBERS,
};
use palisade_core::rng::{DeterministicClock, DeterministicRng};
use rquickjs::object::Property;
use rquickjs::{Ctx, Function, Object, Value};

use crate::lock;

/// A function that records the denial and throws `kind` (a primordial error constructor key)
/// with the policy message.
///
/// The closure must not capture JS values: the garbage collector cannot see references held by
/// Rust closures, so a captured value on a cycle would never be freed (and QuickJS asserts on
/// leaks when the runtime is freed). The constructor is looked up when the function is called.
fn thrower<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    kind: &'static str,
    message: String,
    denials: &Arc<Mutex<palisade_core::policy::Denials>>,
) -> rquickjs::Result<Function<'js>> {
    let denials = denials.clone();
    let f = Function::new(ctx.clone(), move |ctx: Ctx<'js>| -> rquickjs::Result<()> {
        crate::run::shielded(&ctx, || {
            lock(&denials).record(&message);
            let ctor: rquickjs::Constructor<'js> = crate::run::primordials(&ctx)?.get(kind)?;
            // Not `ctor.construct`: a guest calls this at any depth (ffi::construct).
            let message = rquickjs::String::from_str(ctx.clone(), &message)?.into_value();
            let err = crate::ffi::construct(&ctx, &ctor.into_value(), &[message])?;
            Err(ctx.throw(err))
        })
    })?
    .with_name(name)?
    // `new Function(...)` and `new SharedArrayBuffer(...)` must throw the policy error too.
    .with_constructor(true);
    crate::run::pin(ctx, &f)?;
    Ok(f)
}

/// Applies the default policy to a fresh context, keeping the originals for [`apply`].
pub(crate) fn prepare<'js>(
    ctx: &Ctx<'js>,
    primordials: &Object<'js>,
    denials: &Arc<Mutex<palisade_core::policy::Denials>>,
) -> rquickjs::Result<()> {
    let g = ctx.globals();
    for extra in QUICKJS_EXTRAS {
        g.remove(*extra)?;
    }
    // QuickJS-NG tags its global object `[object global]`, as Node does; V8's has no tag, and
    // neither does ECMAScript's.
    g.remove(rquickjs::atom::PredefinedAtom::SymbolToStringTag)?;
    let originals = Object::new(ctx.clone())?;
    // The constructors' prototypes that carry a `constructor` back-reference.
    // From bytecode compiled at build time: parsing this on every fresh runtime was 3% of a
    // `1+1` run.
    let protos = crate::ffi::eval_trusted(ctx, &crate::trusted::PROTOS)?;
    let protos = rquickjs::Array::from_value(protos)?;
    let function: Function<'js> = g.get("Function")?;
    let function_proto: Object<'js> = function.get("prototype")?;
    originals.set("eval", g.get::<_, Value<'js>>("eval")?)?;
    originals.set("Function", function.clone())?;
    originals.set("protos", protos.clone())?;
    let ctors = rquickjs::Array::new(ctx.clone())?;
    for i in 0..3 {
        let proto: Object<'js> = protos.get(i)?;
        ctors.set(i, proto.get::<_, Value<'js>>("constructor")?)?;
    }
    originals.set("ctors", ctors)?;
    originals.set(
        "SharedArrayBuffer",
        g.get::<_, Value<'js>>("SharedArrayBuffer")?,
    )?;
    originals.set("Atomics", g.get::<_, Value<'js>>("Atomics")?)?;

    // eval and the Function constructors.
    let code = code_generation_denied();
    g.set(
        "eval",
        thrower(ctx, "eval", "EvalError", code.clone(), denials)?,
    )?;
    let fake = thrower(ctx, "Function", "EvalError", code.clone(), denials)?;
    // `Function.prototype` as the real constructor has it: neither writable, enumerable nor
    // configurable.
    fake.prop("prototype", Property::from(function_proto.clone()))?;
    function_proto.set("constructor", fake.clone())?;
    g.set("Function", fake)?;
    let names = [
        "AsyncFunction",
        "GeneratorFunction",
        "AsyncGeneratorFunction",
    ];
    for (i, name) in names.into_iter().enumerate() {
        let proto: Object<'js> = protos.get(i)?;
        let fake = thrower(ctx, name, "EvalError", code.clone(), denials)?;
        // Read-only but configurable, as the spec defines these `constructor` properties.
        proto.prop("constructor", Property::from(fake).configurable())?;
    }

    // SharedArrayBuffer and Atomics.
    let shared = shared_memory_denied();
    g.set(
        "SharedArrayBuffer",
        thrower(
            ctx,
            "SharedArrayBuffer",
            "TypeError",
            shared.clone(),
            denials,
        )?,
    )?;
    let atomics = Object::new(ctx.clone())?;
    for m in ATOMICS_METHODS {
        atomics.set(*m, thrower(ctx, m, "TypeError", shared.clone(), denials)?)?;
    }
    g.set("Atomics", atomics)?;

    // WebAssembly: QuickJS has none; the stub keeps the global object the same on every engine.
    let wasm_denied = wasm_denied();
    let wasm = Object::new(ctx.clone())?;
    for m in WASM_MEMBERS {
        wasm.set(
            *m,
            thrower(ctx, m, "TypeError", wasm_denied.clone(), denials)?,
        )?;
    }
    // Not enumerable, as V8's own `WebAssembly` (the `v8` engine's global object).
    g.prop(
        "WebAssembly",
        Property::from(wasm).writable().configurable(),
    )?;

    // Kept beside the primordials, which guest code never sees.
    primordials.set(ORIGINALS, originals)?;
    Ok(())
}

const ORIGINALS: &str = "originals";

/// Applies a run's policy on top of [`prepare`]'s default.
pub(crate) fn apply<'js>(
    ctx: &Ctx<'js>,
    primordials: &Object<'js>,
    policy: &Policy,
) -> rquickjs::Result<()> {
    if policy.has_default_globals()
        && policy.deterministic.is_none()
        && !(policy.allow_eval || policy.allow_shared_memory)
    {
        // The runtime was prepared with the default policy: nothing to change.
        return Ok(());
    }
    let g = ctx.globals();
    for name in policy.removed_globals() {
        g.remove(name)?;
    }
    crate::run::add_host_globals(ctx, primordials, &policy.host_globals())?;
    if policy.deterministic.is_some() {
        deterministic(ctx, primordials)?;
    }
    if !(policy.allow_eval || policy.allow_shared_memory) {
        return Ok(());
    }
    let originals: Object<'js> = primordials.get(ORIGINALS)?;
    if policy.allow_eval {
        g.set("eval", originals.get::<_, Value<'js>>("eval")?)?;
        let function: Function<'js> = originals.get("Function")?;
        let proto: Object<'js> = function.get("prototype")?;
        proto.set("constructor", function.clone())?;
        g.set("Function", function)?;
        let protos: rquickjs::Array<'js> = originals.get("protos")?;
        let ctors: rquickjs::Array<'js> = originals.get("ctors")?;
        for i in 0..3 {
            let p: Object<'js> = protos.get(i)?;
            let ctor: Value<'js> = ctors.get(i)?;
            p.prop("constructor", Property::from(ctor).configurable())?;
        }
    }
    if policy.allow_shared_memory {
        g.set(
            "SharedArrayBuffer",
            originals.get::<_, Value<'js>>("SharedArrayBuffer")?,
        )?;
        g.set("Atomics", originals.get::<_, Value<'js>>("Atomics")?)?;
    }
    Ok(())
}

/// Where the deterministic clock's `now` is kept, beside the primordials.
const DETERMINISTIC_NOW: &str = "deterministicNow";

/// Replaces `Math.random` with one drawing from `rng` (which every run reseeds: a restored heap
/// must not replay QuickJS's own generator, whose state lives in it), and builds deterministic
/// mode's `now` over `clock`, installed by [`apply`] only in that mode. Both are made once per
/// runtime, so a run creates no Rust-backed function.
pub(crate) fn install_clocks<'js>(
    ctx: &Ctx<'js>,
    primordials: &Object<'js>,
    rng: &Arc<Mutex<DeterministicRng>>,
    clock: &Arc<Mutex<Option<DeterministicClock>>>,
) -> rquickjs::Result<()> {
    let rng = rng.clone();
    let random = Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
        crate::run::shielded(&ctx, || Ok(lock(&rng).next_f64()))
    })?
    .with_name("random")?;
    crate::run::pin(ctx, &random)?;
    let math: Object<'js> = ctx.globals().get("Math")?;
    math.set("random", random)?;
    let clock = clock.clone();
    // Milliseconds as a double, as Date.now returns them.
    let now = Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
        crate::run::shielded(&ctx, || {
            Ok(lock(&clock)
                .as_mut()
                .map_or(f64::NAN, |c| c.now_ms() as f64))
        })
    })?
    .with_name("now")?;
    crate::run::pin(ctx, &now)?;
    primordials.set(DETERMINISTIC_NOW, now)
}

/// Deterministic mode: the deterministic clock behind `Date` (the run has already seeded
/// `Math.random` and the clock from the policy).
fn deterministic<'js>(ctx: &Ctx<'js>, primordials: &Object<'js>) -> rquickjs::Result<()> {
    let now: Function<'js> = primordials.get(DETERMINISTIC_NOW)?;
    let install = crate::ffi::eval_trusted(ctx, &crate::trusted::DETERMINISTIC)?;
    let install = Function::from_value(install)?;
    install.call::<_, ()>((now,))
}
