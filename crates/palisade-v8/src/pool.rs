//! Worker processes, seen from the host: spawning (exec, never fork), handing out idle ones,
//! relaying host calls, the host-side deadline watchdog, and replacing workers that died, hit a
//! memory limit or timed out.

use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, BufWriter, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_core::{ExecError, HostCalls, Limit, Outcome, Request};

use crate::protocol::{self, FromWorker, HostReply, ToWorker};
use crate::worker;
use crate::Located;

/// How long past the deadline the host waits for a worker before killing it.
const GRACE: Duration = Duration::from_millis(35);
/// How long a worker may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle workers kept per stack size.
const MAX_IDLE: usize = 8;
/// The worker's data-segment backstop (`RLIMIT_DATA`): V8 reserves ~1 GiB at start; the per-run
/// watch stops guests long before this.
const RLIMIT_DATA: u64 = 24 << 30;

type Key = Option<u64>;

/// Stack, in KiB, V8 gets beyond the guest's limit for the prelude's frames (see `spawn`).
const PRELUDE_STACK_KIB: u64 = 32;

#[derive(Debug)]
pub(crate) struct Pool {
    located: Located,
    prepared: usize,
    spare: bool,
    version: String,
    idle: Arc<Mutex<HashMap<Key, Vec<Worker>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One worker process.
#[derive(Debug)]
struct Worker {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    rx: Receiver<FromWorker>,
    stderr: Arc<Mutex<Stderr>>,
    /// The worker's output log, where a run it cannot answer for still left its output.
    log: Option<crate::ffi::OutputLog>,
}

/// What a worker wrote to stderr, kept for the report of its death: the end of it, and V8's
/// last fatal-error block.
#[derive(Debug, Default)]
struct Stderr {
    /// The last [`Stderr::TAIL`] bytes.
    tail: VecDeque<u8>,
    /// Whether the tail lost its start (so its first line is a fragment).
    cut: bool,
    /// The line being written.
    line: Vec<u8>,
    /// The lines of V8's last fatal-error block (`# Fatal process out of memory: ...`), which a
    /// long C stack trace after it pushes out of the tail. Until 2026-12-02 only the tail was
    /// kept, so a regexp compile that ran V8 out of memory, with 40 frames of trace, was
    /// reported as `internal` instead of `memory_limit`.
    fatal: VecDeque<String>,
}

impl Stderr {
    const TAIL: usize = 4096;
    /// The longest line kept, and the most lines of a fatal block.
    const LINE: usize = 512;
    const FATAL_LINES: usize = 4;

    fn push(&mut self, bytes: &[u8]) {
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(Self::TAIL);
        self.tail.drain(..excess);
        self.cut |= excess > 0;
        for &b in bytes {
            if b != b'\n' {
                if self.line.len() < Self::LINE {
                    self.line.push(b);
                }
                continue;
            }
            let line = String::from_utf8_lossy(&self.line).into_owned();
            self.line.clear();
            // V8 frames a fatal error in `#` lines; the block's first words say what it was.
            let text = line.trim().trim_start_matches('#').trim();
            if text.is_empty() {
                continue;
            }
            if text.starts_with("Fatal") {
                self.fatal.clear();
            } else if self.fatal.is_empty() || !line.trim_start().starts_with('#') {
                continue;
            }
            if self.fatal.len() < Self::FATAL_LINES {
                self.fatal.push_back(text.to_owned());
            }
        }
    }

