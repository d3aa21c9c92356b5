//! A pool of worker processes behind a bounded queue.
//!
//! Each slot owns one worker process and takes jobs from the shared queue one at a time. A
//! worker that dies, answers garbage or overruns its job's deadline is killed: that job alone
//! fails with `internal`, and the slot starts a fresh worker at once. An idle slot also watches
//! its worker, so one that exits between jobs (killed from outside, crashed) is reaped and
//! replaced then, not when the next job comes: `live` (and so `/readyz`) counts processes that
//! exist. Workers are also recycled after a number of executions or past a resident-memory
//! ceiling.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use palisade::{ExecError, Outcome};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::worker::{decode_reply, Job};

/// A worker's resident size is read after every this many jobs (and see [`RSS_CHECK_AFTER`]).
const RSS_CHECK_EVERY: u64 = 64;
/// ... and after any job whose own peak memory reached this.
const RSS_CHECK_AFTER: u64 = 16 << 20;

/// An idle slot whose worker could not be started tries again after this long, doubling up to
/// [`RESTART_PAUSE_MAX`], so a lane recovers by itself (and `/readyz` with it) once workers can
/// start again, without spinning on a command that fails at once.
const RESTART_PAUSE_MIN: Duration = Duration::from_millis(100);
/// See [`RESTART_PAUSE_MIN`].
const RESTART_PAUSE_MAX: Duration = Duration::from_secs(5);

/// How to start and retire workers.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// `[program, args...]`.
    pub command: Vec<String>,
    /// Worker processes.
    pub workers: usize,
    /// Jobs that may wait.
    pub queue: usize,
    /// Recycle after this many jobs.
    pub max_executions: u64,
    /// Recycle past this resident size, in bytes.
    pub max_memory: u64,
    /// The lane's name in logs and metrics.
    pub lane: &'static str,
    /// The longest a job may wait for a worker; past it, it is refused as if the queue were
    /// full (so a client is answered, with 429, rather than left waiting behind slow jobs).
    pub max_wait: Duration,
    /// Jobs a worker may hold at once: 1 sends a job only when the worker is idle; 2 also sends
    /// the next while one runs (only when every other slot is busy too), so the worker finds it
    /// waiting instead of sleeping until the server answers and writes again.
    pub pipeline: usize,
}

/// A job line longer than this is never sent ahead: it might not fit in the pipe while the
/// worker is busy, and the write would then wait on the job ahead instead of its deadline.
const PIPELINE_MAX_LINE: usize = 16 << 10;

/// Counters the pool keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Workers replaced after a crash, a bad reply or a missed deadline.
    pub restarts: AtomicU64,
    /// Workers retired by the execution count or memory ceiling.
    pub recycles: AtomicU64,
    /// Workers started in all.
    pub spawned: AtomicU64,
    /// Workers running now (started and not yet stopped).
    pub live: AtomicU64,
}

struct Task {
    job: Job,
    /// The server-side deadline for the reply: past it, the worker is killed.
    deadline: Duration,
    reply: oneshot::Sender<Result<Outcome, Busy>>,
    /// When it was queued: a job that waited past `max_wait` is refused, not run.
    queued: std::time::Instant,
    /// Its function has shown it is quick: a job may be sent to the worker behind it.
    proven: bool,
    claim: Arc<Claim>,
}

/// Whose a queued job is: [`WAITING`], then whichever came first, [`TAKEN`] by a slot or
/// [`ABANDONED`] by its client (refused after `max_wait`, see [`Queued::outcome`], or dropped).
/// Deciding it once, atomically, is what keeps a job its client was refused from running
/// anyway, and what counts the pool's waiting jobs exactly.
#[derive(Debug)]
struct Claim {
    state: AtomicU8,
    /// The pool's jobs still [`WAITING`], shared by all its jobs.
    waiting: Arc<AtomicUsize>,
}

