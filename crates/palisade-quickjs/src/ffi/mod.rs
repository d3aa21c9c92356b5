//! Every `unsafe` line of the QuickJS engine: the metered allocator QuickJS allocates through,
//! and the one raw runtime setting rquickjs does not wrap.
//!
//! The allocator enforces the memory limit itself (QuickJS's own limit is left off) so that the
//! host learns when the limit was hit even if the guest catches the resulting error: the
//! [`Meter`] latches, and the interrupt handler then stops the run for good.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use std::ffi::CString;

use rquickjs::allocator::Allocator;
use rquickjs::{qjs, Ctx, Value};

pub(crate) mod arena;

/// Headroom past the limit, granted only after the limit was hit, so QuickJS can still allocate
/// the uncatchable error that unwinds the run.
pub(crate) const GRACE: usize = 256 << 10;

/// Past the run's deadline, an allocation of at least this many bytes (or a growth by as many)
/// is refused. QuickJS polls its interrupt handler only every 10,000 backward jumps and calls,
/// and never inside a built-in, so a loop of built-ins that each take milliseconds
/// (`'x'.repeat(3e6)`, `join`, `sort`, `JSON.stringify` of large values) went on for seconds past
/// its deadline: 50 s under a 300 ms timeout (`tests/hostile_time.rs`). Such built-ins build
/// something large, so the refused block makes the one running fail with QuickJS's
/// out-of-memory error (most at once; some, as `JSON.stringify`, after walking the rest of
/// their input), and a run that catches that loops quickly to its next poll, which stops it
/// uncatchably. Small blocks are never refused for the deadline: QuickJS needs them to
/// make the errors that unwind the run. Refused for lateness, a block latches nothing: the run
/// is classified by its deadline, as every run that ends past it is.
const LATE_BLOCK: usize = 64 << 10;

/// Shared memory accounting for one runtime.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    used: AtomicUsize,
    peak: AtomicUsize,
    limit: AtomicUsize,
    hit: AtomicBool,
    /// Bytes in use plus the size of the first allocation that did not fit.
    observed: AtomicUsize,
    /// When the limit was first hit (`crate::nanos_since_epoch`), to tell whether the deadline
    /// came first.
    hit_at: AtomicU64,
    /// The run's deadline (`crate::nanos_since_epoch`; `u64::MAX` for none): see [`LATE_BLOCK`].
    deadline: AtomicU64,
}

impl Meter {
    pub(crate) fn new() -> Arc<Meter> {
        Arc::new(Meter {
            limit: AtomicUsize::new(usize::MAX),
            deadline: AtomicU64::new(u64::MAX),
            ..Meter::default()
        })
    }

    /// Sets the run's deadline (`crate::nanos_since_epoch`; `u64::MAX` for none).
    pub(crate) fn set_deadline(&self, at: u64) {
        self.deadline.store(at, Ordering::Relaxed);
    }

    /// The run's deadline (`crate::nanos_since_epoch`; `u64::MAX` for none).
    pub(crate) fn deadline(&self) -> u64 {
        self.deadline.load(Ordering::Relaxed)
    }

    /// Whether the run's deadline has passed (reads the clock).
    pub(crate) fn past_deadline(&self) -> bool {
        crate::nanos_since_epoch(std::time::Instant::now()) >= self.deadline()
    }

