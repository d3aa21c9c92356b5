//! Every `unsafe` line of the v8 engine: loading `libmini_racer.so`, its C API (`mr_*`), the one
//! callback trampoline all contexts share, the mailbox memory the trusted prelude shares with the
//! host, and the few process-level calls a worker makes (rlimit, stdout, the start-up hook).
//!
//! The safe surface is [`Context`] (owns one V8 isolate and context; freed on drop), [`Task`] (one
//! pending `mr_eval`/`mr_call_function`, answered exactly once) and [`Handle`] (a value owned by a
//! context's registry, released on drop). Rules the wrapper upholds (see docs/v8-engine-notes.md):
//! - the library is loaded once and never unloaded; `mr_init_v8` runs once per process;
//! - the object-inspection calls (`mr_get_object_item`, ...) are never used: they abort on
//!   hostile getters and proxies. Values cross the boundary only as strings made by trusted JS;
//! - nothing that waits for the isolate thread is called from the callback;
//! - a [`Context`] is freed only from a non-isolate thread (its `Drop`), after which none of its
//!   handles is dereferenced again (releasing one is a harmless no-op).

use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

/// Why the library cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FfiError {
    /// `dlopen` or a symbol lookup failed.
    #[error("cannot load {path}: {message}")]
    Load {
        /// The library path.
        path: String,
        /// The loader's message.
        message: String,
    },
    /// A path contained a NUL byte.
    #[error("path contains a NUL byte: {0}")]
    BadPath(String),
    /// The library refused to create a context (V8 not initialised).
    #[error("libmini_racer could not create a context")]
    NoContext,
    /// A value could not be allocated in the context.
    #[error("libmini_racer could not allocate a value")]
    Alloc,
    /// A task was not accepted.
    #[error("libmini_racer did not accept the task")]
    Rejected,
}

#[repr(C, packed)]
struct RawValue {
    value: u64,
    len: usize,
    typ: u8,
}

type Vh = *mut RawValue;
type RawCallback = unsafe extern "C" fn(u64, Vh);

/// The `mr_*` functions Palisade uses, resolved once.
struct Api {
    init_v8: unsafe extern "C" fn(*const c_char, *const c_char),
    v8_version: unsafe extern "C" fn() -> *const c_char,
    init_context: unsafe extern "C" fn(RawCallback) -> u64,
    free_context: unsafe extern "C" fn(u64),
    set_hard_memory_limit: unsafe extern "C" fn(u64, usize),
    hard_memory_limit_reached: unsafe extern "C" fn(u64) -> bool,
    make_js_callback: unsafe extern "C" fn(u64, u64) -> Vh,
    alloc_string_val: unsafe extern "C" fn(u64, *const c_char, u64, u8) -> Vh,
    free_value: unsafe extern "C" fn(u64, Vh),
    cancel_task: unsafe extern "C" fn(u64, u64),
    eval: unsafe extern "C" fn(u64, Vh, u64) -> u64,
    call_function: unsafe extern "C" fn(u64, Vh, Vh, Vh, u64) -> u64,
    array_push: unsafe extern "C" fn(u64, Vh, Vh) -> Vh,
}

static API: OnceLock<Result<Api, FfiError>> = OnceLock::new();

fn api() -> Option<&'static Api> {
    API.get().and_then(|r| r.as_ref().ok())
}

/// Loads the library and initialises V8 with `flags` (once per process; later calls return the
/// first outcome). Returns V8's version string.
pub fn init(lib: &Path, icu: &Path, flags: &str) -> Result<String, FfiError> {
    let api = API
        .get_or_init(|| {
            let api = load(lib)?;
            let icu_c = CString::new(icu.to_string_lossy().into_owned())
                .map_err(|_| FfiError::BadPath(icu.display().to_string()))?;
            let flags_c = CString::new(flags).map_err(|_| FfiError::BadPath(flags.into()))?;
            // SAFETY: both arguments are valid NUL-terminated strings that outlive the call;
            // mr_init_v8 copies them (it builds std::strings) and runs its body once.
            unsafe { (api.init_v8)(flags_c.as_ptr(), icu_c.as_ptr()) };
            Ok(api)
        })
        .as_ref()
        .map_err(Clone::clone)?;
    // SAFETY: mr_v8_version returns a pointer to a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr((api.v8_version)()) };
    Ok(version.to_string_lossy().into_owned())
}