impl Claim {
    /// Moves the job from [`WAITING`] to `to`, and out of the waiting count; `Err` with the
    /// state it had if it was not waiting.
    fn settle(&self, to: u8) -> Result<(), u8> {
        self.state
            .compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
            })
    }
}

/// A queued job no slot has taken yet.
const WAITING: u8 = 0;
/// A slot took the job: it runs (or is answered by the slot).
const TAKEN: u8 = 1;
/// Given up (its client answered 429 after `max_wait`, or its `Queued` dropped): it never runs.
const ABANDONED: u8 = 2;

/// The queue holds up to this many times `queue` jobs: those waiting (at most `queue`; beyond
/// that a job is refused at once), and those their clients gave up on, which stay until a slot
/// dequeues and drops them. Until 2026-12-02 the given-up ones counted against `queue`: behind
/// workers held by long runs, refused jobs filled it, and every new job was refused at once
/// (in 6 ms, with no one waiting) until a worker came free.
const QUEUE_ROOM: usize = 4;

impl Task {
    /// Answers the task with a host failure (`internal`) after `held` of a worker's time, the
    /// receipt's time (the lanes use it).
    fn fail(self, message: impl Into<String>, held: Duration) {
        self.answer(ExecError::internal(message), held);
    }

    /// Answers a run whose worker did not reply by the job's deadline (its timeout plus the
    /// API's grace) and was stopped, on an engine the worker had already served: the run
    /// outlived its wall-clock limit, which only a native builtin that polls no deadline can do
    /// (a long `join` on quickjs, say). That is the guest's `timeout`, as `palisade run`'s
    /// watchdog reports it, not a host failure.
    fn overran(self, held: Duration) {
        let timeout = match &self.job {
            Job::Run { request, .. } | Job::Check { request, .. } => request.limits.timeout,
        };
        let error = ExecError::timeout_because(
            timeout,
            held,
            "a native builtin ran past it; the worker was stopped",
        );
        self.answer(error, held);
    }

    /// Answers the task with `error` after `held` of a worker's time, the receipt's time.
    fn answer(self, error: ExecError, held: Duration) {
        let mut outcome = Outcome::failed(self.job.engine(), error);
        outcome.metrics.wall_us = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        let _ = self.reply.send(Ok(outcome));
    }
}

/// The queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the execution queue is full")]
pub struct Busy;

/// Why a queued job has no outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// No worker took it within the pool's `max_wait`: it is not run.
    #[error("the execution waited too long for a worker")]
    Busy,
    /// The pool stopped without answering (it is shutting down).
    #[error("the worker pool dropped an execution")]
    Dropped,
}

/// A job in a pool's queue; [`Queued::outcome`] waits for it.
#[derive(Debug)]
pub struct Queued {
    rx: oneshot::Receiver<Result<Outcome, Busy>>,
    claim: Arc<Claim>,
    /// When the job has waited `max_wait` (`None`: a wait too long to represent).
    until: Option<tokio::time::Instant>,
}

impl Queued {
    /// The job's outcome, or [`Refused::Busy`] once it has waited the pool's `max_wait` for a
    /// worker. The wait is timed here, not only when a slot dequeues the job: behind workers
    /// held by long runs a slot may take it much later (a client waited 14.5 s for its 429 with
    /// a 5 s `queue_timeout_ms`). A job refused here never runs: the slot that dequeues it later
    /// finds it abandoned. A job a slot took in time runs, and its client waits for the result.
    pub async fn outcome(mut self) -> Result<Outcome, Refused> {
        let waited = match self.until {
            Some(until) => tokio::time::timeout_at(until, &mut self.rx).await,
            None => Ok((&mut self.rx).await),
        };
        let answer = match waited {
            Ok(answer) => answer,
            Err(_) => {
                if self.claim.settle(ABANDONED).is_ok() {
                    return Err(Refused::Busy);
                }
                // A slot took it just in time: it runs, bounded by its own deadline.
                (&mut self.rx).await
            }
        };
        match answer {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(Busy)) => Err(Refused::Busy),
            Err(_) => Err(Refused::Dropped),
        }
    }
}