    /// Whether `extra` bytes are a block refused for the deadline ([`LATE_BLOCK`]). The clock is
    /// read only for large blocks, which cost far more than that to fill.
    fn too_late(&self, extra: usize) -> bool {
        extra >= LATE_BLOCK && self.past_deadline()
    }

    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
        self.peak
            .store(self.used.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Back to `used` bytes in use (a restored heap's), no peak beyond it and no limit hit.
    pub(crate) fn reset(&self, used: usize) {
        self.used.store(used, Ordering::Relaxed);
        self.peak.store(used, Ordering::Relaxed);
        self.hit.store(false, Ordering::Relaxed);
        self.observed.store(0, Ordering::Relaxed);
        self.hit_at.store(0, Ordering::Relaxed);
    }

    /// When the limit was first hit, in `crate::nanos_since_epoch` units (0 if it was not).
    pub(crate) fn hit_at(&self) -> u64 {
        self.hit_at.load(Ordering::Relaxed)
    }

    /// Latches the hit: `want` bytes were asked for.
    fn latch(&self, want: usize) -> bool {
        if self.hit.swap(true, Ordering::Relaxed) {
            return false;
        }
        self.observed.store(want, Ordering::Relaxed);
        self.hit_at.store(
            crate::nanos_since_epoch(std::time::Instant::now()),
            Ordering::Relaxed,
        );
        true
    }

    /// Bytes in use now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Whether an allocation was refused for the limit during this run.
    pub(crate) fn hit(&self) -> bool {
        self.hit.load(Ordering::Relaxed)
    }

    pub(crate) fn observed(&self) -> usize {
        self.observed.load(Ordering::Relaxed)
    }

    /// Runs `f` outside the run's accounting: what it allocates, and frees again before it
    /// returns, neither meets the limit nor counts in the peak or latches a hit. For the code
    /// cache's copy of a run's bytecode, which is the cache's and not the run's: a run that
    /// writes it must end as one that compiles without writing it does.
    pub(crate) fn exempt<R>(&self, f: impl FnOnce() -> R) -> R {
        self.aside(usize::MAX, f)
    }

    /// Runs `f` under its own memory limit, outside the run's accounting as [`Meter::exempt`]
    /// does: whatever it allocates, frees or hits leaves the run's limit, peak and latch as they
    /// were. A hit inside `f` still fails the allocation that crossed `limit`.
    pub(crate) fn aside<R>(&self, limit: usize, f: impl FnOnce() -> R) -> R {
        let limit = self.limit.swap(limit, Ordering::Relaxed);
        let peak = self.peak.load(Ordering::Relaxed);
        let hit = self.hit.load(Ordering::Relaxed);
        let observed = self.observed.load(Ordering::Relaxed);
        let hit_at = self.hit_at.load(Ordering::Relaxed);
        let out = f();
        self.limit.store(limit, Ordering::Relaxed);
        self.peak.store(peak, Ordering::Relaxed);
        self.hit.store(hit, Ordering::Relaxed);
        self.observed.store(observed, Ordering::Relaxed);
        self.hit_at.store(hit_at, Ordering::Relaxed);
        out
    }

    /// Whether `extra` more bytes may be allocated.
    fn admit(&self, extra: usize) -> bool {
        if self.too_late(extra) {
            return false;
        }
        let used = self.used.load(Ordering::Relaxed);
        let limit = self.limit.load(Ordering::Relaxed);
        let want = used.saturating_add(extra);
        if want <= limit {
            return true;
        }
        if self.latch(want) {
            // The allocation that crossed the limit fails: the guest sees an out-of-memory error.
            return false;
        }
        want <= limit.saturating_add(GRACE)
    }

    /// The heap could not give `extra` more bytes although the limit allowed them (its address
    /// space ran out): reported as the memory limit, like any allocation the run cannot have.
    fn exhausted(&self, extra: usize) {
        self.latch(self.used.load(Ordering::Relaxed).saturating_add(extra));
    }

    fn add(&self, n: usize) {
        let now = self.used.fetch_add(n, Ordering::Relaxed) + n;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The allocator QuickJS uses: glibc's malloc, metered against [`Meter`].
pub(crate) struct MeteredAllocator(pub(crate) Arc<Meter>);

fn usable(ptr: *mut u8) -> usize {
    // SAFETY: only called on non-null pointers returned by libc's malloc/calloc/realloc that have
    // not been freed yet; malloc_usable_size reads the allocator's own header for them.
    unsafe { libc::malloc_usable_size(ptr.cast()) }
}

// SAFETY: every pointer returned comes straight from libc malloc/calloc/realloc, which return null
// or a block of at least the requested size aligned for any fundamental type (>= usize);
// `usable_size` reports glibc's real usable size for such a block.
unsafe impl Allocator for MeteredAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if size == 0 || !self.0.admit(size) {
            return std::ptr::null_mut();
        }
        // SAFETY: plain malloc of a non-zero size; a null result is passed on to QuickJS.
        let ptr = unsafe { libc::malloc(size) }.cast::<u8>();
        if !ptr.is_null() {
            self.0.add(usable(ptr));
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if total == 0 || !self.0.admit(total) {
            return std::ptr::null_mut();
        }
        // SAFETY: plain calloc; count * size was checked not to overflow.
        let ptr = unsafe { libc::calloc(count, size) }.cast::<u8>();
        if !ptr.is_null() {
            self.0.add(usable(ptr));
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        self.0.sub(usable(ptr));
        // SAFETY: the caller guarantees `ptr` came from this allocator and is freed once.
        unsafe { libc::free(ptr.cast()) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let old = usable(ptr);
        if new_size > old && !self.0.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller guarantees `ptr` came from this allocator; on failure realloc leaves
        // the old block valid and we report null, as QuickJS expects.
        let new = unsafe { libc::realloc(ptr.cast(), new_size) }.cast::<u8>();
        if !new.is_null() {
            self.0.sub(old);
            self.0.add(usable(new));
        }
        new
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        if ptr.is_null() {
            0
        } else {
            usable(ptr)
        }
    }
}

/// Compiles a classic script without running it, so that a parse failure is told apart from a
/// `SyntaxError` the script throws at run time. On failure the exception is pending on `ctx`.
pub(crate) fn compile_script<'js>(
    ctx: &Ctx<'js>,
    source: &str,
    filename: &str,
) -> rquickjs::Result<Value<'js>> {
    compile(ctx, source, filename, qjs::JS_EVAL_TYPE_GLOBAL)
}

/// Compiles a global script with `flags` (plus compile-only) without running it.
fn compile<'js>(
    ctx: &Ctx<'js>,
    source: &str,
    filename: &str,
    flags: u32,
) -> rquickjs::Result<Value<'js>> {
    let src = nul_terminated(source.as_bytes());
    let name = CString::new(filename.replace('\0', "")).unwrap_or_default();
    let flags = (flags | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: `src` is NUL-terminated with `source.len()` bytes before the NUL, as JS_Eval
    // requires; `name` is a valid C string; the context pointer is live for `'js`.
    let raw = unsafe {
        qjs::JS_Eval(
            ctx.as_raw().as_ptr(),
            src.as_ptr().cast(),
            source.len() as _,
            name.as_ptr(),
            flags,
        )
    };
    // SAFETY: `raw` is a value JS_Eval just returned; testing its tag reads no memory.
    if unsafe { qjs::JS_IsException(raw) } {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: JS_Eval returned an owned reference in this context's runtime; `Value` takes it
    // over and frees it on drop.
    Ok(unsafe { Value::from_raw(ctx.clone(), raw) })
}

/// Sets QuickJS's stack limit `stack` bytes below the stack top the runtime has now (the one
/// `Context::with` takes when a run enters it).
///
/// Not rquickjs's `Runtime::set_max_stack_size`: it passes 0, which QuickJS reads as no limit at
/// all, for anything above 16 MiB, so a run allowed 17 to 64 MiB of stack had none, recursed
/// until the native stack ran out and crashed the host process (SIGSEGV; found 2026-11-30).
pub(crate) fn set_stack_limit(ctx: &Ctx<'_>, stack: usize) {
    // SAFETY: the context pointer is live while `ctx` is borrowed; JS_GetRuntime reads a field.
    let rt = unsafe { qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) };
    // SAFETY: `rt` is this context's runtime, locked by the caller (it holds a `Ctx`); the call
    // only sets its limit from the stack top it already has.
    unsafe { qjs::JS_SetMaxStackSize(rt, stack as _) };
}

/// Runs `f` with QuickJS's stack limit at `stack` bytes below the run's stack top, then puts it
/// back at `restore` bytes. The top itself stays where it is (see [`call`]), so the caller must
/// have `stack` bytes of native stack below the top and room for QuickJS's error path beyond
/// them: the engine grows the native stack for [`crate::run::unmask_stack_overflow`]'s extra.
pub(crate) fn with_stack_limit<R>(
    ctx: &Ctx<'_>,
    stack: usize,
    restore: usize,
    f: impl FnOnce() -> R,
) -> R {
    set_stack_limit(ctx, stack);
    let out = f();
    set_stack_limit(ctx, restore);
    out
}

/// Throws QuickJS's own uncatchable `InternalError: interrupted`, what its interrupt handler
/// throws when it asks to stop: the run unwinds through every `catch` and `finally` (see
/// `run::stop_if_due`). Returns the error that says an exception is pending.
pub(crate) fn throw_interrupted(ctx: &Ctx<'_>) -> rquickjs::Error {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the live context `ctx` borrows, on its own thread. The format string is a
    // NUL-terminated literal with no conversions, so the variadic call reads no arguments.
    // `JS_GetException` hands over the pending exception's reference, which `JS_SetUncatchableError`
    // only reads (it flags the object) and `JS_Throw` takes back as the pending exception: the
    // count is unchanged, as in QuickJS's own `JS_ThrowInterrupted`.
    unsafe {
        qjs::JS_ThrowInternalError(raw, c"interrupted".as_ptr());
        let exception = qjs::JS_GetException(raw);
        qjs::JS_SetUncatchableError(raw, exception);
        qjs::JS_Throw(raw, exception);
    }
    rquickjs::Error::Exception
}

/// Calls `f` with `args` (and `this` undefined) from Rust while guest code may be on the stack.
///
/// rquickjs's `Function::call` and `Constructor::construct` first move QuickJS's stack top to the
/// calling frame (`JS_UpdateStackTop`, under its `parallel` feature), and the limit moves with
/// it, for the rest of the run. A host function called at depth D that called back into JS that
/// way gave the guest D more stack than its limit, again at every such call: recursing to the
/// limit and calling `console.log({})` there, over and over, ran the native stack out and
/// aborted the host process (found 2026-11-30). These calls leave the top where the run put it.
pub(crate) fn call<'js>(
    ctx: &Ctx<'js>,
    f: &Value<'js>,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let mut argv: Vec<qjs::JSValue> = args.iter().map(Value::as_raw).collect();
    // SAFETY: `f` and every argument are live values of this context, borrowed for the call
    // (JS_Call neither frees nor keeps them); `argv` holds `args.len()` values.
    let out = unsafe {
        qjs::JS_Call(
            ctx.as_raw().as_ptr(),
            f.as_raw(),
            qjs::JS_UNDEFINED,
            argv.len() as _,
            argv.as_mut_ptr(),
        )
    };
    owned(ctx, out)
}

/// `new ctor(...args)` from Rust without moving the stack top; see [`call`].
pub(crate) fn construct<'js>(
    ctx: &Ctx<'js>,
    ctor: &Value<'js>,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let mut argv: Vec<qjs::JSValue> = args.iter().map(Value::as_raw).collect();
    // SAFETY: as in `call`.
    let out = unsafe {
        qjs::JS_CallConstructor(
            ctx.as_raw().as_ptr(),
            ctor.as_raw(),
            argv.len() as _,
            argv.as_mut_ptr(),
        )
    };
    owned(ctx, out)
}

