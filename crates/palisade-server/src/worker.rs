//! The worker process: reads one JSON job per line on stdin, runs it in a fresh sandbox context,
//! writes one JSON reply per line on stdout. Executions never run in the server process, so a
//! worker that crashes fails only its own execution.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use palisade::{AccessContext, EngineKind, ExecError, Outcome, OutcomeRecord, Request, Sandbox};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::storage::{open_storage, StorageAudit};

/// One job for a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Job {
    /// Run the request as `tenant` (and `function`), recording secret reads under
    /// `execution_id`.
    Run {
        /// The engine's name.
        engine: String,
        /// The request.
        request: Request,
        /// The tenant.
        tenant: String,
        /// The deployed function, if any.
        function: Option<String>,
        /// The execution id.
        execution_id: String,
    },
    /// Check that the request's source parses (see [`Sandbox::check_syntax`]); the reply is an
    /// ok outcome with a `null` value, or the syntax error.
    Check {
        /// The engine's name.
        engine: String,
        /// The request.
        request: Request,
    },
}

impl Job {
    /// The engine the job names (as given: it may not be a known engine).
    pub fn engine(&self) -> &str {
        match self {
            Job::Run { engine, .. } | Job::Check { engine, .. } => engine,
        }
    }
}

/// What a worker needs besides its jobs.
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// The encrypted secret store, if secrets are served (the master key comes from
    /// `PALISADE_MASTER_KEY`).
    pub secrets: Option<PathBuf>,
    /// The database (a SQLite path or a `postgres://` URL, as in the config's `database`)
    /// whose `audit` table receives secret-access records.
    pub audit_db: Option<PathBuf>,
    /// Unused contexts each engine keeps ready (see [`palisade::SandboxBuilder::prewarm`]).
    pub prewarm: usize,
    /// The CPU priority (`nice` value) to take at start; the slow lane's workers run lower.
    pub nice: Option<i32>,
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The secret store or audit database could not be opened.
    #[error("{0}")]
    Setup(String),
    /// Standard input or output failed.
    #[error("worker i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves jobs from `input` to `output` until end of input.
pub fn serve_jobs(
    options: &WorkerOptions,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<(), WorkerError> {
    let mut services = palisade::HostServices::new();
    if let Some(path) = &options.secrets {
        let store = palisade::MasterKey::from_env()
            .and_then(|key| palisade::FileSecretStore::open(path, &key))
            .map_err(|e| WorkerError::Setup(e.to_string()))?;
        let audit: Arc<dyn palisade::AuditSink> = match &options.audit_db {
            Some(db) => Arc::new(StorageAudit(
                open_storage(db).map_err(|e| WorkerError::Setup(e.to_string()))?,
            )),
            None => Arc::new(palisade::MemoryAudit::default()),
        };
        services = services.secrets(Arc::new(store), audit);
    }
    let mut sandboxes: HashMap<EngineKind, Result<Sandbox, palisade::BuildError>> = HashMap::new();
    let prewarm = options.prewarm;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        // The job's `request.input` is two levels down.
        let outcome = match from_json::<Job>(line.as_bytes(), MAX_VALUE_DEPTH + 2) {
            Err(e) => Outcome::failed(
                "",
                ExecError::internal(format!("worker: malformed job: {e}")),
            ),
            Ok(job) => run_job(job, &services, prewarm, &mut sandboxes),
        };
        let mut text = outcome.to_json();
        text.push('\n');
        output.write_all(text.as_bytes())?;
        output.flush()?;
    }
    Ok(())
}

fn run_job(
    job: Job,
    services: &palisade::HostServices,
    prewarm: usize,
    sandboxes: &mut HashMap<EngineKind, Result<Sandbox, palisade::BuildError>>,
) -> Outcome {
    let kind: EngineKind = match job.engine().parse() {
        Ok(k) => k,
        Err(message) => return Outcome::failed("", ExecError::InvalidRequest { message }),
    };
    let sandbox = sandboxes.entry(kind).or_insert_with(|| {
        Sandbox::builder()
            .engine(kind)
            .host_services(services.clone())
            .prewarm(prewarm)
            .build()
    });
    let sandbox = match sandbox {
        Ok(s) => s,
        Err(e) => return e.to_outcome(kind),
    };
    match job {
        Job::Run {
            request,
            tenant,
            function,
            execution_id,
            ..
        } => sandbox.run_as(
            &request,
            AccessContext {
                tenant,
                function,
                execution_id,
            },
        ),
        Job::Check { request, .. } => {
            let mut outcome = Outcome::failed(kind.as_str(), ExecError::internal(""));
            outcome.result = sandbox
                .check_syntax(&request)
                .map(|()| serde_json::Value::Null);
            outcome
        }
    }
}

