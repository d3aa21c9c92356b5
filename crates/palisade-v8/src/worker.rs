//! The worker process: V8 lives here, never in the host. It reads requests on stdin, runs each in
//! a fresh context (prepared in advance), and writes the outcome on its private stdout. Host calls
//! made by the guest are relayed to the parent over the same pipes.
//!
//! Limits inside the worker: the deadline (the waiting thread cancels the task and frees the
//! context, which also stops uncancellable microtasks), the heap (V8's hard limit) and the rest
//! of the process's data segment (polled from /proc: ArrayBuffer backing stores are not on V8's
//! heap), with `RLIMIT_DATA` as a backstop. The parent kills a worker that stops answering.

use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_core::output::{Output, Stream};
use palisade_core::policy::{
    code_generation_denied, shared_memory_denied, wasm_denied, HostGlobal, Policy, ATOMICS_METHODS,
    DENIED_PREFIX, WASM_MEMBERS,
};
use palisade_core::primordials::{Capture, PRIMORDIALS};
use palisade_core::rng::{DeterministicClock, DeterministicRng};
use palisade_core::units::format_size;
use palisade_core::{
    is_stack_overflow, stack_position, ExecError, GuestError, Limit, Metrics, Mode, Outcome,
    Request, CONSOLE_JS, DETERMINISTIC_JS,
};

use crate::ffi::{self, Context, Handle, JsHandler, Task, Value};
use crate::modules;
use crate::protocol::{self, FromWorker, HostReply, ToWorker};

/// Set to `1` in a worker's environment.
pub(crate) const ENV_FLAG: &str = "PALISADE_V8_WORKER";
pub(crate) const ENV_LIB: &str = "PALISADE_V8_WORKER_LIB";
pub(crate) const ENV_ICU: &str = "PALISADE_V8_WORKER_ICU";
pub(crate) const ENV_FLAGS: &str = "PALISADE_V8_WORKER_FLAGS";
pub(crate) const ENV_RLIMIT: &str = "PALISADE_V8_WORKER_RLIMIT_DATA";
pub(crate) const ENV_PREPARED: &str = "PALISADE_V8_WORKER_PREPARED";

/// V8's own default JS stack (its `--stack-size`, 984 KiB), reported in stack-overflow messages.
pub(crate) const V8_DEFAULT_STACK: u64 = 984 << 10;

type Out = Arc<Mutex<BufWriter<std::fs::File>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The worker's entry point; returns the process exit status.
pub fn main() -> i32 {
    let Some(out) = ffi::private_stdout() else {
        return 2;
    };
    let out: Out = Arc::new(Mutex::new(BufWriter::new(out)));
    let fail = |message: String| {
        let _ = protocol::send(&mut *lock(&out), &FromWorker::Failed { message });
        1
    };
    let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let (Some(lib), Some(icu)) = (var(ENV_LIB), var(ENV_ICU)) else {
        return fail("the worker was started without a library path".into());
    };
    if let Some(bytes) = std::env::var(ENV_RLIMIT).ok().and_then(|v| v.parse().ok()) {
        ffi::limit_data(bytes);
    }
    let flags = std::env::var(ENV_FLAGS).unwrap_or_default();
    let version = match ffi::init(&lib, &icu, &flags) {
        Ok(v) => v,
        Err(e) => return fail(e.to_string()),
    };
    let prepared: usize = std::env::var(ENV_PREPARED)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .clamp(1, 16);
    let io = Arc::new(Io {
        out: out.clone(),
        replies: Mutex::new(None),
    });
    // The first context proves V8 works before we say so.
    let mut pool: Vec<Fresh> = Vec::new();
    match Fresh::new(&io) {
        Ok(f) => pool.push(f),
        Err(e) => return fail(format!("cannot prepare a V8 context: {e}")),
    }
    // Without a log (no memfd here) the worker still runs; only a run it cannot answer for
    // loses its output.
    let log = OUTPUT_LOG.get_or_init(|| ffi::OutputLog::create().ok());
    let output_log = log.as_ref().map(ffi::OutputLog::raw_fd);
    if protocol::send(
        &mut *lock(&out),
        &FromWorker::Ready {
            version,
            output_log,
        },
    )
    .is_err()
    {
        return 1;
    }
    let (run_tx, run_rx) = channel::<(Request, u64)>();
    let (reply_tx, reply_rx) = channel::<HostReply>();
    *lock(&io.replies) = Some(reply_rx);
    let reader = std::thread::Builder::new()
        .name("palisade-v8-stdin".into())
        .spawn(move || {
            let mut input = BufReader::new(std::io::stdin());
            while let Ok(Some(msg)) = protocol::recv::<ToWorker>(&mut input) {
                let sent = match msg {
                    ToWorker::Run(req, budget) => run_tx.send((*req, budget)).is_ok(),
                    ToWorker::HostReply(r) => reply_tx.send(r).is_ok(),
                };
                if !sent {
                    break;
                }
            }
        });
    if reader.is_err() {
        return 1;
    }
    loop {
        while pool.len() < prepared {
            match Fresh::new(&io) {
                Ok(f) => pool.push(f),
                Err(_) => break,
            }
        }
        let Ok((request, budget)) = run_rx.recv() else {
            return 0;
        };
        let fresh = match pool.pop() {
            Some(f) => Ok(f),
            None => Fresh::new(&io),
        };
        let (done, spent) = match fresh {
            Ok(fresh) => {
                let (done, spent) = run(fresh, &request, Duration::from_micros(budget));
                (done, Some(spent))
            }
            Err(e) => (
                FromWorker::Done {
                    outcome: Box::new(
                        Outcome::failed(
                            crate::NAME,
                            ExecError::internal(format!("cannot prepare a V8 context: {e}")),
                        )
                        .to_record(),
                    ),
                    recycle: true,
                    check_denied: None,
                },
                None,
            ),
        };
        if protocol::send(&mut *lock(&out), &done).is_err() {
            return 1;
        }
        if matches!(done, FromWorker::Done { recycle: true, .. }) {
            // The parent replaces this worker (and kills it): don't spend time tearing down a
            // context that may be wedged or huge.
            std::mem::forget(spent);
            while run_rx.recv().is_ok() {}
            return 0;
        }
        // Freeing terminates whatever still runs (an endless microtask included) and joins the
        // context's thread.
        drop(spent);
    }
}