fn load(path: &Path) -> Result<Api, FfiError> {
    let err = |e: libloading::Error| FfiError::Load {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    // SAFETY: loading runs the library's initialisers; libmini_racer's only set up its own
    // statics (checked in the probe: no signal handlers, no threads until mr_init_v8). The
    // library is leaked below and never unloaded, so every resolved function stays valid.
    let lib = unsafe { libloading::Library::new(path) }.map_err(err)?;
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol's C signature (exports.h of mini-racer 0.14.1, the pinned wheel)
            // matches the function pointer type of the field it is stored in.
            *unsafe { lib.get($name) }.map_err(err)?
        };
    }
    Ok(Api {
        init_v8: sym!(b"mr_init_v8\0"),
        v8_version: sym!(b"mr_v8_version\0"),
        init_context: sym!(b"mr_init_context\0"),
        free_context: sym!(b"mr_free_context\0"),
        set_hard_memory_limit: sym!(b"mr_set_hard_memory_limit\0"),
        hard_memory_limit_reached: sym!(b"mr_hard_memory_limit_reached\0"),
        make_js_callback: sym!(b"mr_make_js_callback\0"),
        alloc_string_val: sym!(b"mr_alloc_string_val\0"),
        free_value: sym!(b"mr_free_value\0"),
        cancel_task: sym!(b"mr_cancel_task\0"),
        eval: sym!(b"mr_eval\0"),
        call_function: sym!(b"mr_call_function\0"),
        array_push: sym!(b"mr_array_push\0"),
    })
}

const T_STR: u8 = 5;

/// A value owned by a context's registry; released when dropped.
#[derive(Debug)]
pub struct Handle {
    ctx: u64,
    raw: usize,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(api) = api() {
            // SAFETY: mr_free_value takes any pointer: it only removes it from the context's
            // registry map (an unknown pointer or context is a no-op; it never dereferences it).
            unsafe { (api.free_value)(self.ctx, self.raw as Vh) };
        }
    }
}

/// A result delivered by the library.
#[derive(Debug)]
pub enum Value {
    /// A UTF-8 string (lossily decoded).
    Str(String),
    /// A number, boolean, null or undefined (its value is not needed).
    Scalar,
    /// A function, array, object, promise, ...: kept alive by the handle.
    Object(u8, Handle),
    /// A `SharedArrayBuffer` with the address and length of its backing store.
    Shared(Handle, usize, usize),
    /// An exception: its type code (200 runtime, 201 parse, 202 out of memory, 204 terminated,
    /// ...) and text.
    Error(u8, String),
}

enum Route {
    Task(u64, Sender<Value>),
    Js(u64, Arc<JsHandler>),
}

/// The host side of a JS callback: `f` gets the mailbox memory (once [`JsHandler::attach`]ed).
pub struct JsHandler {
    mailbox: OnceLock<(usize, usize, Arc<Handle>)>,
    f: MailboxFn,
}

type MailboxFn = Box<dyn Fn(&mut [u8]) + Send + Sync>;

impl std::fmt::Debug for JsHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsHandler").finish_non_exhaustive()
    }
}

impl JsHandler {
    /// A handler; it is called only once a mailbox is attached.
    pub fn new(f: impl Fn(&mut [u8]) + Send + Sync + 'static) -> Arc<JsHandler> {
        Arc::new(JsHandler {
            mailbox: OnceLock::new(),
            f: Box::new(f),
        })
    }

