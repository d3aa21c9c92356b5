//! [`PostgresStorage`]: the [`Storage`] trait on a PostgreSQL server, for deployments that
//! share one database between several service hosts or want it managed outside the service.
//!
//! The sync `postgres` client is used (it runs its own small tokio runtime per connection), so
//! like [`SqliteStorage`](super::SqliteStorage) every method blocks: the server calls them in
//! `spawn_blocking`, the workers are synchronous.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use palisade::AuditRecord;
use postgres::{Client, Config, NoTls, Row, Statement};

use super::{ExecutionRecord, FunctionRecord, Storage, StorageError};

/// Connections one [`PostgresStorage`] keeps at most. They are opened when all open ones are
/// busy, so a worker process, which only appends audit records, holds one.
const POOL_SIZE: usize = 8;

/// The advisory lock that serializes migrations between processes opening the same database
/// at once (the ASCII of "palisade").
const MIGRATION_LOCK: i64 = 0x7061_6c69_7361_6465;

/// The schema, one entry per version; `palisade_schema` records which have been applied. The
/// tables are SQLite's, in PostgreSQL's types; JSON stays `TEXT`, as written.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE functions (
        tenant TEXT NOT NULL, name TEXT NOT NULL, engine TEXT NOT NULL,
        request TEXT NOT NULL, created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, name));
     CREATE TABLE executions (
        id TEXT PRIMARY KEY, tenant TEXT NOT NULL, function TEXT, engine TEXT NOT NULL,
        outcome TEXT NOT NULL, created_at BIGINT NOT NULL);
     CREATE TABLE audit (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant TEXT NOT NULL,
        record TEXT NOT NULL);
     CREATE INDEX audit_tenant ON audit (tenant, seq);",
];