/// The worker's pipes, shared with the mailbox handlers (host calls).
struct Io {
    out: Out,
    replies: Mutex<Option<Receiver<HostReply>>>,
}

impl Io {
    fn host_call(&self, op: &str, arg: &str, bytes: Option<Vec<u8>>) -> HostReply {
        let msg = FromWorker::HostCall {
            op: op.to_owned(),
            arg: arg.to_owned(),
            bytes,
        };
        if protocol::send(&mut *lock(&self.out), &msg).is_err() {
            return HostReply::Error {
                name: "Error".into(),
                message: "the host is gone".into(),
            };
        }
        match lock(&self.replies).as_ref().map(Receiver::recv) {
            Some(Ok(r)) => r,
            _ => HostReply::Error {
                name: "Error".into(),
                message: "the host is gone".into(),
            },
        }
    }
}

/// This worker's output log (`ffi::OutputLog`): every line the run's [`Output`] accepts is also
/// copied there, where the parent reads it if the worker cannot answer.
static OUTPUT_LOG: std::sync::OnceLock<Option<ffi::OutputLog>> = std::sync::OnceLock::new();

/// Per-run state the mailbox handler (on the isolate thread) reads and writes.
#[derive(Default)]
struct Shared {
    output: Output,
    /// Whether lines accepted now belong to a run the parent may still ask about: set when the
    /// run starts, cleared when its output is taken. A spent context can still print (a job
    /// queued by its last run) until it is freed, after the parent may have handed the worker
    /// its next run and cleared the log; such lines must not reach the log.
    logging: bool,
    denials: palisade_core::policy::Denials,
    rng: Option<DeterministicRng>,
    clock: Option<DeterministicClock>,
    pending: Vec<u16>,
    reply: Vec<u16>,
    settled: Option<Sender<()>>,
}

const OP_APPEND: i32 = 1;
const OP_COMMIT: i32 = 2;
const OP_PULL: i32 = 3;
const HDR: usize = 64;