    /// Attaches a `SharedArrayBuffer` value as the mailbox (a SAB cannot be detached, and the
    /// handle kept here keeps its backing store alive as long as the context lives).
    pub fn attach(&self, value: Value) -> bool {
        match value {
            Value::Shared(h, ptr, len) if ptr != 0 && len > 0 => {
                self.mailbox.set((ptr, len, Arc::new(h))).is_ok()
            }
            _ => false,
        }
    }
}

static ROUTES: OnceLock<Mutex<HashMap<u64, Route>>> = OnceLock::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn routes() -> std::sync::MutexGuard<'static, HashMap<u64, Route>> {
    ROUTES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn new_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The one callback every context reports through, on that context's isolate thread.
unsafe extern "C" fn trampoline(id: u64, vh: Vh) {
    let vh_addr = vh as usize;
    // Never unwind into C++.
    let _ = std::panic::catch_unwind(move || dispatch(id, vh_addr as Vh));
}

fn dispatch(id: u64, vh: Vh) {
    let route = {
        let mut r = routes();
        match r.get(&id) {
            Some(Route::Task(..)) => r.remove(&id),
            Some(Route::Js(ctx, h)) => Some(Route::Js(*ctx, h.clone())),
            None => None,
        }
    };
    match route {
        Some(Route::Task(ctx, tx)) => {
            let _ = tx.send(decode(ctx, vh));
        }
        Some(Route::Js(ctx, handler)) => {
            release(ctx, vh);
            if let Some((ptr, len, _)) = handler.mailbox.get() {
                // SAFETY: (ptr, len) is the backing store of a SharedArrayBuffer kept alive by
                // the handle stored beside it, in a context that is alive (this callback runs on
                // its isolate thread, which mr_free_context joins before the context goes away).
                // JS is paused inside the call that invoked us, and no other thread touches the
                // buffer, so this is the only access for the duration of the borrow.
                let buf = unsafe { std::slice::from_raw_parts_mut(*ptr as *mut u8, *len) };
                (handler.f)(buf);
            }
        }
        None => {}
    }
}

fn release(ctx: u64, vh: Vh) {
    if let Some(api) = api() {
        // SAFETY: see Handle::drop: freeing only removes a registry entry.
        unsafe { (api.free_value)(ctx, vh) };
    }
}

fn decode(ctx: u64, vh: Vh) -> Value {
    if vh.is_null() {
        return Value::Error(0, "null value".into());
    }
    // SAFETY: the library passed a live value pointer (a 17-byte packed struct) that stays valid
    // until we release it below; read_unaligned copes with the packing.
    let raw = unsafe { std::ptr::read_unaligned(vh) };
    let typ = raw.typ;
    let bytes = |raw: &RawValue| -> Vec<u8> {
        let (ptr, len) = (raw.value as *const u8, raw.len);
        if ptr.is_null() || len == 0 {
            return Vec::new();
        }
        // SAFETY: for strings and exceptions the payload is a pointer to `len` bytes owned by
        // the value, valid until it is released (after this copy).
        unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
    };
    match typ {
        5 | 200..=206 => {
            let text = String::from_utf8_lossy(&bytes(&raw)).into_owned();
            release(ctx, vh);
            if typ == 5 {
                Value::Str(text)
            } else {
                Value::Error(typ, text)
            }
        }
        101 => Value::Shared(
            Handle {
                ctx,
                raw: vh as usize,
            },
            raw.value as usize,
            raw.len,
        ),
        1 | 2 | 3 | 4 | 8 | 11 => {
            release(ctx, vh);
            Value::Scalar
        }
        _ => Value::Object(
            typ,
            Handle {
                ctx,
                raw: vh as usize,
            },
        ),
    }
}

/// One pending evaluation or call: its result arrives exactly once.
#[derive(Debug)]
pub struct Task {
    ctx: u64,
    id: u64,
    /// Where the result arrives.
    pub rx: Receiver<Value>,
}

impl Task {
    /// Terminates the task if it is running (or marks it cancelled if it is queued); its result
    /// then arrives as type 204. Microtasks it queued are not cancelled: free the context.
    pub fn cancel(&self) {
        if let Some(api) = api() {
            // SAFETY: mr_cancel_task is safe from any thread for any ids (unknown ids are no-ops).
            unsafe { (api.cancel_task)(self.ctx, self.id) };
        }
    }
}