/// A job whose `Queued` is dropped unanswered is given up: it stops counting as waiting at
/// once, and never runs. (The API waits in a task of its own, which a client that disconnects
/// does not drop: its run goes on and is recorded, see `api::execute_and_record`.)
impl Drop for Queued {
    fn drop(&mut self) {
        let _ = self.claim.settle(ABANDONED);
    }
}

/// A running pool. Dropping it (after in-flight jobs finished) stops the workers.
#[derive(Debug, Clone)]
pub struct Pool {
    tx: mpsc::Sender<TaskBox>,
    stats: Arc<PoolStats>,
    max_wait: Duration,
    /// At most this many jobs wait for a worker.
    queue: usize,
    /// Jobs waiting for a worker now (see [`Claim`]).
    waiting: Arc<AtomicUsize>,
}

// `Task` holds a oneshot sender, which is Debug; wrap for the channel's Debug bound.
struct TaskBox(Task);

impl std::fmt::Debug for TaskBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Task")
    }
}

impl Pool {
    /// Starts the slots (workers spawn in the background).
    pub fn start(options: PoolOptions) -> Pool {
        let queue = options.queue.max(1);
        let (tx, rx) = mpsc::channel::<TaskBox>(queue * QUEUE_ROOM);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(PoolStats::default());
        let options = Arc::new(options);
        for slot in 0..options.workers.max(1) {
            tokio::spawn(run_slot(slot, rx.clone(), options.clone(), stats.clone()));
        }
        Pool {
            tx,
            stats,
            max_wait: options.max_wait,
            queue,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Queues a job; [`Queued::outcome`] yields its outcome, or refuses it once it has waited
    /// past `max_wait`. `Err(Busy)` when the queue is full.
    /// `proven`: the job's function has shown it is quick, so another job may be sent to the
    /// worker behind it (see [`PoolOptions::pipeline`]).
    pub fn submit(&self, job: Job, deadline: Duration, proven: bool) -> Result<Queued, Busy> {
        let (reply, rx) = oneshot::channel();
        let queued = std::time::Instant::now();
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let claim = Arc::new(Claim {
            state: AtomicU8::new(WAITING),
            waiting: self.waiting.clone(),
        });
        let sent = self.tx.try_send(TaskBox(Task {
            job,
            deadline,
            reply,
            queued,
            proven,
            claim: claim.clone(),
        }));
        if sent.is_err() {
            // The room is full of jobs given up on: refused, and never waited.
            let _ = claim.settle(ABANDONED);
            return Err(Busy);
        }
        Ok(Queued {
            rx,
            claim,
            until: queued
                .checked_add(self.max_wait)
                .map(tokio::time::Instant::from_std),
        })
    }

    /// Jobs waiting for a worker (not those their clients gave up on).
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// The pool's counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Workers running now.
    pub fn live(&self) -> u64 {
        self.stats.live.load(Ordering::Relaxed)
    }
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    runs: u64,
    /// Engines this worker has answered a job on: built, so a job on one starts at once.
    engines_ready: std::collections::HashSet<String>,
    /// A job sent ahead could not be written whole in time: the worker's input is garbage
    /// from there on, so it is replaced once the running job's reply is read.
    poisoned: bool,
}

impl Worker {
    fn spawn(command: &[String]) -> std::io::Result<Worker> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty worker command"))?;
        let mut child = Command::new(program)
            .args(args)
            // Guest code runs in UTC (see palisade-cli's main): never the host's zone.
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            runs: 0,
            engines_ready: Default::default(),
            poisoned: false,
        })
    }

    async fn call(&mut self, job: &Job, deadline: Duration) -> Result<Outcome, String> {
        self.send(&job_line(job)?, deadline).await?;
        self.recv(deadline).await
    }

    /// Writes one job line, waiting at most `deadline`.
    async fn send(&mut self, line: &str, deadline: Duration) -> Result<(), String> {
        let write = async {
            self.stdin.write_all(line.as_bytes()).await?;
            self.stdin.flush().await
        };
        match tokio::time::timeout(deadline, write).await {
            Err(_) => Err(MISSED_DEADLINE.into()),
            Ok(Err(e)) => Err(format!("the worker failed: {e}")),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads the reply to the oldest job sent, waiting at most `deadline`.
    async fn recv(&mut self, deadline: Duration) -> Result<Outcome, String> {
        let read = async {
            let mut reply = String::new();
            let n = self.stdout.read_line(&mut reply).await?;
            Ok::<_, std::io::Error>((n, reply))
        };
        match tokio::time::timeout(deadline, read).await {
            Err(_) => Err(MISSED_DEADLINE.into()),
            Ok(Err(e)) => Err(format!("the worker failed: {e}")),
            Ok(Ok((0, _))) => Err("the worker process exited during the execution".into()),
            Ok(Ok((_, reply))) => Ok(decode_reply(&reply)),
        }
    }

    /// Resident bytes, where the platform says.
    fn rss(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * 4096)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

const MISSED_DEADLINE: &str = "the worker missed its deadline and was stopped";

fn job_line(job: &Job) -> Result<String, String> {
    let mut line = serde_json::to_string(job).map_err(|e| e.to_string())?;
    line.push('\n');
    Ok(line)
}

/// Starts a worker and waits for its first answer (a syntax check), so a worker counts as live
/// (and `/readyz` as ready) only once it can run jobs.
async fn start_worker(slot: usize, options: &PoolOptions, stats: &PoolStats) -> Option<Worker> {
    let lane = options.lane;
    let mut w = match Worker::spawn(&options.command) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(slot, lane, error = %e, "cannot start a worker");
            return None;
        }
    };
    stats.spawned.fetch_add(1, Ordering::Relaxed);
    let ping = Job::Check {
        engine: "quickjs".into(),
        request: palisade::Request::script("0"),
    };
    match w.call(&ping, Duration::from_secs(30)).await {
        Ok(o) if o.is_ok() => {
            stats.live.fetch_add(1, Ordering::Relaxed);
            w.engines_ready.insert(ping.engine().to_owned());
            Some(w)
        }
        Ok(o) => {
            tracing::error!(slot, lane, outcome = %o.to_json(), "a new worker failed its first job");
            w.stop().await;
            None
        }
        Err(message) => {
            tracing::error!(slot, lane, %message, "a new worker did not answer");
            w.stop().await;
            None
        }
    }
}

