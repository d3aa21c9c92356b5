//! Every `unsafe` line of the v8 engine: loading `libmini_racer.so`, its C API (`mr_*`), the one
//! callback trampoline all contexts share, the mailbox memory the trusted prelude shares with the
//! host, the output log a worker shares with its parent, and the few process-level calls a worker
//! makes (rlimit, stdout, the start-up hook).
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

/// A worker's console output, copied into memory its parent maps too as the output is accepted,
/// so that the parent still has it when the worker ends without answering: a fatal V8
/// out-of-memory abort, or a builtin V8 cannot interrupt (the parent kills the worker). The
/// worker makes it (a `memfd`) and names its descriptor in `Ready`; the parent opens it through
/// `/proc/<pid>/fd/<n>`, and clears it before each run, so a run can only ever read its own
/// output. Layout: a 64 KiB header whose first three words are stdout's length, stderr's length
/// and the truncated flag, then a region per stream as large as the largest output cap
/// (`Limits::validate`: 1 GiB). Pages are the file's, made on first write; the parent hands back
/// those of a run that wrote more than [`OutputLog::KEEP`].
#[derive(Debug)]
pub(crate) struct OutputLog {
    base: std::ptr::NonNull<u8>,
    fd: std::os::fd::OwnedFd,
}

// SAFETY: the mapping lives as long as the value and is only reached through `base` with atomic
// header words and copies into or out of ranges that one side publishes before the other reads
// them; nothing in it is tied to a thread.
unsafe impl Send for OutputLog {}
// SAFETY: as above. `append` is called by one thread at a time (the worker's isolate thread,
// under the run's lock, and only while a run is under way); the parent's `clear` runs while
// the worker is idle, and its `read` may meet an `append` (a worker killed past the deadline)
// but reads only bytes published before the length it loaded.
unsafe impl Sync for OutputLog {}

impl OutputLog {
    /// A page on every Linux page size (4, 16 or 64 KiB), so that each region starts on one and
    /// `MADV_REMOVE` takes it.
    const HEADER: usize = 1 << 16;
    const REGION: usize = 1 << 30;
    const SIZE: usize = Self::HEADER + 2 * Self::REGION;
    /// Written bytes a run may leave in the file; more are handed back by the next `clear`.
    const KEEP: usize = 1 << 20;