thread_local! {
    /// The source [`declare_module`] hands to [`compile_module`] (a C callback takes no data).
    static MODULE_SOURCE: std::cell::RefCell<Option<Vec<u8>>> =
        const { std::cell::RefCell::new(None) };
}

/// Compiles (declares) a module as rquickjs's `Module::declare` does, but without moving the stack
/// top (see [`call`]): the loader declares imported modules from deep inside QuickJS's recursive
/// graph resolution, and `Module::declare` let the parser of a module at the end of a chain of
/// 3,000 imports use the whole stack limit below that depth, which ran the native stack out and
/// aborted the host process (found 2026-11-30). On failure the exception is pending.
pub(crate) fn declare_module<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    source: &[u8],
) -> rquickjs::Result<rquickjs::Module<'js, rquickjs::module::Declared>> {
    MODULE_SOURCE.with(|s| *s.borrow_mut() = Some(nul_terminated(source)));
    let name = name.replace('\0', "");
    // SAFETY: `compile_module` returns a module QuickJS compiled in the context it is given, which
    // is `ctx`, or null with the exception pending.
    let out = unsafe { rquickjs::Module::from_load_fn(ctx.clone(), name, compile_module) };
    MODULE_SOURCE.with(|s| s.borrow_mut().take());
    out
}