/// One V8 isolate and context with its own thread. Freed (terminating whatever runs) on drop.
#[derive(Debug)]
pub struct Context {
    id: u64,
    argv: Option<Handle>,
}

impl Context {
    /// A fresh context. [`init`] must have succeeded.
    pub fn new() -> Result<Context, FfiError> {
        let api = api().ok_or(FfiError::NoContext)?;
        // SAFETY: the trampoline is a valid `extern "C"` function for the life of the process.
        let id = unsafe { (api.init_context)(trampoline) };
        if id == 0 {
            return Err(FfiError::NoContext);
        }
        let mut ctx = Context { id, argv: None };
        // The argument list of every call: an empty frozen array made before any guest code.
        match ctx.eval("Object.freeze([])")?.rx.recv() {
            Ok(Value::Object(6, h)) => ctx.argv = Some(h),
            _ => return Err(FfiError::NoContext),
        }
        Ok(ctx)
    }

    fn string(&self, s: &str) -> Result<Handle, FfiError> {
        let api = api().ok_or(FfiError::Alloc)?;
        // SAFETY: the pointer and length describe `s`, which outlives the call; the library
        // copies the bytes (no NUL terminator needed).
        let vh =
            unsafe { (api.alloc_string_val)(self.id, s.as_ptr().cast(), s.len() as u64, T_STR) };
        if vh.is_null() {
            return Err(FfiError::Alloc);
        }
        Ok(Handle {
            ctx: self.id,
            raw: vh as usize,
        })
    }

    fn route(&self) -> (u64, Receiver<Value>) {
        let (tx, rx) = channel();
        let id = new_id();
        routes().insert(id, Route::Task(self.id, tx));
        (id, rx)
    }

    fn started(&self, route: u64, task: u64, rx: Receiver<Value>) -> Result<Task, FfiError> {
        if task == 0 {
            routes().remove(&route);
            return Err(FfiError::Rejected);
        }
        Ok(Task {
            ctx: self.id,
            id: task,
            rx,
        })
    }

    /// Compiles and runs a classic script.
    pub fn eval(&self, code: &str) -> Result<Task, FfiError> {
        let api = api().ok_or(FfiError::Rejected)?;
        let code = self.string(code)?;
        let (route, rx) = self.route();
        // SAFETY: `code` is a live string handle of this context (the library keeps its own
        // reference for the task, so dropping ours afterwards is fine).
        let task = unsafe { (api.eval)(self.id, code.raw as Vh, route) };
        self.started(route, task, rx)
    }

    /// Calls `f` with `this` set to the string `this` and no arguments.
    pub fn call(&self, f: &Handle, this: &str) -> Result<Task, FfiError> {
        let argv = self.argv.as_ref().ok_or(FfiError::Rejected)?;
        self.call_with(f, this, argv)
    }

    /// Calls `f` with `this` set to the string `this` and the arguments in the array `argv`.
    pub fn call_with(&self, f: &Handle, this: &str, argv: &Handle) -> Result<Task, FfiError> {
        let api = api().ok_or(FfiError::Rejected)?;
        let this = self.string(this)?;
        let (route, rx) = self.route();
        // SAFETY: `f`, `this` and `argv` are live handles of this context (a non-function `f`
        // gives an exception result, not undefined behaviour).
        let task = unsafe {
            (api.call_function)(self.id, f.raw as Vh, this.raw as Vh, argv.raw as Vh, route)
        };
        self.started(route, task, rx)
    }

    /// A JS function that calls `handler` synchronously (on the isolate thread) and returns
    /// `undefined`. Blocking: call it only before guest code runs.
    pub fn callback(&self, handler: Arc<JsHandler>) -> Result<Handle, FfiError> {
        let api = api().ok_or(FfiError::Alloc)?;
        let id = new_id();
        routes().insert(id, Route::Js(self.id, handler));
        // SAFETY: a plain call with this context's id; it returns a new function handle or null.
        let vh = unsafe { (api.make_js_callback)(self.id, id) };
        if vh.is_null() {
            routes().remove(&id);
            return Err(FfiError::Alloc);
        }
        Ok(Handle {
            ctx: self.id,
            raw: vh as usize,
        })
    }