    /// The fatal block, then the end of the output (without stack frames, which are paths,
    /// nor the fatal block's own `#` lines).
    fn report(&self) -> String {
        let tail =
            String::from_utf8_lossy(&self.tail.iter().copied().collect::<Vec<u8>>()).into_owned();
        let tail = match tail.split_once('\n') {
            Some((_, whole)) if self.cut => whole,
            _ => &tail,
        };
        self.fatal
            .iter()
            .map(String::as_str)
            .chain(
                tail.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('/') && !l.starts_with('#'))
                    .take(6),
            )
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    fn spawn(located: &Located, stack: Key, prepared: usize) -> Result<(Worker, String), String> {
        let exe = match std::env::var_os(crate::WORKER_ENV) {
            Some(p) => std::path::PathBuf::from(p),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find the current executable: {e}"))?,
        };
        // V8's default platform, with its background threads: concurrent TurboFan compilation
        // and concurrent/parallel GC are what make V8 the fast tier (V8 benchmark suite v7:
        // 0.92x node 24 with `--single-threaded`, 1.13x without, measured interleaved in one
        // run). The worker is a process of its own, so the extra threads touch nothing else;
        // cancellation, the heap limit and the memory watch behave the same (the v8 tests run
        // with this setting). `--single-threaded-gc` alone crashes V8 14.4 at start.
        let mut flags = String::new();
        if let Some(bytes) = stack {
            // Plus room for the prelude's own frames under the guest's (the run wrapper, and a
            // host call's encoding): at `--stack 64KiB` before 2026-12-01 every `crypto` call
            // overflowed at depth 0 on v8 only. V8 has one limit for both, so the guest may use
            // the extra too: plain recursion goes about 400 frames deeper at every limit (1,123
            // against 714 at 64 KiB), within how far stack depths already differ between
            // engines.
            flags.push_str(&format!(
                "--stack-size={}",
                (bytes / 1024).max(64) + PRELUDE_STACK_KIB
            ));
        }
        let mut child = Command::new(&exe)
            // Guest code runs in UTC on every engine, never in the host's zone (V8 reads `TZ`).
            .env("TZ", "UTC")
            .env(worker::ENV_FLAG, "1")
            .env(worker::ENV_LIB, &located.lib)
            .env(worker::ENV_ICU, &located.icu)
            .env(worker::ENV_FLAGS, flags)
            .env(worker::ENV_RLIMIT, RLIMIT_DATA.to_string())
            .env(worker::ENV_PREPARED, prepared.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a V8 worker ({}): {e}", exe.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the V8 worker has no pipes".into());
        };
        let tail = Arc::new(Mutex::new(Stderr::default()));
        let t = tail.clone();
        let _ = std::thread::Builder::new()
            .name("palisade-v8-stderr".into())
            .spawn(move || {
                let mut stderr = stderr;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    lock(&t).push(&buf[..n]);
                }
            });
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("palisade-v8-reader".into())
            .spawn(move || {
                let mut r = BufReader::new(stdout);
                while let Ok(Some(m)) = protocol::recv::<FromWorker>(&mut r) {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        let mut w = Worker {
            child,
            stdin: BufWriter::new(stdin),
            rx,
            stderr: tail,
            log: None,
        };
        match w.rx.recv_timeout(START_TIMEOUT) {
            Ok(FromWorker::Ready {
                version,
                output_log,
            }) => {
                // Without it (no /proc here, say) only a run the worker cannot answer for loses
                // its output, as every such run did until 2026-12-02.
                w.log =
                    output_log.and_then(|fd| crate::ffi::OutputLog::open(w.child.id(), fd).ok());
                Ok((w, version))
            }
            Ok(FromWorker::Failed { message }) => Err(format!("V8 cannot start: {message}")),
            Ok(_) => Err("the V8 worker sent an unexpected message".into()),
            Err(_) => Err(format!("the V8 worker did not start: {}", w.death())),
        }
    }

    /// Before a run: the log holds nothing of an earlier one.
    fn clear_log(&self) {
        if let Some(log) = &self.log {
            log.clear();
        }
    }

    /// The outcome of a run the worker could not answer for: `error`, with the output the run
    /// had written.
    fn unanswered(&self, error: ExecError, request: &Request) -> Outcome {
        let mut outcome = Outcome::failed(crate::NAME, error);
        if let Some(log) = &self.log {
            (outcome.stdout, outcome.stderr, outcome.truncated) = log.read(request.limits.output);
        }
        outcome
    }

    /// Why the worker is gone: its exit status and the end of its stderr.
    fn death(&mut self) -> String {
        let _ = self.child.kill();
        let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
        // Give the stderr thread a moment to collect the last words.
        std::thread::sleep(Duration::from_millis(5));
        format!("{status}; {}", lock(&self.stderr).report())
    }
}

impl Pool {
    pub(crate) fn new(located: Located, prewarm: usize) -> Result<Pool, String> {
        let prepared = prewarm.clamp(1, 16);
        let (w, version) = Worker::spawn(&located, None, prepared)?;
        let pool = Pool {
            located,
            prepared,
            spare: prewarm > 0,
            version,
            idle: Arc::new(Mutex::new(HashMap::new())),
        };
        pool.put_back(None, w);
        Ok(pool)
    }

    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    fn put_back(&self, key: Key, w: Worker) {
        let mut idle = lock(&self.idle);
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE {
            list.push(w);
        }
    }

    fn checkout(&self, key: Key) -> Result<Worker, ExecError> {
        if let Some(w) = lock(&self.idle).get_mut(&key).and_then(Vec::pop) {
            return Ok(w);
        }
        Worker::spawn(&self.located, key, self.prepared)
            .map(|(w, _)| w)
            .map_err(ExecError::internal)
    }

    /// Keeps one idle default worker ready in the background (when pre-warming is on).
    fn replenish(&self) {
        if !self.spare {
            return;
        }
        if lock(&self.idle).get(&None).is_some_and(|l| !l.is_empty()) {
            return;
        }
        let (located, prepared, idle) = (self.located.clone(), self.prepared, self.idle.clone());
        let _ = std::thread::Builder::new()
            .name("palisade-v8-spawn".into())
            .spawn(move || {
                if let Ok((w, _)) = Worker::spawn(&located, None, prepared) {
                    let mut idle = lock(&idle);
                    let list = idle.entry(None).or_default();
                    if list.len() < MAX_IDLE {
                        list.push(w);
                    }
                }
            });
    }

    pub(crate) fn execute(
        &self,
        request: &Request,
        host: &dyn HostCalls,
        start: Instant,
    ) -> Result<Outcome, ExecError> {
        let key = request.limits.stack;
        let mut w = self.checkout(key)?;
        w.clear_log();
        let budget = |start: Instant| {
            let left = request.limits.timeout.saturating_sub(start.elapsed());
            u64::try_from(left.as_micros()).unwrap_or(u64::MAX)
        };
        if protocol::send(
            &mut w.stdin,
            &ToWorker::Run(Box::new(request.clone()), budget(start)),
        )
        .is_err()
        {
            // An idle worker that died: try once with a new one.
            drop(w);
            w = Worker::spawn(&self.located, key, self.prepared)
                .map(|(w, _)| w)
                .map_err(ExecError::internal)?;
            w.clear_log();
            protocol::send(
                &mut w.stdin,
                &ToWorker::Run(Box::new(request.clone()), budget(start)),
            )
            .map_err(|e| ExecError::internal(format!("cannot reach the V8 worker: {e}")))?;
        }
        let deadline = start + request.limits.timeout + GRACE;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match w.rx.recv_timeout(wait) {
                Ok(FromWorker::HostCall { op, arg, bytes }) => {
                    let reply = HostReply::from(host.call(&op, &arg, bytes.as_deref()));
                    if protocol::send(&mut w.stdin, &ToWorker::HostReply(reply)).is_err() {
                        let why = w.death();
                        self.replenish();
                        return Ok(w.unanswered(died(&why), request));
                    }
                }
                Ok(FromWorker::Done {
                    outcome,
                    recycle,
                    check_denied,
                }) => {
                    let mut outcome = Outcome::from(*outcome);
                    if let Some(message) = check_denied {
                        if host.denied(&message) {
                            outcome.result = Err(ExecError::PolicyDenied { message });
                        }
                    }
                    if recycle || outcome_needs_new_worker(&outcome) {
                        drop(w);
                        self.replenish();
                    } else {
                        self.put_back(key, w);
                    }
                    return Ok(outcome);
                }
                Ok(_) => {
                    drop(w);
                    self.replenish();
                    return Err(ExecError::internal(
                        "the V8 worker sent an unexpected message",
                    ));
                }
                Err(RecvTimeoutError::Timeout) => {
                    let timeout = ExecError::timeout(request.limits.timeout, start.elapsed());
                    let _ = w.child.kill();
                    let outcome = w.unanswered(timeout, request);
                    drop(w);
                    self.replenish();
                    return Ok(outcome);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let why = w.death();
                    let outcome = w.unanswered(died_or_oom(&why, request), request);
                    drop(w);
                    self.replenish();
                    return Ok(outcome);
                }
            }
        }
    }
}

/// After an internal error, the worker is not trusted any more.
fn outcome_needs_new_worker(o: &Outcome) -> bool {
    o.error_kind() == Some(palisade_core::ErrorKind::Internal)
}

fn died(why: &str) -> ExecError {
    ExecError::internal(format!("the V8 worker died: {why}"))
}

/// V8 aborts the process on some out-of-memory shapes even under its heap limit; those are the
/// guest's memory use, so they are reported as `memory_limit`.
fn died_or_oom(why: &str, request: &Request) -> ExecError {
    let oom = [
        "out of memory",
        "invalid table size",
        "invalid size error",
        "Allocation failed",
    ];
    if oom.iter().any(|s| why.contains(s)) {
        let limit = request.limits.memory;
        return ExecError::limit(
            Limit::Memory,
            limit,
            None,
            format!(
                "the memory limit of {} was exceeded (V8 ran out of memory)",
                palisade_core::units::format_size(limit)
            ),
        );
    }
    died(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// V8's fatal block survives the C stack trace after it, however long, and leads the
    /// report; the classification then sees the out-of-memory words.
    #[test]
    fn a_fatal_block_outlives_a_long_stack_trace() {
        let mut stderr = Stderr::default();
        stderr.push(b"\n<--- Last few GCs --->\n\n\n\n#\n# Fatal process out of memory: RegExp");
        stderr.push(b"Compiler\n#\n==== C stack trace ===============================\n\n");
        for i in 0..200 {
            stderr.push(format!("    /x/libmini_racer.so(+0x{i:x}) [0x7f4be1e4482b]\n").as_bytes());
        }
        stderr.push(b"Received signal 5 TRAP_BRKPT 7f0b5b7d4d9f\n");
        let report = stderr.report();
        assert_eq!(
            report,
            "Fatal process out of memory: RegExpCompiler | Received signal 5 TRAP_BRKPT 7f0b5b7d4d9f"
        );
        let request = Request::script("1");
        let e = died_or_oom(&report, &request);
        assert_eq!(e.kind(), palisade_core::ErrorKind::MemoryLimit, "{e}");
        // A fatal error's message lines are kept with it, up to four; a later block replaces it.
        let mut stderr = Stderr::default();
        stderr.push(b"#\n# Fatal error in ../../src/x.cc, line 1\n# Check failed: y.\n#\n");
        assert_eq!(
            stderr.report(),
            "Fatal error in ../../src/x.cc, line 1 | Check failed: y."
        );
        stderr.push(b"\n# Fatal process out of memory: Zone\n");
        assert_eq!(stderr.report(), "Fatal process out of memory: Zone");
    }
}