    fn map(fd: std::os::fd::OwnedFd) -> std::io::Result<OutputLog> {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of the whole file, which is `SIZE` bytes long; the
        // kernel picks the address. Nothing else maps over it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base =
            std::ptr::NonNull::new(p.cast::<u8>()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(OutputLog { base, fd })
    }

    /// A new, empty log (in the worker).
    pub(crate) fn create() -> std::io::Result<OutputLog> {
        use std::os::fd::FromRawFd;
        // SAFETY: memfd_create reads the NUL-terminated name and returns a new descriptor (or -1).
        let raw = unsafe {
            libc::memfd_create(
                c"palisade-output".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        File::from(fd.try_clone()?).set_len(Self::SIZE as u64)?;
        // Its size is fixed for good: a worker that went wrong cannot shrink the file under the
        // parent's mapping (a read past the end would kill the parent with SIGBUS).
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a descriptor we own, with an integer argument.
        if unsafe { libc::fcntl(raw, libc::F_ADD_SEALS, seals) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Self::map(fd)
    }

    /// The log a worker made (in the parent).
    pub(crate) fn open(pid: u32, fd: i32) -> std::io::Result<OutputLog> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/fd/{fd}"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on a descriptor we own, with no argument.
        let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
        let fixed = libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        if seals < 0 || seals & fixed != fixed || file.metadata()?.len() != Self::SIZE as u64 {
            return Err(std::io::Error::other("not a sealed output log"));
        }
        Self::map(file.into())
    }

    /// Its descriptor, for the parent.
    pub(crate) fn raw_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < 3);
        // SAFETY: the header's first three 8-byte words are inside the mapping, aligned (the
        // mapping is page-aligned), and only ever accessed atomically, by either process.
        unsafe { &*self.base.as_ptr().cast::<AtomicU64>().add(i) }
    }

    fn region(&self, stream: usize) -> *mut u8 {
        // SAFETY: both regions lie inside the mapping (`SIZE`).
        unsafe { self.base.as_ptr().add(Self::HEADER + stream * Self::REGION) }
    }

    /// Appends bytes the run's output accepted (in the worker).
    pub(crate) fn append(&self, stderr: bool, bytes: &[u8], truncated: bool) {
        let i = usize::from(stderr);
        let len = usize::try_from(self.word(i).load(Ordering::Relaxed))
            .unwrap_or(Self::REGION)
            .min(Self::REGION);
        let n = bytes.len().min(Self::REGION - len);
        // SAFETY: `len + n <= REGION`, so the destination is inside this stream's region; the
        // parent reads only below the length published after the copy.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.region(i).add(len), n) };
        self.word(i).store((len + n) as u64, Ordering::Release);
        if truncated {
            self.word(2).store(1, Ordering::Release);
        }
    }

    /// The output the current run has written so far, at most `cap` bytes in all, as its
    /// `Output` kept it (in the parent; the cap holds even against a worker gone wrong).
    pub(crate) fn read(&self, cap: u64) -> (String, String, bool) {
        let mut room = usize::try_from(cap).unwrap_or(usize::MAX);
        let mut text = |i: usize| {
            let len = usize::try_from(self.word(i).load(Ordering::Acquire))
                .unwrap_or(0)
                .min(Self::REGION)
                .min(room);
            room -= len;
            let mut v = vec![0u8; len];
            // SAFETY: the range is inside this stream's region. The first `len` bytes were
            // written before `len` was published and a worker that behaves writes only past it;
            // one gone wrong may write anywhere at any time, which can only make these bytes
            // garbage (a plain copy of shared memory), cut to whole characters below.
            unsafe { std::ptr::copy_nonoverlapping(self.region(i), v.as_mut_ptr(), len) };
            // Whole characters only: the cap may fall inside one (the worker's `Output` cuts
            // at a boundary too), and a worker gone wrong may have written anything.
            let valid = std::str::from_utf8(&v).map_or_else(|e| e.valid_up_to(), str::len);
            v.truncate(valid);
            String::from_utf8(v).unwrap_or_default()
        };
        (text(0), text(1), self.word(2).load(Ordering::Acquire) != 0)
    }

    /// Empties the log before a run (in the parent, while the worker is idle).
    pub(crate) fn clear(&self) {
        for i in 0..2 {
            let len = usize::try_from(self.word(i).load(Ordering::Acquire)).unwrap_or(0);
            if len > Self::KEEP {
                // SAFETY: the range is inside this stream's region; MADV_REMOVE frees the file's
                // pages there, which then read as zeros. Failure only leaves them in place.
                unsafe {
                    libc::madvise(
                        self.region(i).cast(),
                        len.min(Self::REGION),
                        libc::MADV_REMOVE,
                    )
                };
            }
            self.word(i).store(0, Ordering::Release);
        }
        self.word(2).store(0, Ordering::Release);
    }
}

impl Drop for OutputLog {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; no reference into it outlives `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), Self::SIZE) };
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

#[cfg(test)]
mod output_log_tests {
    use super::OutputLog;

    /// What the worker appends, the parent reads through its own mapping of the same file, and
    /// a clear leaves nothing of it for the next run.
    #[test]
    fn the_parent_reads_what_the_worker_appended_and_a_clear_empties_it() {
        let worker = OutputLog::create().expect("memfd");
        let parent = OutputLog::open(std::process::id(), worker.raw_fd()).expect("open via /proc");
        assert_eq!(parent.read(99), (String::new(), String::new(), false));
        worker.append(false, "one\n".as_bytes(), false);
        worker.append(true, "é\n".as_bytes(), false);
        worker.append(false, "tw".as_bytes(), true);
        assert_eq!(parent.read(99), ("one\ntw".into(), "é\n".into(), true));
        // Never past the run's cap, whatever the worker wrote.
        assert_eq!(parent.read(7), ("one\ntw".into(), String::new(), true));
        // A run that wrote more than KEEP has its pages handed back, and reads as empty.
        let big = vec![b'x'; OutputLog::KEEP + 1];
        worker.append(false, &big, false);
        parent.clear();
        assert_eq!(parent.read(99), (String::new(), String::new(), false));
        worker.append(false, "next\n".as_bytes(), false);
        assert_eq!(parent.read(99).0, "next\n");
    }
}
