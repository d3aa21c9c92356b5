//! `palisade serve`: Palisade as an HTTP computation service.
//!
//! The server (axum on tokio) authenticates each request to a tenant, admits it into a bounded
//! queue, and hands it to a pool of worker processes (`palisade worker`), which run it in a
//! fresh sandbox context and answer with the same outcome JSON the CLI's `--json` prints.
//! Functions, execution records and the secret-access audit log live in SQLite or PostgreSQL.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = palisade_server::Config::parse(r#"
//!     listen = "127.0.0.1:0"
//!     database = ":memory:"
//!     worker_command = ["palisade", "worker"]
//! "#)?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! println!("listening on {}", listener.local_addr()?);
//! palisade_server::serve(config, listener, palisade_server::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod api;
pub mod ceiling;
pub mod config;
pub mod door;
pub mod lanes;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod recorder;
pub mod storage;
pub mod worker;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use ceiling::{CeilingError, FetchRules, MaxLimits};
pub use config::{ApiKey, Config, ConfigFileError};
pub use storage::{open_storage, PostgresStorage};
pub use storage::{SqliteStorage, Storage, StorageError};
pub use worker::{worker_main, WorkerOptions};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The listener failed.
    #[error("server i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The worker command for `config`: `worker_command`, or this executable's `worker`
/// subcommand, with the secret store and audit database appended.
pub fn worker_command(config: &Config) -> Result<Vec<String>, std::io::Error> {
    let mut cmd = match &config.worker_command {
        Some(c) if !c.is_empty() => c.clone(),
        _ => vec![
            std::env::current_exe()?.display().to_string(),
            "worker".to_owned(),
        ],
    };
    if config.prewarm > 0 {
        cmd.push("--prewarm".into());
        cmd.push(config.prewarm.to_string());
    }
    if let Some(s) = &config.secrets {
        cmd.push("--secrets".into());
        cmd.push(s.display().to_string());
        if config.database.as_os_str() != ":memory:" {
            cmd.push("--audit-db".into());
            cmd.push(config.database.display().to_string());
        }
    }
    Ok(cmd)
}

/// Serves until `shutdown` resolves, then stops taking connections, lets every accepted request
/// finish (its execution completes or times out), and stops the workers.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = config.database.clone();
    let storage = tokio::task::spawn_blocking(move || open_storage(&db))
        .await
        .map_err(std::io::Error::other)??;
    let command = worker_command(&config)?;
    let lane = |name: &'static str, workers, queue, command, pipeline| {
        pool::Pool::start(pool::PoolOptions {
            command,
            workers,
            queue,
            max_executions: config.worker_max_executions,
            max_memory: config.worker_max_memory,
            lane: name,
            max_wait: Duration::from_millis(config.queue_timeout_ms),
            pipeline,
        })
    };
    // Jobs are sent ahead only in the fast lane, whose jobs are quick: behind a slow lane's
    // job, one sent ahead could wait out a whole timeout.
    let fast = lane("fast", config.workers, config.queue, command.clone(), 2);
    let mut slow_command = command;
    slow_command.extend(["--nice".to_owned(), config.slow_nice.to_string()]);
    let slow = lane(
        "slow",
        config.slow_workers,
        config.slow_queue,
        slow_command,
        1,
    );
    let state = Arc::new(api::AppState {
        storage: storage.clone(),
        fast,
        slow,
        lanes: lanes::Lanes::new(Duration::from_millis(config.slow_threshold_ms)),
        recorder: recorder::Recorder::start(storage)?,
        functions: api::FunctionCache::default(),
        metrics: Arc::new(metrics::Metrics::default()),
        limits: config.limits.clone(),
        max_limits: config.max_limits.clone(),
        policy: config.policy.clone(),
        fetch_rules: config.fetch_rules(),
        keys: config
            .keys
            .iter()
            .map(|k| (k.key.clone(), k.tenant.clone()))
            .collect(),
        ready: AtomicBool::new(true),
    });
    if state.keys.is_empty() {
        tracing::warn!(
            "no API keys configured: authentication is off, every request is tenant `default`"
        );
    }
    let app = api::router(
        state.clone(),
        config.max_body,
        Duration::from_millis(config.body_timeout_ms),
    );
    let door = door::Door {
        max_connections: config.max_connections,
        header_timeout: Duration::from_millis(config.header_timeout_ms),
        send_timeout: Duration::from_millis(config.send_timeout_ms),
    };
    let flag = state.clone();
    tracing::info!(
        addr = %listener.local_addr()?,
        workers = config.workers,
        slow_workers = config.slow_workers,
        "palisade serving"
    );
    door::serve(listener, app, door, state.metrics.clone(), async move {
        shutdown.await;
        flag.ready.store(false, Ordering::Relaxed);
        tracing::info!("shutting down: finishing accepted requests");
    })
    .await;
    tracing::info!("all requests finished");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