/// The load function behind [`declare_module`]: compiles the pending source as a module.
unsafe extern "C" fn compile_module(
    ctx: *mut qjs::JSContext,
    name: *const std::ffi::c_char,
) -> *mut qjs::JSModuleDef {
    let Some(src) = MODULE_SOURCE.with(|s| s.borrow_mut().take()) else {
        return std::ptr::null_mut();
    };
    let flags =
        qjs::JS_EVAL_TYPE_MODULE | qjs::JS_EVAL_FLAG_STRICT | qjs::JS_EVAL_FLAG_COMPILE_ONLY;
    // SAFETY: `src` ends with a NUL after its `len() - 1` bytes, as JS_Eval requires; `name` is the
    // C string rquickjs made; `ctx` is the live context `declare_module` was called with.
    let value = unsafe {
        qjs::JS_Eval(
            ctx,
            src.as_ptr().cast(),
            (src.len() - 1) as _,
            name,
            flags as i32,
        )
    };
    // SAFETY: testing the tag of a returned value reads no memory. A compiled module is a
    // JS_TAG_MODULE value whose pointer is the module definition, which the context's module
    // list owns (such a value is never freed by reference count).
    unsafe {
        if qjs::JS_IsException(value) || qjs::JS_VALUE_GET_TAG(value) != qjs::JS_TAG_MODULE {
            return std::ptr::null_mut();
        }
        qjs::JS_VALUE_GET_PTR(value).cast()
    }
}

