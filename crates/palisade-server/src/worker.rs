//! The worker process: reads one JSON job per line on stdin, runs it in a fresh sandbox context,
//! writes one JSON reply per line on stdout. Executions never run in the server process, so a
//! worker that crashes fails only its own execution.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use palisade::{AccessContext, EngineKind, ExecError, Outcome, OutcomeRecord, Request, Sandbox};
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
        let outcome = match serde_json::from_str::<Job>(&line) {
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

/// The worker's `main`: serves jobs on stdin/stdout.
pub fn worker_main(options: &WorkerOptions) -> Result<(), WorkerError> {
    if let Some(nice) = options.nice {
        // Only ever lowers the priority (a higher value), which needs no privilege.
        rustix::process::setpriority_process(None, nice)
            .map_err(|e| WorkerError::Setup(format!("cannot set the CPU priority: {e}")))?;
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    serve_jobs(options, stdin, std::io::BufWriter::new(stdout))
}

/// Decodes a worker's reply line.
pub fn decode_reply(line: &str) -> Outcome {
    match serde_json::from_str::<OutcomeRecord>(line) {
        Ok(r) => r.into(),
        Err(e) => Outcome::failed("", ExecError::internal(format!("worker: bad reply: {e}"))),
    }
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