    /// Appends `value` to the array `array` (JS `push`). Blocking, and it runs `push` as found on
    /// the array: use it only before guest code runs.
    pub fn push(&self, array: &Handle, value: &Handle) -> Result<(), FfiError> {
        let api = api().ok_or(FfiError::Alloc)?;
        // SAFETY: both are live handles of this context; the result handle is released at once.
        let vh = unsafe { (api.array_push)(self.id, array.raw as Vh, value.raw as Vh) };
        if vh.is_null() {
            return Err(FfiError::Alloc);
        }
        release(self.id, vh);
        Ok(())
    }

    /// Sets (and re-arms) the hard heap limit; 0 disables it.
    pub fn set_hard_limit(&self, bytes: usize) {
        if let Some(api) = api() {
            // SAFETY: non-blocking setter taking plain integers.
            unsafe { (api.set_hard_memory_limit)(self.id, bytes) };
        }
    }

    /// Whether the hard heap limit was reached since it was last set.
    pub fn hard_limit_reached(&self) -> bool {
        // SAFETY: non-blocking getter taking a plain integer.
        api().is_some_and(|api| unsafe { (api.hard_memory_limit_reached)(self.id) })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.argv = None;
        if let Some(api) = api() {
            // SAFETY: frees this context (terminating whatever runs); never called on an isolate
            // thread because contexts are owned and dropped by host threads only. Pending tasks
            // get their one 204 callback during this call, while their routes still exist.
            unsafe { (api.free_context)(self.id) };
        }
        let id = self.id;
        routes().retain(|_, r| match r {
            Route::Task(c, _) | Route::Js(c, _) => *c != id,
        });
    }
}

/// Sets this process's `RLIMIT_DATA` (soft and hard) to `bytes`.
pub fn limit_data(bytes: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass; no memory is retained.
    unsafe { libc::setrlimit(libc::RLIMIT_DATA, &lim) == 0 }
}

/// Moves this process's stdout aside for the protocol: returns a private duplicate of fd 1 and
/// points fd 1 at stderr, so nothing V8 prints can corrupt the protocol stream.
pub fn private_stdout() -> Option<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: dup on fd 1 returns a new descriptor we own (or -1).
    let fd = unsafe { libc::dup(1) };
    if fd < 0 {
        return None;
    }
    // SAFETY: dup2 of two valid descriptors; fd 1 is re-pointed at stderr.
    unsafe { libc::dup2(2, 1) };
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Some(unsafe { File::from_raw_fd(fd) })
}

/// Runs [`crate::worker::main`] instead of the program's `main` when this process was started as
/// a v8 worker (`PALISADE_V8_WORKER=1` in its environment), so that any program linking this crate
/// (the CLI, a test binary) can re-exec itself as a worker.
extern "C" fn worker_hook() {
    if std::env::var_os(crate::worker::ENV_FLAG).is_some_and(|v| v == "1") {
        let code = crate::worker::main();
        std::process::exit(code);
    }
}

// SAFETY: placing a function pointer in .init_array makes the C runtime call it once before
// `main`, with no arguments, as an `extern "C" fn()`. In an ordinary process the hook only reads
// the environment (set by the loader before initialisers run) and returns at once. In a worker
// (`PALISADE_V8_WORKER=1`) it runs the whole worker and exits the process without returning:
// Rust's std is usable there (it needs no initialisation of its own on Linux; the Rust runtime's
// `main` setup, e.g. the SIGPIPE disposition, simply never runs), and no other initialiser can
// depend on `main` having run because `main` never does.
#[used]
#[link_section = ".init_array"]
pub(crate) static WORKER_HOOK: extern "C" fn() = worker_hook;