/// Takes over a value QuickJS just returned, or reports its pending exception.
fn owned<'js>(ctx: &Ctx<'js>, raw: qjs::JSValue) -> rquickjs::Result<Value<'js>> {
    // SAFETY: testing the tag of a returned value reads no memory.
    if unsafe { qjs::JS_IsException(raw) } {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: `raw` is an owned reference in this context's runtime; `Value` frees it on drop.
    Ok(unsafe { Value::from_raw(ctx.clone(), raw) })
}

/// `bytes` followed by a NUL, as JS_Eval wants its input.
fn nul_terminated(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    v
}

/// Runs a script compiled by [`compile_script`]. On failure the exception is pending on `ctx`.
pub(crate) fn run_compiled<'js>(
    ctx: &Ctx<'js>,
    compiled: Value<'js>,
) -> rquickjs::Result<Value<'js>> {
    // JS_EvalFunction consumes one reference: give it its own, and let `compiled` (which also
    // holds a reference to the context) drop normally.
    // SAFETY: `compiled` is a live value of this context; dup'ing it adds one owned reference.
    let raw = unsafe { qjs::JS_DupValue(ctx.as_raw().as_ptr(), compiled.as_raw()) };
    drop(compiled);
    // SAFETY: `raw` is an owned function-bytecode value of this context, consumed exactly once.
    let out = unsafe { qjs::JS_EvalFunction(ctx.as_raw().as_ptr(), raw) };
    // SAFETY: testing the tag of a returned value reads no memory.
    if unsafe { qjs::JS_IsException(out) } {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: JS_EvalFunction returned an owned reference in this context's runtime.
    Ok(unsafe { Value::from_raw(ctx.clone(), out) })
}

/// Evaluates one of Palisade's own fixed scripts (never guest code) from the bytecode `build.rs`
/// compiled for it (see [`crate::trusted`]). On failure the exception is pending on `ctx`.
pub(crate) fn eval_trusted<'js>(
    ctx: &Ctx<'js>,
    script: &crate::trusted::Trusted,
) -> rquickjs::Result<Value<'js>> {
    let function = read_bytecode(ctx, script.bytecode)?;
    run_compiled(ctx, function)
}