/// PostgreSQL storage: a small pool of connections to the server a `postgres://` or
/// `postgresql://` URL names, with the schema migrated at open.
///
/// The URL takes libpq's parameters (`user`, `password`, `host`, `port`, `dbname`,
/// `connect_timeout`, `options`, ...); a password it leaves out comes from `PGPASSWORD`. TLS
/// is not supported, so `sslmode=require` fails to connect. The tables go in the first schema of the connection's `search_path`, so
/// `?options=-csearch_path%3Dpalisade` puts them in schema `palisade` (which must exist).
pub struct PostgresStorage {
    config: Config,
    slots: Vec<Mutex<Option<Conn>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Config`'s own Debug leaves the password out.
        f.debug_struct("PostgresStorage")
            .field("config", &self.config)
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// One connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }
}

/// Whether a failed connection should be dropped (and a new one opened next time): anything
/// but an error the server answered with over a connection that is still good.
fn connection_lost(e: &postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        // 08: connection exception; 57: operator intervention (shutdown, terminated backend).
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57")
        }
    }
}

/// The error and its causes on one line: `postgres::Error`'s Display names only the kind
/// ("db error", "error connecting to server"), its source says what happened.
pub(super) fn message(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PostgresStorage {
    /// Connects to the server `url` names and applies any pending migrations.
    pub fn open(url: &str) -> Result<PostgresStorage, StorageError> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("palisade");
        }
        let mut client = config.connect(NoTls)?;
        migrate(&mut client)?;
        let slots: Vec<Mutex<Option<Conn>>> = (0..POOL_SIZE).map(|_| Mutex::new(None)).collect();
        let storage = PostgresStorage {
            config,
            slots,
            next: AtomicUsize::new(0),
        };
        *storage.slot()? = Some(Conn {
            client,
            statements: HashMap::new(),
        });
        Ok(storage)
    }

    /// The first free connection slot, so that light use keeps to few connections; when all
    /// are busy, the next in turn once it is free. A slot poisoned by a panic is emptied and
    /// reused.
    fn slot(&self) -> Result<MutexGuard<'_, Option<Conn>>, StorageError> {
        for slot in &self.slots {
            match slot.try_lock() {
                Ok(guard) => return Ok(guard),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Poisoned(p)) => {
                    let mut guard = p.into_inner();
                    *guard = None;
                    slot.clear_poison();
                    return Ok(guard);
                }
            }
        }
        let next = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        self.slots[next].lock().map_err(|_| StorageError::Poisoned)
    }

    /// Runs `f` on a pooled connection, connecting first if the slot has none. A connection
    /// that failed is dropped; `f` runs again on a new one if `retry` (only for reads: a write
    /// whose connection broke may have been committed).
    fn with<T>(
        &self,
        retry: bool,
        f: impl Fn(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StorageError> {
        let mut slot = self.slot()?;
        let mut tries = if retry { 2 } else { 1 };
        loop {
            tries -= 1;
            let mut conn = match slot.take() {
                Some(c) if !c.client.is_closed() => c,
                _ => Conn {
                    client: self.config.connect(NoTls)?,
                    statements: HashMap::new(),
                },
            };
            match f(&mut conn) {
                Ok(v) => {
                    *slot = Some(conn);
                    return Ok(v);
                }
                Err(e) if connection_lost(&e) => {
                    // The connection is dropped here, and a new one opened next time.
                    drop(conn);
                    if tries == 0 {
                        return Err(e.into());
                    }
                    tracing::warn!(error = %e, "postgres connection lost; retrying");
                }
                Err(e) => {
                    *slot = Some(conn);
                    return Err(e.into());
                }
            }
        }
    }
}

/// Applies pending migrations in one transaction, under an advisory lock so that two
/// processes opening the same database at once apply each migration once.
fn migrate(client: &mut Client) -> Result<(), StorageError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS palisade_schema (
            version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    let version: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM palisade_schema", &[])?
        .get(0);
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO palisade_schema (version) VALUES ($1)", &[&v])?;
        tracing::info!(version = v, "postgres schema migrated");
    }
    tx.commit()?;
    Ok(())
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        let conns: Vec<Conn> = self
            .slots
            .iter_mut()
            .filter_map(|m| match m.get_mut() {
                Ok(c) => c.take(),
                Err(p) => p.into_inner().take(),
            })
            .collect();
        if conns.is_empty() {
            return;
        }
        // Closing a sync client blocks on its runtime, which panics inside an async context
        // (the server drops its storage in one): close them on a thread of their own.
        if let Ok(t) = std::thread::Builder::new()
            .name("palisade-pg-close".into())
            .spawn(move || drop(conns))
        {
            let _ = t.join();
        }
    }
}

fn decode_function(row: &Row) -> Result<FunctionRecord, StorageError> {
    Ok(FunctionRecord {
        tenant: row.try_get(0)?,
        name: row.try_get(1)?,
        engine: row.try_get(2)?,
        request: serde_json::from_str(row.try_get::<_, &str>(3)?)?,
        created_at: to_u64(row.try_get(4)?),
    })
}

impl Storage for PostgresStorage {
    fn put_function(&self, f: &FunctionRecord) -> Result<(), StorageError> {
        let request = serde_json::to_string(&f.request)?;
        let created_at = to_i64(f.created_at);
        self.with(false, |c| {
            c.execute(
                "INSERT INTO functions (tenant, name, engine, request, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant, name) DO UPDATE SET engine = EXCLUDED.engine,
                    request = EXCLUDED.request, created_at = EXCLUDED.created_at",
                &[&f.tenant, &f.name, &f.engine, &request, &created_at],
            )
        })?;
        Ok(())
    }

    fn get_function(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StorageError> {
        let rows = self.with(true, |c| {
            c.query(
                "SELECT tenant, name, engine, request, created_at FROM functions
                 WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
        })?;
        rows.first().map(decode_function).transpose()
    }

    fn list_functions(&self, tenant: &str) -> Result<Vec<FunctionRecord>, StorageError> {
        let rows = self.with(true, |c| {
            c.query(
                "SELECT tenant, name, engine, request, created_at FROM functions
                 WHERE tenant = $1 ORDER BY name COLLATE \"C\"",
                &[&tenant],
            )
        })?;
        rows.iter().map(decode_function).collect()
    }

    fn delete_function(&self, tenant: &str, name: &str) -> Result<bool, StorageError> {
        let n = self.with(false, |c| {
            c.execute(
                "DELETE FROM functions WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
        })?;
        Ok(n > 0)
    }

    fn put_execution(&self, e: &ExecutionRecord) -> Result<(), StorageError> {
        let outcome = serde_json::to_string(&e.outcome)?;
        let created_at = to_i64(e.created_at);
        self.with(false, |c| {
            c.execute(
                "INSERT INTO executions (id, tenant, function, engine, outcome, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &e.id,
                    &e.tenant,
                    &e.function,
                    &e.engine,
                    &outcome,
                    &created_at,
                ],
            )
        })?;
        Ok(())
    }

    fn put_executions(&self, batch: &[ExecutionRecord]) -> Result<(), StorageError> {
        let rows = batch
            .iter()
            .map(|e| Ok((e, serde_json::to_string(&e.outcome)?, to_i64(e.created_at))))
            .collect::<Result<Vec<_>, StorageError>>()?;
        self.with(false, |c| {
            let insert = c.statement(
                "INSERT INTO executions (id, tenant, function, engine, outcome, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )?;
            let mut tx = c.client.transaction()?;
            for (e, outcome, created_at) in &rows {
                tx.execute(
                    &insert,
                    &[
                        &e.id,
                        &e.tenant,
                        &e.function,
                        &e.engine,
                        outcome,
                        created_at,
                    ],
                )?;
            }
            tx.commit()
        })
    }

    fn get_execution(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StorageError> {
        let rows = self.with(true, |c| {
            c.query(
                "SELECT id, tenant, function, engine, outcome, created_at FROM executions
                 WHERE tenant = $1 AND id = $2",
                &[&tenant, &id],
            )
        })?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(ExecutionRecord {
            id: row.try_get(0)?,
            tenant: row.try_get(1)?,
            function: row.try_get(2)?,
            engine: row.try_get(3)?,
            outcome: super::decode_outcome(row.try_get::<_, &str>(4)?)?,
            created_at: to_u64(row.try_get(5)?),
        }))
    }

    fn append_audit(&self, r: &AuditRecord) -> Result<(), StorageError> {
        let record = serde_json::to_string(r)?;
        self.with(false, |c| {
            c.execute(
                "INSERT INTO audit (tenant, record) VALUES ($1, $2)",
                &[&r.tenant, &record],
            )
        })?;
        Ok(())
    }

    fn audit(&self, tenant: &str) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = self.with(true, |c| {
            c.query(
                "SELECT record FROM audit WHERE tenant = $1 ORDER BY seq",
                &[&tenant],
            )
        })?;
        rows.iter()
            .map(|row| Ok(serde_json::from_str(row.try_get::<_, &str>(0)?)?))
            .collect()
    }
}