fn hdr_get(buf: &[u8], i: usize) -> i32 {
    let b = &buf[i * 4..i * 4 + 4];
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn hdr_set(buf: &mut [u8], i: usize, v: i32) {
    buf[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
}

fn units(data: &[u8], n: usize) -> impl Iterator<Item = u16> + '_ {
    data[..n * 2]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
}

/// Writes the reply chunk starting at unit `from` into the data area; returns its length.
fn write_chunk(data: &mut [u8], reply: &[u16], from: usize) -> usize {
    let room = data.len() / 2;
    let chunk = &reply[from.min(reply.len())..];
    let n = chunk.len().min(room);
    for (i, u) in chunk[..n].iter().enumerate() {
        data[i * 2..i * 2 + 2].copy_from_slice(&u.to_le_bytes());
    }
    n
}

fn mailbox(shared: &Mutex<Shared>, io: &Io, buf: &mut [u8]) {
    if buf.len() < HDR + 4 {
        return;
    }
    let (hdr, data) = buf.split_at_mut(HDR);
    let op = hdr_get(hdr, 0);
    let tag = hdr_get(hdr, 1);
    let n = usize::try_from(hdr_get(hdr, 2))
        .unwrap_or(0)
        .min(data.len() / 2);
    let mut st = lock(shared);
    match op {
        OP_APPEND => st.pending.extend(units(data, n)),
        OP_COMMIT => {
            st.pending.extend(units(data, n));
            let msg = std::mem::take(&mut st.pending);
            let reply = message(&mut st, io, tag, &msg);
            match reply {
                None => hdr_set(hdr, 3, -1),
                Some(r) => {
                    let c = write_chunk(data, &r, 0);
                    hdr_set(hdr, 2, i32::try_from(c).unwrap_or(0));
                    hdr_set(hdr, 3, i32::try_from(r.len()).unwrap_or(i32::MAX));
                    st.reply = r;
                }
            }
            hdr_set(hdr, 5, i32::from(st.output.truncated()));
        }
        OP_PULL => {
            let from = usize::try_from(hdr_get(hdr, 1)).unwrap_or(0);
            let reply = std::mem::take(&mut st.reply);
            let c = write_chunk(data, &reply, from);
            hdr_set(hdr, 2, i32::try_from(c).unwrap_or(0));
            st.reply = reply;
        }
        _ => {}
    }
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn message(st: &mut Shared, io: &Io, tag: i32, msg: &[u16]) -> Option<Vec<u16>> {
    match tag {
        1 | 2 => {
            let stream = if tag == 1 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            let text = |o: &Output| match stream {
                Stream::Stdout => o.stdout().len(),
                Stream::Stderr => o.stderr().len(),
            };
            let (before, was_truncated) = (text(&st.output), st.output.truncated());
            st.output.write_line(stream, &String::from_utf16_lossy(msg));
            let log = OUTPUT_LOG.get().and_then(Option::as_ref);
            if let Some(log) = log.filter(|_| st.logging) {
                let all = match stream {
                    Stream::Stdout => st.output.stdout(),
                    Stream::Stderr => st.output.stderr(),
                };
                let added = all.get(before..).unwrap_or_default().as_bytes();
                let truncated = st.output.truncated();
                if !added.is_empty() || truncated != was_truncated {
                    log.append(stream == Stream::Stderr, added, truncated);
                }
            }
            None
        }
        3 => {
            st.denials.record(&String::from_utf16_lossy(msg));
            None
        }
        4 => {
            if let Some(tx) = &st.settled {
                let _ = tx.send(());
            }
            None
        }
        5 => Some(host_call(io, msg)),
        6 => {
            let v = st.rng.as_mut().map_or(0.0, DeterministicRng::next_f64);
            Some(utf16(&format!("{v:?}")))
        }
        7 => {
            let v = st.clock.as_mut().map_or(0, DeterministicClock::now_ms);
            Some(utf16(&v.to_string()))
        }
        _ => None,
    }
}

/// `op \0 <arg's length in UTF-16 units> \0 arg (u | b<latin-1 bytes>)` →
/// `s<string> | b<latin-1> | u | e<name>\0<message>`. The argument is counted, not
/// NUL-terminated: it may hold NULs, and split at one it would name another secret.
fn host_call(io: &Io, msg: &[u16]) -> Vec<u16> {
    let (op, arg, rest) = split_host_call(msg);
    let (op, arg) = (String::from_utf16_lossy(op), String::from_utf16_lossy(arg));
    let bytes = match rest.first() {
        Some(&b) if b == u16::from(b'b') => Some(rest[1..].iter().map(|u| *u as u8).collect()),
        _ => None,
    };
    let mut out = Vec::new();
    match io.host_call(&op, &arg, bytes) {
        HostReply::Str(s) => {
            out.push(u16::from(b's'));
            out.extend(s.encode_utf16());
        }
        HostReply::Bytes(b) => {
            out.push(u16::from(b'b'));
            out.extend(b.iter().map(|x| u16::from(*x)));
        }
        HostReply::Undefined => out.push(u16::from(b'u')),
        HostReply::Error { name, message } => {
            out.push(u16::from(b'e'));
            out.extend(name.encode_utf16());
            out.push(0);
            out.extend(message.encode_utf16());
        }
    }
    out
}

/// A host call's op, argument and the rest (see [`host_call`]); a malformed message (only the
/// prelude writes them) gives empty parts, which the host refuses as an unknown op.
fn split_host_call(msg: &[u16]) -> (&[u16], &[u16], &[u16]) {
    let nul = |s: &[u16]| s.iter().position(|u| *u == 0);
    let Some(a) = nul(msg) else {
        return (&[], &[], &[]);
    };
    let (op, tail) = (&msg[..a], &msg[a + 1..]);
    let Some(b) = nul(tail) else {
        return (&[], &[], &[]);
    };
    let len = String::from_utf16_lossy(&tail[..b]).parse::<usize>().ok();
    let body = &tail[b + 1..];
    match len.filter(|&n| n <= body.len()) {
        Some(n) => (op, &body[..n], &body[n..]),
        None => (&[], &[], &[]),
    }
}

/// The prelude's source, with its arguments: the primordials spec, the policy texts, and the
/// console, host and deterministic factories.
fn prelude_source() -> String {
    let spec: Vec<serde_json::Value> = PRIMORDIALS
        .iter()
        .map(|(k, p, how)| {
            serde_json::json!([
                k,
                p,
                match how {
                    Capture::Value => "value",
                    Capture::Getter => "get",
                }
            ])
        })
        .collect();
    let not_found = palisade_core::modules::not_found_message("\u{1}", "\u{2}");
    let (a, rest) = not_found.split_once('\u{1}').unwrap_or((&not_found, ""));
    let (b, c) = rest.split_once('\u{2}').unwrap_or((rest, ""));
    let text = serde_json::json!({
        "code": code_generation_denied(),
        "shared": shared_memory_denied(),
        "wasmDenied": wasm_denied(),
        "atomics": ATOMICS_METHODS,
        "wasm": WASM_MEMBERS,
        "notFound": [a, b, c],
    });
    format!(
        "({})({}, {},\n{}\n,\n{}\n,\n{}\n)\n//# sourceURL=palisade:prelude",
        include_str!("prelude.js").trim_end().trim_end_matches(';'),
        serde_json::Value::Array(spec),
        text,
        CONSOLE_JS.trim_end().trim_end_matches(';'),
        palisade_core::host_prelude_bound(),
        DETERMINISTIC_JS.trim_end().trim_end_matches(';'),
    )
}

fn prelude() -> &'static str {
    static SRC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SRC.get_or_init(prelude_source)
}

/// A context no guest code has touched, with the prelude installed.
struct Fresh {
    ctx: Context,
    dispatch: Handle,
    shared: Arc<Mutex<Shared>>,
}

fn wait(task: &Task) -> Result<Value, String> {
    task.rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "no answer from V8".to_owned())
}