async fn run_slot(
    slot: usize,
    rx: Arc<Mutex<mpsc::Receiver<TaskBox>>>,
    options: Arc<PoolOptions>,
    stats: Arc<PoolStats>,
) {
    let lane = options.lane;
    let mut worker = start_worker(slot, &options, &stats).await;
    // A worker due for recycling keeps serving while its successor starts in the background:
    // starting one takes tens of ms, and a slot that waited for it stalled its share of the
    // traffic (a visible step in p99 under load, with workers recycled every few seconds).
    let mut successor: Option<tokio::task::JoinHandle<Option<Worker>>> = None;
    // Written to the worker and not answered yet: the first is running, any other waits in
    // the pipe. Only the first can have started, so when a worker is lost the others are
    // moved to `ready` and sent again to its replacement.
    let mut sent: VecDeque<Task> = VecDeque::new();
    // Taken from the queue (or given back by a lost worker) and not written yet.
    let mut ready: VecDeque<Task> = VecDeque::new();
    loop {
        if sent.is_empty() {
            let task = match ready.pop_front() {
                Some(t) => t,
                None => {
                    let next = next_task(slot, &rx, &mut worker, &mut successor, &options, &stats);
                    match next.await {
                        Some(t) => t,
                        None => break,
                    }
                }
            };
            let Some(task) = admit(task, &options) else {
                continue;
            };
            // Nothing is in flight: the moment to switch to a successor that is ready.
            if let Some(next) = successor.take_if(|s| s.is_finished()) {
                // Finished: awaiting it returns at once. A successor that failed to start
                // leaves the old worker serving; the next job past the threshold tries again.
                if let Ok(Some(next)) = next.await {
                    retire_in_background(worker.replace(next), &stats);
                }
            }
            // A worker that died while idle (killed from outside) is replaced before it is
            // given a job, so the job does not fail for it. (`next_task` replaces one that dies
            // while the slot waits; this catches one that died as the job arrived.)
            if let Some(w) = worker.as_mut() {
                if !matches!(w.child.try_wait(), Ok(None)) {
                    tracing::warn!(slot, lane, "an idle worker exited; restarting it");
                    stats.restarts.fetch_add(1, Ordering::Relaxed);
                    retire(&mut worker, &stats).await;
                }
            }
            if worker.is_none() {
                worker = take_successor(&mut successor).await;
            }
            if worker.is_none() {
                worker = start_worker(slot, &options, &stats).await;
            }
            let Some(w) = worker.as_mut() else {
                task.fail("no worker process could be started", Duration::ZERO);
                continue;
            };
            let line = match job_line(&task.job) {
                Ok(l) => l,
                Err(e) => {
                    task.fail(format!("cannot encode the job: {e}"), Duration::ZERO);
                    continue;
                }
            };
            if let Err(message) = w.send(&line, task.deadline).await {
                tracing::warn!(slot, lane, %message, "worker failed; restarting it");
                stats.restarts.fetch_add(1, Ordering::Relaxed);
                retire(&mut worker, &stats).await;
                task.fail(message, Duration::ZERO);
                continue;
            }
            sent.push_back(task);
        }
        // The front job runs from about now (it was just sent, or sent ahead and the reply
        // before it was just read): its deadline counts from here, whatever sending the next
        // job ahead below waits.
        let called = std::time::Instant::now();
        // Send the next job ahead while this one runs: only with room, with no successor
        // waiting to take over (it switches in when nothing is in flight), only behind jobs of
        // functions proven quick (behind a new function's first runs, which may be hostile, a
        // job sent ahead could wait out a whole timeout), and when every other slot is busy (an
        // idle one waits for the queue holding its lock).
        if sent.len() < options.pipeline && successor.is_none() && sent.iter().all(|t| t.proven) {
            let next = match ready.pop_front() {
                Some(t) => Some(t),
                None => match rx.try_lock() {
                    Ok(mut q) => q.try_recv().ok().map(|TaskBox(t)| t),
                    Err(_) => None,
                },
            };
            if let Some(task) = next.and_then(|t| admit(t, &options)) {
                match job_line(&task.job) {
                    Ok(line) if line.len() <= PIPELINE_MAX_LINE => {
                        if let Some(w) = worker.as_mut() {
                            // Fits in a pipe's default buffer, so the write should not wait on
                            // the worker; bounded by the running job's deadline all the same
                            // (a pipe can be smaller). If it fails or times out, the worker is
                            // treated as lost when the running job's reply is read (a timed-out
                            // write leaves the line half-written: that worker is not reused).
                            let until = sent.front().map_or(task.deadline, |t| t.deadline);
                            if w.send(&line, until).await.is_err() {
                                w.poisoned = true;
                            }
                            sent.push_back(task);
                        } else {
                            ready.push_front(task);
                        }
                    }
                    _ => ready.push_front(task),
                }
            }
        }
        let Some(w) = worker.as_mut() else {
            // Unreachable in practice (a job is only sent to a worker); give the jobs back.
            give_back(&mut sent, &mut ready);
            continue;
        };
        let Some(deadline) = sent.front().map(|t| t.deadline) else {
            continue;
        };
        match w.recv(deadline.saturating_sub(called.elapsed())).await {
            Ok(outcome) => {
                let Some(done) = sent.pop_front() else {
                    continue;
                };
                let outcome_memory = outcome.metrics.memory_bytes;
                w.engines_ready.insert(done.job.engine().to_owned());
                let _ = done.reply.send(Ok(outcome));
                w.runs += 1;
                if w.poisoned {
                    tracing::warn!(
                        slot,
                        lane,
                        "a job could not be sent ahead; replacing the worker"
                    );
                    stats.restarts.fetch_add(1, Ordering::Relaxed);
                    retire(&mut worker, &stats).await;
                    // None of them started: the next worker runs them.
                    give_back(&mut sent, &mut ready);
                    continue;
                }
                // Reading /proc after every job was 5% of the server's CPU under load: read it
                // after a worker's first job, every RSS_CHECK_EVERY jobs, and after any job that
                // used a lot of memory (the only kind that can move a worker's RSS much at once).
                let check = w.runs == 1
                    || w.runs % RSS_CHECK_EVERY == 0
                    || outcome_memory >= RSS_CHECK_AFTER;
                let over_memory = check && w.rss().is_some_and(|r| r > options.max_memory);
                if (w.runs >= options.max_executions || over_memory) && successor.is_none() {
                    tracing::info!(slot, lane, runs = w.runs, over_memory, "recycling worker");
                    stats.recycles.fetch_add(1, Ordering::Relaxed);
                    let (options, stats) = (options.clone(), stats.clone());
                    successor = Some(tokio::spawn(async move {
                        start_worker(slot, &options, &stats).await
                    }));
                }
            }
            Err(message) => {
                tracing::warn!(slot, lane, %message, "worker failed; restarting it");
                let held = called.elapsed();
                let lost = sent.pop_front();
                // The guest's own overrun only if the job was running guest code: a run (not a
                // syntax check) on an engine this worker has already served, so the deadline
                // did not pass while the worker built that engine (an empty compile cache).
                let overran = message == MISSED_DEADLINE
                    && lost.as_ref().is_some_and(|t| {
                        matches!(t.job, Job::Run { .. }) && w.engines_ready.contains(t.job.engine())
                    });
                retire(&mut worker, &stats).await;
                // Only the first job can have started: the others go to the next worker.
                give_back(&mut sent, &mut ready);
                if let Some(lost) = lost {
                    // `held`: how long the worker had the job, before stopping it.
                    if overran {
                        lost.overran(held);
                    } else {
                        lost.fail(message, held);
                    }
                }
                stats.restarts.fetch_add(1, Ordering::Relaxed);
                // Without a successor, the loop's next turn starts a replacement at once: for a
                // given-back job, or in `next_task` before it waits for one. Until 2026-11-30 it
                // started only when a job came, so a lane whose workers were all lost this way
                // (a native builtin overrunning its deadline) had none, and `/readyz` said
                // "starting" until a job came, which a load balancer honouring it never sent.
                worker = take_successor(&mut successor).await;
            }
        }
    }
    retire(&mut worker, &stats).await;
    let mut next = take_successor(&mut successor).await;
    retire(&mut next, &stats).await;
}