/// Compiles one of Palisade's fixed scripts as `build.rs` does (a strict global script with its
/// file name, and a backtrace barrier where it asks for one), for the test that compares the two.
#[cfg(test)]
pub(crate) fn compile_trusted<'js>(
    ctx: &Ctx<'js>,
    script: &crate::trusted::Trusted,
) -> rquickjs::Result<Value<'js>> {
    let barrier = if script.barrier {
        qjs::JS_EVAL_FLAG_BACKTRACE_BARRIER
    } else {
        0
    };
    compile(
        ctx,
        script.source,
        script.filename,
        qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_STRICT | barrier,
    )
}

/// The bytecode of a compiled script (see [`compile_script`]).
pub(crate) fn write_bytecode<'js>(
    ctx: &Ctx<'js>,
    compiled: &Value<'js>,
) -> rquickjs::Result<Vec<u8>> {
    let mut len: qjs::size_t = 0;
    // SAFETY: `compiled` is a live function-bytecode value of this context and `len` a valid
    // out-pointer; JS_WriteObject only reads the value.
    let ptr = unsafe {
        qjs::JS_WriteObject(
            ctx.as_raw().as_ptr(),
            &mut len,
            compiled.as_raw(),
            qjs::JS_WRITE_OBJ_BYTECODE as i32,
        )
    };
    if ptr.is_null() {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: JS_WriteObject returned a buffer of `len` bytes allocated with this context's
    // allocator; it is copied, then freed exactly once with js_free.
    let copy = unsafe { std::slice::from_raw_parts(ptr, len as usize) }.to_vec();
    // SAFETY: as above: `ptr` came from JS_WriteObject on this context.
    unsafe { qjs::js_free(ctx.as_raw().as_ptr(), ptr.cast()) };
    Ok(copy)
}

/// A compiled script from bytecode that [`write_bytecode`] produced in this process, or that
/// `build.rs` produced with the same QuickJS for one of Palisade's fixed scripts (never bytes
/// from outside: QuickJS does not validate bytecode). On failure the exception is pending.
pub(crate) fn read_bytecode<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> rquickjs::Result<Value<'js>> {
    // SAFETY: `bytes` is bytecode this process's QuickJS wrote, with the same build and flags
    // (callers guarantee it: this engine's `palisade_core::code_cache` is filled only by
    // `write_bytecode`), or Palisade's own scripts compiled by build.rs from the same QuickJS
    // sources, byte-for-byte what `write_bytecode` gives (`trusted::tests`); the pointer and
    // length describe that live slice.
    let raw = unsafe {
        qjs::JS_ReadObject(
            ctx.as_raw().as_ptr(),
            bytes.as_ptr(),
            bytes.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        )
    };
    // SAFETY: testing the tag of a returned value reads no memory.
    if unsafe { qjs::JS_IsException(raw) } {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: JS_ReadObject returned an owned function-bytecode value in this context's runtime.
    Ok(unsafe { Value::from_raw(ctx.clone(), raw) })
}

/// A declared module from bytecode that `Module::write` produced in this process (see
/// this engine's `palisade_core::code_cache`; never bytes from outside).
pub(crate) fn load_module<'js>(
    ctx: &Ctx<'js>,
    bytes: &[u8],
) -> rquickjs::Result<rquickjs::Module<'js, rquickjs::module::Declared>> {
    // SAFETY: `Module::load` is unsafe only because QuickJS trusts bytecode; these bytes are a
    // declared module this process's QuickJS wrote with `Module::write`, same build and flags.
    unsafe { rquickjs::Module::load(ctx.clone(), bytes) }
}