impl Fresh {
    fn new(io: &Arc<Io>) -> Result<Fresh, String> {
        let ctx = Context::new().map_err(|e| e.to_string())?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (s, i) = (shared.clone(), io.clone());
        let handler = JsHandler::new(move |buf| mailbox(&s, &i, buf));
        let notify = ctx.callback(handler.clone()).map_err(|e| e.to_string())?;
        let init = match wait(&ctx.eval(prelude()).map_err(|e| e.to_string())?)? {
            Value::Object(100, h) => h,
            other => return Err(format!("the prelude failed: {other:?}")),
        };
        let argv = match wait(&ctx.eval("[]").map_err(|e| e.to_string())?)? {
            Value::Object(6, h) => h,
            other => return Err(format!("cannot make an argument list: {other:?}")),
        };
        ctx.push(&argv, &notify).map_err(|e| e.to_string())?;
        let dispatch = match wait(&ctx.call_with(&init, "", &argv).map_err(|e| e.to_string())?)? {
            Value::Object(100, h) => h,
            other => return Err(format!("the prelude's init failed: {other:?}")),
        };
        let mb = wait(
            &ctx.call(&dispatch, r#"{"op":"mailbox"}"#)
                .map_err(|e| e.to_string())?,
        )?;
        if !handler.attach(mb) {
            return Err("the prelude gave no mailbox".into());
        }
        Ok(Fresh {
            ctx,
            dispatch,
            shared,
        })
    }
}

/// This process's anonymous resident size (resident less file-backed and shared pages) and data
/// segment in bytes (`/proc/self/statm`, fields 2 - 3 and 6).
/// Both include ArrayBuffer backing stores, which V8's heap limit does not see. A run's memory
/// is the larger of the two's growth: the data segment counts a buffer when it is allocated,
/// touched or not, but V8 keeps the address space of freed buffers and hands it to later ones,
/// so alone it missed a run that followed a bigger one in the same worker; resident pages are
/// given back when V8 frees a buffer, so their growth counts such a run again. Until
/// 2026-12-01 only the data segment was read: 500 buffers of 200 KB held live under a 16 MiB
/// limit ended `ok` with a receipt of 0 bytes after a run that had used 400 MB in that worker,
/// and `memory_limit` in a fresh one (`tests/hostile_memory.rs`).
fn footprint() -> [u64; 2] {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let mut fields = statm
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    let resident = fields.nth(1).unwrap_or(0);
    // File-backed pages (ICU's data, the library's code) are paged in on a worker's first uses
    // of a feature: not the guest's memory. Anonymous resident pages are.
    let shared = fields.next().unwrap_or(0);
    let data = fields.nth(2).unwrap_or(0);
    [resident.saturating_sub(shared) * 4096, data * 4096]
}

/// How much the data segment may grow during a run with this heap limit: the heap itself, V8's
/// overshoot past its limit (it is checked after a GC), and external buffers.
fn data_allowance(memory: u64) -> u64 {
    memory.saturating_mul(2).saturating_add(48 << 20)
}

#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Timeout,
    Memory,
}

struct Runner<'a> {
    request: &'a Request,
    ctx: &'a Context,
    start: Instant,
    deadline: Instant,
    /// [`footprint`] when the run started.
    base: [u64; 2],
    peak: u64,
    stop: Option<Stop>,
    /// Stopped while V8 may still be running guest code: the worker must be replaced (see
    /// [`Runner::cancel`]).
    wedged: bool,
}

/// How long a cancelled task has to end before its worker counts as wedged. Well inside the
/// parent's grace past the deadline (`pool::GRACE`).
const SETTLE: Duration = Duration::from_millis(10);

enum Waited {
    Value(Value),
    Stopped,
}