/// What woke an idle slot.
enum Idle {
    /// The next job, or `None` once the queue is closed.
    Task(Option<TaskBox>),
    /// The slot's worker exited.
    WorkerExited,
    /// The successor being started is done (`None`: it failed to start).
    Successor(Option<Worker>),
    /// The pause after a failed start is over.
    Retry,
}

/// Waits for the next job while keeping the slot's worker alive. A worker that exits while the
/// slot is idle (killed from outside, crashed, the OOM killer) is reaped and replaced at once:
/// until 2026-11-30 that was noticed only when the slot took its next job, so the dead process
/// stayed a zombie, `live` and `/readyz` counted it, and a lane whose workers were all gone had
/// none until a job came. A slot without a worker starts one, and tries again after a pause that
/// doubles, up to [`RESTART_PAUSE_MAX`], while starts fail. A successor that finishes starting
/// while the slot is idle takes over then (nothing is in flight). `None` once the queue is closed.
async fn next_task(
    slot: usize,
    rx: &Mutex<mpsc::Receiver<TaskBox>>,
    worker: &mut Option<Worker>,
    successor: &mut Option<tokio::task::JoinHandle<Option<Worker>>>,
    options: &PoolOptions,
    stats: &PoolStats,
) -> Option<Task> {
    let lane = options.lane;
    let mut pause = RESTART_PAUSE_MIN;
    loop {
        if worker.is_none() && successor.is_none() {
            *worker = start_worker(slot, options, stats).await;
        }
        let watch = async {
            // All three are cancel safe: `Child::wait`, a `JoinHandle` and a sleep.
            match (worker.as_mut(), successor.as_mut()) {
                (Some(w), Some(s)) => tokio::select! {
                    _ = w.child.wait() => Idle::WorkerExited,
                    next = s => Idle::Successor(next.ok().flatten()),
                },
                (Some(w), None) => {
                    let _ = w.child.wait().await;
                    Idle::WorkerExited
                }
                (None, Some(s)) => Idle::Successor(s.await.ok().flatten()),
                (None, None) => {
                    tokio::time::sleep(pause).await;
                    Idle::Retry
                }
            }
        };
        // Waiting for the queue's lock and then for a job is cancel safe too: a job is never
        // lost when the worker's exit wins.
        let idle = tokio::select! {
            biased;
            next = async { rx.lock().await.recv().await } => Idle::Task(next),
            idle = watch => idle,
        };
        match idle {
            Idle::Task(next) => return next.map(|TaskBox(t)| t),
            Idle::WorkerExited => {
                tracing::warn!(slot, lane, "an idle worker exited; restarting it");
                stats.restarts.fetch_add(1, Ordering::Relaxed);
                // Already reaped by `wait`; this stops counting it.
                retire(worker, stats).await;
            }
            Idle::Successor(next) => {
                *successor = None;
                if let Some(next) = next {
                    retire_in_background(worker.replace(next), stats);
                }
            }
            Idle::Retry => pause = (pause * 2).min(RESTART_PAUSE_MAX),
        }
    }
}