/// `v`'s ToString as Rust text, each lone surrogate as one U+FFFD as on every engine
/// (`palisade_core::text`); rquickjs's own conversion fails on them. `None` if ToString threw
/// (the exception is pending on `ctx`).
pub(crate) fn to_text(ctx: &Ctx<'_>, v: &Value<'_>) -> Option<String> {
    let mut len: usize = 0;
    // SAFETY: the context is live while `ctx` is borrowed and `v` belongs to it; `len` is an
    // out-pointer. QuickJS returns NUL-terminated bytes it owns, or null with an exception.
    let p = unsafe { qjs::JS_ToCStringLen(ctx.as_raw().as_ptr(), &mut len, v.as_raw()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` points at `len` initialised bytes that stay valid until freed below.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
    let text = palisade_core::text::from_quickjs_utf8(bytes).into_owned();
    // SAFETY: `p` came from JS_ToCStringLen on this context and is freed exactly once.
    unsafe { qjs::JS_FreeCString(ctx.as_raw().as_ptr(), p) };
    Some(text)
}

/// The run's module table, kept in the context's Rust-side data when the runtime is built, for
/// [`normalize_module_name`] (which QuickJS calls with no way to reach it otherwise).
pub(crate) struct ModuleTable(pub(crate) crate::modules::Modules);

// SAFETY: `ModuleTable` holds no JS value and no lifetime: it is the same type for every `'js`.
unsafe impl<'js> rquickjs::JsLifetime<'js> for ModuleTable {
    type Changed<'to> = ModuleTable;
}

/// Makes [`normalize_module_name`] QuickJS's module-name normalizer on `ctx`'s runtime, in place
/// of rquickjs's, which converts the names strictly and fails on a lone surrogate ("Conversion
/// from string failed") before the resolver runs, where the wasm engine reads one U+FFFD. The
/// loader stays rquickjs's: the names it gets are ours, always UTF-8. Call after
/// `Runtime::set_loader` and after storing the [`ModuleTable`].
pub(crate) fn set_module_normalizer(ctx: &Ctx<'_>) {
    // SAFETY: the runtime is live while `ctx` is borrowed; the normalizer is a plain function
    // that needs no opaque state beyond what it reads from the context it is called with.
    unsafe {
        let rt = qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        qjs::JS_SetModuleNormalizeFunc2(rt, Some(normalize_module_name));
    }
}

/// QuickJS's module-name normalizer: both names as text (each lone surrogate one U+FFFD, as on
/// every engine), resolved by the run's [`ModuleTable`]. Returns a `js_malloc`ed name, or null
/// with an exception pending.
unsafe extern "C" fn normalize_module_name(
    ctx: *mut qjs::JSContext,
    base: *const std::ffi::c_char,
    name: *const std::ffi::c_char,
    _attributes: qjs::JSValue,
    _opaque: *mut std::ffi::c_void,
) -> *mut std::ffi::c_char {
    let Some(raw) = std::ptr::NonNull::new(ctx) else {
        return std::ptr::null_mut();
    };
    // SAFETY: QuickJS calls this on the thread that holds the runtime, with a live context;
    // `from_raw` takes its own reference, released when `ctx` drops.
    let ctx = unsafe { Ctx::from_raw(raw) };
    // SAFETY: QuickJS passes NUL-terminated strings it owns for the length of the call.
    let (base, name) = unsafe {
        (
            std::ffi::CStr::from_ptr(base).to_bytes(),
            std::ffi::CStr::from_ptr(name).to_bytes(),
        )
    };
    let base = palisade_core::text::from_quickjs_utf8(base);
    let name = palisade_core::text::from_quickjs_utf8(name);
    let table = ctx.userdata::<ModuleTable>().map(|t| t.0.clone());
    let resolved = match table {
        Some(modules) => modules.resolve_name(&ctx, &base, &name),
        None => Err(rquickjs::Exception::throw_internal(
            &ctx,
            "no module table on this runtime",
        )),
    };
    match resolved {
        // SAFETY: the context is live; QuickJS takes ownership of the copy it gets back.
        Ok(s) => unsafe { qjs::js_strndup(ctx.as_raw().as_ptr(), s.as_ptr().cast(), s.len() as _) },
        Err(rquickjs::Error::Exception) => std::ptr::null_mut(),
        Err(e) => {
            let _ = rquickjs::Exception::throw_internal(&ctx, &e.to_string());
            std::ptr::null_mut()
        }
    }
}

/// A copy of an `ArrayBuffer`'s bytes (`None` if it is detached).
pub(crate) fn array_buffer_copy(buffer: &rquickjs::ArrayBuffer<'_>) -> Option<Vec<u8>> {
    // SAFETY: `as_bytes` is unsafe because the slice would dangle if guest code detached or
    // resized the buffer while it is borrowed. The slice is copied at once, with no JS running
    // (nothing here can call back into the guest), so it never outlives that window.
    unsafe { buffer.as_bytes() }.map(<[u8]>::to_vec)
}

extern "C" {
    /// Palisade's own entry point in the vendored QuickJS-NG (`quickjs.c`, fix 7 in
    /// `vendor/rquickjs-sys/PALISADE.md`): `JSON.stringify(obj)` within `limit` bytes.
    fn JS_JSONStringifyBounded(
        ctx: *mut qjs::JSContext,
        obj: qjs::JSValue,
        limit: i64,
        total: *mut i64,
        depth: *mut std::os::raw::c_int,
    ) -> qjs::JSValue;
}

/// What [`json_stringify_bounded`] made of a value.
pub(crate) enum Json<'js> {
    /// `JSON.stringify`'s text, at most the limit's bytes.
    Text(rquickjs::String<'js>),
    /// `JSON.stringify` gave `undefined`.
    Undefined,
    /// The text would be `total` bytes, over the limit, with objects nested `depth` deep; none of
    /// it was kept.
    Over { total: u64, depth: usize },
}

/// `JSON.stringify(value)` (the intrinsic, whatever the guest did to its global) keeping at most
/// `limit` bytes of text: past them the value is walked to the end, as `JSON.stringify` walks it,
/// but only counted. On failure the exception is pending on `ctx`.
pub(crate) fn json_stringify_bounded<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
    limit: u64,
) -> rquickjs::Result<Json<'js>> {
    let (mut total, mut depth): (i64, std::os::raw::c_int) = (0, 0);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // SAFETY: the context is live while `ctx` is borrowed and `value` belongs to it (borrowed,
    // not consumed: the function takes a `JSValueConst`); `total` and `depth` are out-pointers.
    let raw = unsafe {
        JS_JSONStringifyBounded(
            ctx.as_raw().as_ptr(),
            value.as_raw(),
            limit,
            &mut total,
            &mut depth,
        )
    };
    // SAFETY: the function returned an owned value of this context's runtime (or the exception
    // marker, which owns nothing).
    let v = unsafe { Value::from_raw(ctx.clone(), raw) };
    if v.is_exception() {
        return Err(rquickjs::Error::Exception);
    }
    if let Some(s) = v.as_string() {
        return Ok(Json::Text(s.clone()));
    }
    if v.is_null() {
        return Ok(Json::Over {
            total: u64::try_from(total).unwrap_or(0),
            depth: usize::try_from(depth).unwrap_or(0),
        });
    }
    Ok(Json::Undefined)
}

#[cfg(test)]
mod meter_tests {
    use super::*;

    #[test]
    fn an_exempt_allocation_leaves_the_runs_accounting_as_it_was() {
        let m = Meter::new();
        m.set_limit(100);
        m.add(60);
        let inside = m.exempt(|| {
            assert!(m.admit(1_000), "no limit inside");
            m.add(1_000);
            m.sub(1_000);
            m.exhausted(5);
            m.hit()
        });
        assert!(inside);
        assert_eq!((m.used(), m.peak(), m.hit()), (60, 60, false));
        assert!(!m.admit(50), "the limit is back");
        assert!(m.hit());
    }

    #[test]
    fn past_the_deadline_only_large_blocks_are_refused_and_nothing_latches() {
        let m = Meter::new();
        assert!(m.admit(LATE_BLOCK), "no deadline");
        m.set_deadline(crate::nanos_since_epoch(std::time::Instant::now()) + 60_000_000_000);
        assert!(m.admit(LATE_BLOCK), "before the deadline");
        m.set_deadline(1);
        assert!(!m.admit(LATE_BLOCK), "a large block past the deadline");
        assert!(m.admit(LATE_BLOCK - 1), "a small one still");
        assert!(!m.hit(), "lateness is not the memory limit");
        // Time is not accounting: a run past its deadline ends as a timeout whatever it did
        // aside.
        assert!(!m.exempt(|| m.admit(LATE_BLOCK)), "nor aside");
    }
}