impl Runner<'_> {
    fn over_memory(&mut self) -> bool {
        let [resident, data] = footprint();
        let grown = resident
            .saturating_sub(self.base[0])
            .max(data.saturating_sub(self.base[1]));
        self.peak = self.peak.max(grown);
        grown > data_allowance(self.request.limits.memory) || self.ctx.hard_limit_reached()
    }

    /// Waits for a task under the deadline and the memory watch; on a stop, cancels it.
    fn wait(&mut self, task: &Task) -> Waited {
        let tick = Duration::from_millis(1);
        loop {
            if self.over_memory() {
                self.stop = Some(Stop::Memory);
                self.cancel(task);
                return Waited::Stopped;
            }
            let now = Instant::now();
            if now >= self.deadline {
                self.stop = Some(Stop::Timeout);
                self.cancel(task);
                return Waited::Stopped;
            }
            match task.rx.recv_timeout(tick.min(self.deadline - now)) {
                Ok(v) => {
                    if self.over_memory() {
                        self.stop = Some(Stop::Memory);
                        return Waited::Stopped;
                    }
                    return Waited::Value(v);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Waited::Value(Value::Error(0, "the task was dropped".into()))
                }
            }
        }
    }

    /// Cancels `task` and gives V8 a moment to end it. Termination takes effect only where V8
    /// checks for interrupts, and some builtins check nowhere: sorting or searching a sparse
    /// array of 2^30 elements (`sort`, `indexOf`, `toString`) runs on for minutes. Freeing the
    /// context then waits for it, so until 2026-12-02 the worker, put back into the pool, held
    /// the next run (any tenant's) until that one timed out too. A task that has not ended by
    /// [`SETTLE`] marks the worker wedged, and the parent replaces it.
    fn cancel(&mut self, task: &Task) {
        task.cancel();
        if task.rx.recv_timeout(SETTLE).is_err() {
            self.wedged = true;
        }
    }

    /// Waits for the settled signal under the deadline and the memory watch. Stopped here, the
    /// run has no task of its own to cancel and see end (pending work, a WebAssembly
    /// compilation included, may still be running), so the worker counts as wedged.
    fn wait_settled(&mut self, rx: &Receiver<()>) -> bool {
        loop {
            if self.over_memory() {
                self.stop = Some(Stop::Memory);
                self.wedged = true;
                return false;
            }
            let now = Instant::now();
            if now >= self.deadline {
                self.stop = Some(Stop::Timeout);
                self.wedged = true;
                return false;
            }
            match rx.recv_timeout(Duration::from_millis(1).min(self.deadline - now)) {
                Ok(()) => return true,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn limit_error(&self) -> Option<ExecError> {
        let limits = &self.request.limits;
        match self.stop {
            Some(Stop::Memory) => Some(ExecError::limit(
                Limit::Memory,
                limits.memory,
                Some(self.peak),
                format!(
                    "the memory limit of {} was exceeded",
                    format_size(limits.memory)
                ),
            )),
            Some(Stop::Timeout) => Some(ExecError::timeout(limits.timeout, self.start.elapsed())),
            None => None,
        }
    }
}

/// What the run evaluates: the script (rewritten) or the module graph (wrapped).
struct Program {
    file: String,
    /// Script source, or the main module's wrapper.
    main: String,
    /// Per wrapped module: the wrapper's prefix on its line 1 (see [`modules::Wrapped`]).
    prefixes: Vec<(String, Prefix)>,
    modules: serde_json::Map<String, serde_json::Value>,
    dyn_import: bool,
}

/// The wrapper's text before a module's first character, on the module's line 1.
#[derive(Debug, Clone, Copy)]
struct Prefix {
    /// In UTF-16 code units: V8's stack columns.
    utf16: u32,
    /// In characters: the caret of V8's parse report.
    chars: u32,
}

impl Prefix {
    fn of(w: &modules::Wrapped) -> Self {
        Prefix {
            utf16: w.column_offset,
            chars: w.char_offset,
        }
    }
}

fn program(req: &Request) -> Program {
    let file = req.file_name().to_owned();
    let mut prefixes = Vec::new();
    let mut table = serde_json::Map::new();
    let supplied: Vec<(String, &String)> = req
        .modules
        .iter()
        .map(|(k, v)| (palisade_core::modules::normalize_key(k), v))
        .filter(|(k, _)| req.policy.allows_module(k))
        .collect();
    for (name, src) in &supplied {
        if *name == file {
            continue;
        }
        let w = modules::wrap_module(src, name);
        prefixes.push((name.clone(), Prefix::of(&w)));
        table.insert(name.clone(), module_entry(&w));
    }
    let (main, dyn_import) = match req.mode {
        Mode::Script => {
            let (src, changed) = modules::rewrite_script(&req.source);
            (
                format!("{src}\n//# sourceURL={}", modules::source_url(&file)),
                changed,
            )
        }
        Mode::Module => {
            let w = modules::wrap_module(&req.source, &file);
            prefixes.push((file.clone(), Prefix::of(&w)));
            table.insert(file.clone(), module_entry(&w));
            (w.code, false)
        }
    };
    Program {
        file,
        main,
        prefixes,
        modules: table,
        dyn_import,
    }
}

/// What the prelude's loader gets for one module (see `modules`).
fn module_entry(w: &modules::Wrapped) -> serde_json::Value {
    serde_json::json!({
        "code": w.code,
        "async": w.is_async,
        "names": w.names,
        "deps": w.deps,
        "stars": w.stars,
        "checks": w.checks,
    })
}

fn run_config(req: &Request, prog: &Program) -> String {
    let policy: &Policy = &req.policy;
    let remove = policy.removed_globals();
    let input = serde_json::to_string(&req.input).unwrap_or_else(|_| "null".into());
    serde_json::json!({
        "op": "run",
        "module": req.mode == Mode::Module,
        "src": if req.mode == Mode::Script { prog.main.as_str() } else { "" },
        "file": prog.file,
        "modules": prog.modules,
        "remove": remove,
        "allowEval": policy.allow_eval,
        "allowShared": policy.allow_shared_memory,
        "allowWasm": policy.allow_wasm,
        "det": policy.deterministic.is_some(),
        "dynImport": if prog.dyn_import { modules::DYN_IMPORT } else { "" },
        "input": input,
        "inputGlobal": policy.allows_global(HostGlobal::Input),
        "resultLimit": req.limits.result,
    })
    .to_string()
}

/// A context a run has used: never reused, only freed (or abandoned with the worker).
struct Spent {
    _dispatch: Handle,
    _ctx: Context,
}

/// Runs one request in `fresh`; the caller frees the spent context after replying.
fn run(fresh: Fresh, req: &Request, budget: Duration) -> (FromWorker, Spent) {
    let Fresh {
        ctx,
        dispatch,
        shared,
    } = fresh;
    let start = Instant::now();
    let (settled_tx, settled_rx) = channel();
    {
        let mut st = lock(&shared);
        st.output = Output::new(req.limits.output);
        st.logging = true;
        st.denials.clear();
        st.rng = req
            .policy
            .deterministic
            .as_ref()
            .map(|d| DeterministicRng::new(d.seed));
        st.clock = req
            .policy
            .deterministic
            .as_ref()
            .map(DeterministicClock::new);
        st.settled = Some(settled_tx);
    }
    ctx.set_hard_limit(usize::try_from(req.limits.memory).unwrap_or(usize::MAX));
    let mut r = Runner {
        request: req,
        ctx: &ctx,
        start,
        deadline: start + budget,
        base: footprint(),
        peak: 0,
        stop: None,
        wedged: false,
    };
    let prog = program(req);
    let mut check_denied = None;
    let result = execute(
        &mut r,
        &dispatch,
        &prog,
        &shared,
        &settled_rx,
        &mut check_denied,
    );
    let result = match r.limit_error() {
        Some(e) => Err(e),
        None => result,
    };
    let recycle = r.stop == Some(Stop::Memory) || r.wedged || ctx.hard_limit_reached();
    let peak = r.peak;
    let (stdout, stderr, truncated) = {
        let mut st = lock(&shared);
        st.logging = false;
        std::mem::take(&mut st.output).into_parts()
    };
    let outcome = Outcome {
        result,
        stdout,
        stderr,
        truncated,
        metrics: Metrics {
            engine: crate::NAME.to_owned(),
            wall_us: 0,
            memory_bytes: peak,
            fuel_used: None,
        },
    };
    (
        FromWorker::Done {
            outcome: Box::new(outcome.to_record()),
            recycle,
            check_denied,
        },
        Spent {
            _dispatch: dispatch,
            _ctx: ctx,
        },
    )
}

fn execute(
    r: &mut Runner<'_>,
    dispatch: &Handle,
    prog: &Program,
    shared: &Mutex<Shared>,
    settled: &Receiver<()>,
    check_denied: &mut Option<String>,
) -> Result<serde_json::Value, ExecError> {
    let internal = |what: &str, v: Value| ExecError::internal(format!("{what}: {v:?}"));
    let cfg = run_config(r.request, prog);
    let task = r
        .ctx
        .call(dispatch, &cfg)
        .map_err(|e| ExecError::internal(e.to_string()))?;
    match r.wait(&task) {
        Waited::Stopped => return Err(stopped()),
        Waited::Value(Value::Str(s)) if s == "s" => {}
        Waited::Value(v) => return Err(task_failure(r, v).unwrap_or_else(|v| internal("run", v))),
    }
    loop {
        let task = r
            .ctx
            .call(dispatch, r#"{"op":"poll"}"#)
            .map_err(|e| ExecError::internal(e.to_string()))?;
        let state = match r.wait(&task) {
            Waited::Stopped => return Err(stopped()),
            Waited::Value(Value::Str(s)) => s,
            Waited::Value(v) => {
                return Err(task_failure(r, v).unwrap_or_else(|v| internal("poll", v)))
            }
        };
        let (kind, rest) = state.split_at(state.len().min(1));
        match kind {
            // `JSON.stringify` gave nothing (`undefined`, a function, a symbol): `null`, of no
            // size, as on the QuickJS engines (until 2026-12-01 v8 counted it as the 4 bytes of
            // `null`, so a result limit under 4 bytes failed it).
            "o" if rest.is_empty() => return Ok(serde_json::Value::Null),
            "o" => return palisade_core::result_from_json(rest, r.request.limits.result),
            // A text far over the limit, measured in the worker: `"<bytes> <depth>"`.
            "O" => {
                let mut parts = rest.split(' ').map(str::parse::<u64>);
                return match (parts.next(), parts.next()) {
                    (Some(Ok(total)), Some(Ok(depth))) => Err(palisade_core::result_over_limit(
                        total,
                        usize::try_from(depth).unwrap_or(usize::MAX),
                        r.request.limits.result,
                    )),
                    _ => Err(internal("poll", Value::Str(state.clone()))),
                };
            }
            "p" => {
                let policy = &r.request.policy;
                if policy.allow_wasm || policy.allow_shared_memory {
                    if !r.wait_settled(settled) {
                        return Err(stopped());
                    }
                    continue;
                }
                return Err(ExecError::never_settles(
                    r.request.limits.timeout,
                    r.start.elapsed(),
                ));
            }
            // A module graph has evaluated and its default export was called: poll again.
            "r" => continue,
            // The result's conversion failed: classified as on the QuickJS engines (until
            // 2026-12-02 a policy denial inside the guest's `toJSON` was `not_serializable`
            // here and `policy_denied` there).
            "n" => {
                let g = guest_error(rest, prog);
                return Err(palisade_core::classify_conversion_failure(g, |m| {
                    denied_here(m, shared, check_denied)
                }));
            }
            "e" => return Err(thrown(r, rest, prog, shared, check_denied)),
            _ => return Err(ExecError::internal(format!("unexpected state {state:?}"))),
        }
    }
}

/// Placeholder error for a stopped run; the runner's limit error replaces it.
fn stopped() -> ExecError {
    ExecError::internal("stopped")
}

/// A task that ended in an exception instead of returning a string: V8 terminated it.
fn task_failure(r: &mut Runner<'_>, v: Value) -> Result<ExecError, Value> {
    if r.ctx.hard_limit_reached() || matches!(v, Value::Error(202, _)) {
        r.stop = Some(Stop::Memory);
        return Ok(stopped());
    }
    Err(v)
}

#[derive(serde::Deserialize)]
struct Described {
    name: Option<String>,
    message: String,
    stack: Option<String>,
    parse: bool,
}

/// Drops the prelude's own frames and shifts module positions back to the module's lines.
fn clean_stack(stack: &str, prog: &Program) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in stack.lines() {
        if palisade_core::is_host_frame(line) || line.trim() == "at eval (<anonymous>)" {
            continue;
        }
        let mut l = Some(line.to_owned());
        for (file, prefix) in &prog.prefixes {
            // `None`: a frame in the wrapper's prologue (an import awaited, an export checked),
            // not the guest's code.
            l = l.and_then(|x| shift_columns(&x, file, prefix.utf16));
        }
        out.extend(l);
    }
    out.join("\n")
}

/// Shifts `file:1:COL` positions in one stack line back by `offset` columns: the wrapper's
/// prefix shares a module's first line. Other lines are where the guest wrote them. `None`: the
/// position is inside the prefix, so the frame is the wrapper's.
fn shift_columns(line: &str, file: &str, offset: u32) -> Option<String> {
    if offset == 0 || !line.contains(file) {
        return Some(line.to_owned());
    }
    let pat = format!("{file}:1:");
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(&pat) {
        // A frame names the file after `(` or `at `; anything else is the tail of a longer name.
        let whole = i == 0 || matches!(rest.as_bytes()[i - 1], b'(' | b' ');
        let after = &rest[i + pat.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..i + pat.len()]);
        match after[..digits].parse::<u32>() {
            Ok(n) if whole && digits > 0 => {
                if n <= offset {
                    return None;
                }
                out.push_str(&(n - offset).to_string());
            }
            _ => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    Some(out)
}

fn guest_error(desc: &str, prog: &Program) -> GuestError {
    let d: Described = serde_json::from_str(desc).unwrap_or(Described {
        name: None,
        message: desc.to_owned(),
        stack: None,
        parse: false,
    });
    let stack = d.stack.map(|s| clean_stack(&s, prog));
    let pos = stack.as_deref().and_then(|s| stack_position(s, &prog.file));
    GuestError {
        name: d.name,
        message: d.message,
        stack,
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
    }
}

fn thrown(
    r: &mut Runner<'_>,
    desc: &str,
    prog: &Program,
    shared: &Mutex<Shared>,
    check_denied: &mut Option<String>,
) -> ExecError {
    let parse = serde_json::from_str::<Described>(desc).is_ok_and(|d| d.parse);
    let guest = guest_error(desc, prog);
    if parse
        && guest.name.as_deref() == Some("SyntaxError")
        && !guest
            .stack
            .as_deref()
            .is_some_and(|s| s.contains(&format!("{}:", prog.file)))
    {
        return syntax_error(r, guest, prog);
    }
    if guest.message.starts_with(DENIED_PREFIX) && denied_here(&guest.message, shared, check_denied)
    {
        return ExecError::PolicyDenied {
            message: guest.message,
        };
    }
    // V8 refuses a backing store it cannot get (past its own maximum or the data limit): that
    // is the guest's memory use.
    if guest.name.as_deref() == Some("RangeError")
        && guest.message == "Array buffer allocation failed"
    {
        let limits = &r.request.limits;
        return ExecError::limit(
            Limit::Memory,
            limits.memory,
            None,
            format!(
                "the memory limit of {} was exceeded (an ArrayBuffer could not be allocated)",
                format_size(limits.memory)
            ),
        );
    }
    if is_stack_overflow(&guest) {
        let stack = r.request.limits.stack.unwrap_or(V8_DEFAULT_STACK);
        return palisade_core::stack_overflow_error(&guest.message, stack);
    }
    ExecError::Exception(guest)
}

/// Whether `message`, a policy denial's text, is one this worker threw (its prelude's globals);
/// otherwise it is left in `check_denied` for the parent, which knows the host calls' denials.
fn denied_here(message: &str, shared: &Mutex<Shared>, check_denied: &mut Option<String>) -> bool {
    if lock(shared).denials.contains(message) {
        return true;
    }
    *check_denied = Some(message.to_owned());
    false
}

/// A parse failure: V8's eval error has no position, so compile the text once more as a script
/// (it fails to parse again, so nothing runs) and read the line and caret from the report.
fn syntax_error(r: &mut Runner<'_>, mut guest: GuestError, prog: &Program) -> ExecError {
    let shift = prog
        .prefixes
        .iter()
        .find(|(f, _)| *f == prog.file)
        .map_or(0, |(_, p)| p.chars);
    if let Ok(task) = r.ctx.eval(&prog.main) {
        if let Waited::Value(Value::Error(201, text)) = r.wait(&task) {
            if let Some((line, caret)) = parse_report(&text) {
                let mut col = if line == 1 {
                    caret.saturating_sub(shift).max(1)
                } else {
                    caret
                };
                let mut line = line;
                // Past the guest's last line is the text the host appended (a script's
                // `sourceURL` comment, a module wrapper's closing `})`): the parse ran out of
                // the guest's input, which is where QuickJS reports it. Until 2026-12-01 v8 put
                // `1 +` at 2:24, and `export default (1 +` at "Unexpected token '}'" 2:1.
                // (A module's stray closer cannot be what V8 saw there: `wrap_module` makes it
                // fail where it stands.) A source that ends in `\r` ends its last line at the
                // end of input for V8, which joins that `\r` with the appended `\n`.
                let end = end_of_input(&r.request.source);
                if (line, col) >= end {
                    (line, col) = end;
                    guest.message = "Unexpected end of input".into();
                }
                guest.line = Some(line);
                guest.column = Some(col);
                guest.stack = Some(format!(
                    "{}: {}\n    at {}:{}:{}",
                    guest.name.as_deref().unwrap_or("SyntaxError"),
                    guest.message,
                    prog.file,
                    line,
                    col
                ));
            }
        }
    }
    ExecError::Syntax(guest)
}

/// The line and column just past the end of `source` (lines end at JS line terminators; columns
/// count characters, as [`parse_report`]'s do).
fn end_of_input(source: &str) -> (u32, u32) {
    let mut line = 1u32;
    let mut col = 1u32;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => {
                line = line.saturating_add(1);
                col = 1;
            }
            _ => col = col.saturating_add(1),
        }
    }
    (line, col)
}

/// `<name>:LINE: message\n<source line>\n   ^^^` → (LINE, caret column).
fn parse_report(text: &str) -> Option<(u32, u32)> {
    let mut lines = text.lines();
    let first = lines.next()?;
    let mut fields = first.split(':');
    let line = fields.find_map(|f| f.trim().parse::<u32>().ok())?;
    let _source = lines.next();
    let caret = lines.next().unwrap_or("");
    let col = caret
        .find('^')
        .map_or(1, |i| caret[..i].chars().count() + 1);
    Some((line, u32::try_from(col).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_end_of_input_is_the_guests_not_the_appended_text() {
        assert_eq!(end_of_input(""), (1, 1));
        assert_eq!(end_of_input("1 +"), (1, 4));
        assert_eq!(end_of_input("a\r\nb\rc\u{2028}d\u{2029}éf\n"), (6, 1));
        assert_eq!(end_of_input("x\n(ab"), (2, 4));
        assert_eq!(end_of_input("1 +\r"), (2, 1));
    }

    #[test]
    fn reports_give_line_and_caret() {
        let t = "<anonymous>:3: SyntaxError: Unexpected token ')'\n  return ) ;\n         ^\n\nSyntaxError: x\n";
        assert_eq!(parse_report(t), Some((3, 10)));
    }

    #[test]
    fn module_first_line_columns_shift_back() {
        let shift = |l| shift_columns(l, "m.mjs", 40);
        assert_eq!(
            shift("    at f (m.mjs:1:49) m.mjs:10:1 m.mjs:11:60").as_deref(),
            Some("    at f (m.mjs:1:9) m.mjs:10:1 m.mjs:11:60")
        );
        assert_eq!(
            shift("    at async m.mjs:1:40"),
            None,
            "the wrapper's own frame"
        );
        assert_eq!(shift("at a.mjs:1:50").as_deref(), Some("at a.mjs:1:50"));
        assert_eq!(shift("at (am.mjs:1:5)").as_deref(), Some("at (am.mjs:1:5)"));
    }

    #[test]
    fn host_call_arguments_may_hold_nuls() {
        let msg: Vec<u16> = "secrets.get\u{0}13\u{0}API_TOKEN\u{0}zzzu"
            .encode_utf16()
            .collect();
        let (op, arg, rest) = split_host_call(&msg);
        assert_eq!(String::from_utf16_lossy(op), "secrets.get");
        assert_eq!(String::from_utf16_lossy(arg), "API_TOKEN\u{0}zzz");
        assert_eq!(String::from_utf16_lossy(rest), "u");
        for bad in ["no-nul", "op\u{0}x\u{0}arg", "op\u{0}9\u{0}short"] {
            let msg: Vec<u16> = bad.encode_utf16().collect();
            assert_eq!(split_host_call(&msg), (&[][..], &[][..], &[][..]), "{bad}");
        }
    }

    #[test]
    fn mailbox_round_trip() {
        let mut data = vec![0u8; 8];
        let reply: Vec<u16> = "hello".encode_utf16().collect();
        assert_eq!(write_chunk(&mut data, &reply, 0), 4);
        assert_eq!(write_chunk(&mut data, &reply, 4), 1);
        assert_eq!(units(&data, 1).next(), Some(u16::from(b'o')));
    }
}