/// Moves the jobs written to a worker that will not run them back to the front of `ready`, in
/// their order.
fn give_back(sent: &mut VecDeque<Task>, ready: &mut VecDeque<Task>) {
    while let Some(t) = sent.pop_back() {
        ready.push_front(t);
    }
}

/// The successor being started, once it is (`None` if there is none or it failed to start).
async fn take_successor(
    successor: &mut Option<tokio::task::JoinHandle<Option<Worker>>>,
) -> Option<Worker> {
    successor.take()?.await.ok().flatten()
}

/// Whether a task taken from the queue (or given back by a lost worker) is still wanted: its
/// client is waiting, did not give up on it after `max_wait` (see [`Queued::outcome`]), and it
/// has not waited past `max_wait` (then it is refused, as if the queue had been full). Taking it
/// is final: from here its client waits for this slot's answer.
fn admit(task: Task, options: &PoolOptions) -> Option<Task> {
    if task.reply.is_closed() {
        return None;
    }
    // A task given back by a lost worker was taken already (by this slot).
    if task.claim.settle(TAKEN) == Err(ABANDONED) {
        return None;
    }
    if task.queued.elapsed() > options.max_wait {
        let _ = task.reply.send(Err(Busy));
        return None;
    }
    Some(task)
}

/// Stops a replaced worker without holding up the slot, and stops counting it as live.
fn retire_in_background(worker: Option<Worker>, stats: &PoolStats) {
    if let Some(w) = worker {
        stats.live.fetch_sub(1, Ordering::Relaxed);
        tokio::spawn(w.stop());
    }
}

/// Stops the slot's worker, if it has one, and stops counting it as live.
async fn retire(worker: &mut Option<Worker>, stats: &PoolStats) {
    if let Some(w) = worker.take() {
        stats.live.fetch_sub(1, Ordering::Relaxed);
        w.stop().await;
    }
}