/// The worker's `main`: serves jobs on stdin/stdout, and ends itself if the server that started
/// it is gone (see [`exit_with_parent`]).
pub fn worker_main(options: &WorkerOptions) -> Result<(), WorkerError> {
    exit_with_parent();
    if let Some(nice) = options.nice {
        // Only ever lowers the priority (a higher value), which needs no privilege.
        rustix::process::setpriority_process(None, nice)
            .map_err(|e| WorkerError::Setup(format!("cannot set the CPU priority: {e}")))?;
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    serve_jobs(options, stdin, std::io::BufWriter::new(stdout))
}

/// How often a worker looks whether the server that started it is still there.
const PARENT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Ends this process as soon as its parent (the server) is gone. The server kills a worker whose
/// run overruns its deadline, because a thread in native builtins QuickJS does not interrupt
/// (`for (;;) a.indexOf(1)` over a large array: seconds to minutes) cannot be stopped from inside; until
/// 2026-11-30 a worker whose server was killed (`kill -9`, a crash, the OOM killer) went on with
/// such a run at 100% CPU for minutes, re-parented to PID 1. An orphan's parent id changes (to
/// init or a subreaper), which a thread of its own sees while the main thread is busy, at the
/// cost of one `getppid` per [`PARENT_POLL`]. Watching standard input for its end instead would
/// race the job loop for its lines, or hand every job over between threads (a wake-up per job
/// costs a worker more CPU than a quick job), and would end a worker fed by a pipe that closes
/// after its last job. The worker ends the way the server would have ended it, with `SIGKILL`:
/// nothing more of the run, and no exit handlers run while the main thread is inside an engine.
fn exit_with_parent() {
    let parent = std::os::unix::process::parent_id();
    let watcher = std::thread::Builder::new()
        .name("palisade-worker-parent".into())
        .stack_size(64 << 10)
        .spawn(move || loop {
            std::thread::sleep(PARENT_POLL);
            if std::os::unix::process::parent_id() != parent {
                let me = rustix::process::getpid();
                let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
                std::process::exit(3);
            }
        });
    // Without the thread the worker still serves; it just outlives a server that dies.
    if let Err(e) = watcher {
        eprintln!("palisade worker: cannot watch the server process: {e}");
    }
}

/// Decodes a worker's reply line.
pub fn decode_reply(line: &str) -> Outcome {
    // The reply's `value` is one level down.
    match from_json::<OutcomeRecord>(line.as_bytes(), MAX_VALUE_DEPTH + 1) {
        Ok(r) => r.into(),
        Err(e) => Outcome::failed("", ExecError::internal(format!("worker: bad reply: {e}"))),
    }
}

/// The deepest value the service carries: inputs and results nested up to the levels the
/// contract converts. The JSON texts that carry one (a request body, a job, a reply, a stored
/// outcome) are allowed this plus their own levels around it.
pub(crate) const MAX_VALUE_DEPTH: usize = palisade::MAX_RESULT_DEPTH;

/// Texts nested at most this deep are parsed as serde_json does by default, on the caller's
/// stack (under its recursion limit of 128).
const SHALLOW_DEPTH: usize = 100;

/// The stack a deeper parse runs on. serde_json recurses once per level: measured on
/// serde_json 1.0.154, a job nested 1,002 levels needs about 390 KiB in a release build and
/// 1.6 MiB in a debug one, more than what is left of a tokio thread's 2 MiB.
const DEEP_STACK: usize = 8 << 20;

/// Parses JSON text nested at most `max_depth` levels (a deeper text is refused with an error,
/// before any parsing). serde_json refuses anything past 128 levels unless its recursion limit
/// is disabled, and then nothing bounds its recursion but the stack: so the depth is measured
/// first, and a text deeper than [`SHALLOW_DEPTH`] is parsed without the limit on a thread of
/// its own with [`DEEP_STACK`]. Until 2026-11-30 results and inputs nested 126 to 1,000 levels
/// deep, valid by the contract, failed in the service as `internal` ("recursion limit
/// exceeded"), while `palisade run` returned them.
pub(crate) fn from_json<T: DeserializeOwned + Send>(
    text: &[u8],
    max_depth: usize,
) -> Result<T, serde_json::Error> {
    use serde::de::Error as _;
    let depth = palisade::json_depth(text);
    if depth > max_depth {
        return Err(serde_json::Error::custom(format!(
            "nested {depth} levels deep, deeper than the {max_depth} accepted here"
        )));
    }
    if depth <= SHALLOW_DEPTH {
        return serde_json::from_slice(text);
    }
    let parse = || {
        let mut de = serde_json::Deserializer::from_slice(text);
        de.disable_recursion_limit();
        let value = T::deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    };
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("palisade-deep-json".into())
            .stack_size(DEEP_STACK)
            .spawn_scoped(scope, parse)
            .map_err(|e| serde_json::Error::custom(format!("cannot start a thread: {e}")))?;
        parser
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_in_outcomes_out() {
        let jobs = [
            serde_json::json!({"op": "run", "engine": "quickjs", "request": {"source": "input * 2", "input": 21},
                "tenant": "t", "function": null, "execution_id": "e1"}),
            serde_json::json!({"op": "check", "engine": "quickjs", "request": {"source": "let x = ;"}}),
            serde_json::json!({"op": "check", "engine": "quickjs", "request": {"source": "for(;;){}"}}),
            serde_json::json!({"op": "run", "engine": "nope", "request": {"source": "1"},
                "tenant": "t", "function": null, "execution_id": "e2"}),
        ];
        let mut input = String::new();
        for j in &jobs {
            input.push_str(&j.to_string());
            input.push('\n');
        }
        input.push_str("not json\n");
        let mut out = Vec::new();
        serve_jobs(&WorkerOptions::default(), input.as_bytes(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let outs: Vec<Outcome> = text.lines().map(decode_reply).collect();
        assert_eq!(outs.len(), 5);
        assert_eq!(outs[0].result, Ok(serde_json::json!(42)));
        let e = outs[1].to_record().error.unwrap();
        assert_eq!(e.kind, palisade::ErrorKind::SyntaxError);
        assert_eq!((e.line, e.column.is_some()), (Some(1), true));
        assert!(outs[2].is_ok());
        assert_eq!(
            outs[3].error_kind(),
            Some(palisade::ErrorKind::InvalidRequest)
        );
        assert_eq!(outs[4].error_kind(), Some(palisade::ErrorKind::Internal));
    }
}
