//! Persistence behind the [`Storage`] trait: deployed functions, execution records and the
//! secret-access audit log. [`SqliteStorage`] (embedded, the default) and [`PostgresStorage`]
//! both migrate their schema at open; [`open_storage`] picks one from the configured
//! `database`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use palisade::{AuditRecord, AuditSink, OutcomeRecord};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

mod pg;
pub use pg::PostgresStorage;

/// A deployed function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRecord {
    /// The owning tenant.
    pub tenant: String,
    /// The name, unique per tenant.
    pub name: String,
    /// `quickjs`, `wasm` or `v8`.
    pub engine: String,
    /// The request template: source, mode, modules, limits and policy (its `input` is unused).
    pub request: palisade::Request,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// One recorded execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The execution id.
    pub id: String,
    /// The owning tenant.
    pub tenant: String,
    /// The function invoked, if any.
    pub function: Option<String>,
    /// The engine it ran on.
    pub engine: String,
    /// The outcome, in the contract's shape (with its metrics).
    pub outcome: OutcomeRecord,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The PostgreSQL server failed, refused the connection, or the URL is invalid. The
    /// message includes the causes (the client's own says only "db error" for a SQL error).
    #[error("postgres: {}", pg::message(.0))]
    Postgres(postgres::Error),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// A lock was poisoned by a panic elsewhere.
    #[error("storage lock poisoned")]
    Poisoned,
}

impl From<postgres::Error> for StorageError {
    fn from(e: postgres::Error) -> Self {
        StorageError::Postgres(e)
    }
}

/// Where the service keeps its state. Every method is scoped by tenant.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Creates or replaces a function.
    fn put_function(&self, f: &FunctionRecord) -> Result<(), StorageError>;
    /// One function.
    fn get_function(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StorageError>;
    /// A tenant's functions, by name.
    fn list_functions(&self, tenant: &str) -> Result<Vec<FunctionRecord>, StorageError>;
    /// Deletes a function; whether it existed.
    fn delete_function(&self, tenant: &str, name: &str) -> Result<bool, StorageError>;
    /// Records an execution.
    fn put_execution(&self, e: &ExecutionRecord) -> Result<(), StorageError>;
    /// One execution.
    fn get_execution(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StorageError>;
    /// Appends a secret-access audit record.
    fn append_audit(&self, r: &AuditRecord) -> Result<(), StorageError>;
    /// A tenant's audit records, oldest first.
    fn audit(&self, tenant: &str) -> Result<Vec<AuditRecord>, StorageError>;
    /// Records several executions at once: all or none (one transaction where the backend has
    /// them). The server's recorder commits concurrent executions in groups this way.
    fn put_executions(&self, batch: &[ExecutionRecord]) -> Result<(), StorageError> {
        batch.iter().try_for_each(|e| self.put_execution(e))
    }
}

/// Whether `database` names a PostgreSQL server (`postgres://` or `postgresql://`) rather than
/// a SQLite file.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// Opens the configured `database`: a `postgres://` or `postgresql://` URL connects to
/// PostgreSQL ([`PostgresStorage`]); anything else is a SQLite file path, or `:memory:`
/// ([`SqliteStorage`]). Either way pending migrations run first. It blocks (call it from
/// `spawn_blocking` in async code).
pub fn open_storage(database: &Path) -> Result<Arc<dyn Storage>, StorageError> {
    match database.to_str() {
        Some(url) if is_postgres_url(url) => Ok(Arc::new(PostgresStorage::open(url)?)),
        _ => Ok(Arc::new(SqliteStorage::open(database)?)),
    }
}

/// A shared storage is a storage (so `StorageAudit(open_storage(..)?)` is an audit sink).
impl<S: Storage + ?Sized> Storage for Arc<S> {
    fn put_function(&self, f: &FunctionRecord) -> Result<(), StorageError> {
        (**self).put_function(f)
    }
    fn get_function(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StorageError> {
        (**self).get_function(tenant, name)
    }
    fn list_functions(&self, tenant: &str) -> Result<Vec<FunctionRecord>, StorageError> {
        (**self).list_functions(tenant)
    }
    fn delete_function(&self, tenant: &str, name: &str) -> Result<bool, StorageError> {
        (**self).delete_function(tenant, name)
    }
    fn put_execution(&self, e: &ExecutionRecord) -> Result<(), StorageError> {
        (**self).put_execution(e)
    }
    fn get_execution(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StorageError> {
        (**self).get_execution(tenant, id)
    }
    fn append_audit(&self, r: &AuditRecord) -> Result<(), StorageError> {
        (**self).append_audit(r)
    }
    fn audit(&self, tenant: &str) -> Result<Vec<AuditRecord>, StorageError> {
        (**self).audit(tenant)
    }
    fn put_executions(&self, batch: &[ExecutionRecord]) -> Result<(), StorageError> {
        (**self).put_executions(batch)
    }
}

const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE functions (
        tenant TEXT NOT NULL, name TEXT NOT NULL, engine TEXT NOT NULL,
        request TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, name));
     CREATE TABLE executions (
        id TEXT PRIMARY KEY, tenant TEXT NOT NULL, function TEXT, engine TEXT NOT NULL,
        outcome TEXT NOT NULL, created_at INTEGER NOT NULL);
     CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, record TEXT NOT NULL);
     CREATE INDEX audit_tenant ON audit (tenant, seq);",
];

/// Embedded SQLite storage (WAL mode), safe to share between the server and its workers.
#[derive(Debug)]
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

/// How long a SQLite connection waits for another's lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `f` again while SQLite answers `SQLITE_BUSY`, for up to [`BUSY_TIMEOUT`]: for the
/// statements whose busy answer does not go through the busy handler.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            other => return other,
        }
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` (`:memory:` for a private in-memory
    /// one) and applies any pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        let conn = if path.as_os_str() == ":memory:" {
            Connection::open_in_memory()?
        } else {
            Connection::open(path)?
        };
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching a new file to WAL, and reading it while another connection does, can answer
        // SQLITE_BUSY at once, without the busy handler (6% of 4 concurrent opens of a new file
        // failed so): the server and its workers open the same database together at start.
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version = |c: &Connection| -> rusqlite::Result<usize> {
            let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
            Ok(usize::try_from(v).unwrap_or(0))
        };
        retry_busy(|| {
            if version(&conn)? < MIGRATIONS.len() {
                // Under the write lock, reading the version again: another process opening the
                // same new file at once would otherwise apply the same migration too.
                let tx = rusqlite::Transaction::new_unchecked(
                    &conn,
                    rusqlite::TransactionBehavior::Immediate,
                )?;
                for (i, sql) in MIGRATIONS.iter().enumerate().skip(version(&tx)?) {
                    tx.execute_batch(sql)?;
                    tx.pragma_update(None, "user_version", i as i64 + 1)?;
                }
                tx.commit()?;
            }
            Ok(())
        })?;
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StorageError> {
        self.conn.lock().map_err(|_| StorageError::Poisoned)
    }
}

fn function_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, u64)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get::<_, i64>(4)? as u64,
    ))
}

fn decode_function(
    (tenant, name, engine, request, created_at): (String, String, String, String, u64),
) -> Result<FunctionRecord, StorageError> {
    Ok(FunctionRecord {
        tenant,
        name,
        engine,
        request: serde_json::from_str(&request)?,
        created_at,
    })
}

/// A stored outcome, whose `value` may be nested as deep as the contract allows (serde_json's
/// default limit of 128 levels made such an execution unreadable: 500 on its `GET`).
pub(crate) fn decode_outcome(text: &str) -> Result<OutcomeRecord, StorageError> {
    Ok(crate::worker::from_json(
        text.as_bytes(),
        crate::worker::MAX_VALUE_DEPTH + 1,
    )?)
}

fn insert_execution(conn: &Connection, e: &ExecutionRecord) -> Result<(), StorageError> {
    let outcome = serde_json::to_string(&e.outcome)?;
    conn.prepare_cached(
        "INSERT INTO executions (id, tenant, function, engine, outcome, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.id,
        e.tenant,
        e.function,
        e.engine,
        outcome,
        e.created_at as i64
    ])?;
    Ok(())
}

impl Storage for SqliteStorage {
    fn put_function(&self, f: &FunctionRecord) -> Result<(), StorageError> {
        let request = serde_json::to_string(&f.request)?;
        self.conn()?.execute(
            "INSERT OR REPLACE INTO functions (tenant, name, engine, request, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![f.tenant, f.name, f.engine, request, f.created_at as i64],
        )?;
        Ok(())
    }

    fn get_function(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StorageError> {
        let row = self
            .conn()?
            .query_row(
                "SELECT tenant, name, engine, request, created_at FROM functions
                 WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
                function_row,
            )
            .optional()?;
        row.map(decode_function).transpose()
    }

    fn list_functions(&self, tenant: &str) -> Result<Vec<FunctionRecord>, StorageError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT tenant, name, engine, request, created_at FROM functions
             WHERE tenant = ?1 ORDER BY name",
        )?;
        let rows = stmt
            .query_map(params![tenant], function_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(decode_function).collect()
    }

    fn delete_function(&self, tenant: &str, name: &str) -> Result<bool, StorageError> {
        let n = self.conn()?.execute(
            "DELETE FROM functions WHERE tenant = ?1 AND name = ?2",
            params![tenant, name],
        )?;
        Ok(n > 0)
    }

    fn put_execution(&self, e: &ExecutionRecord) -> Result<(), StorageError> {
        self.put_executions(std::slice::from_ref(e))
    }

    fn put_executions(&self, batch: &[ExecutionRecord]) -> Result<(), StorageError> {
        let conn = self.conn()?;
        let tx = conn.unchecked_transaction()?;
        for e in batch {
            insert_execution(&tx, e)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn get_execution(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StorageError> {
        let row = self
            .conn()?
            .query_row(
                "SELECT id, tenant, function, engine, outcome, created_at FROM executions
                 WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)? as u64,
                    ))
                },
            )
            .optional()?;
        row.map(|(id, tenant, function, engine, outcome, created_at)| {
            Ok(ExecutionRecord {
                id,
                tenant,
                function,
                engine,
                outcome: decode_outcome(&outcome)?,
                created_at,
            })
        })
        .transpose()
    }

    fn append_audit(&self, r: &AuditRecord) -> Result<(), StorageError> {
        let record = serde_json::to_string(r)?;
        self.conn()?.execute(
            "INSERT INTO audit (tenant, record) VALUES (?1, ?2)",
            params![r.tenant, record],
        )?;
        Ok(())
    }

    fn audit(&self, tenant: &str) -> Result<Vec<AuditRecord>, StorageError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT record FROM audit WHERE tenant = ?1 ORDER BY seq")?;
        let rows = stmt
            .query_map(params![tenant], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|s| serde_json::from_str(s).map_err(StorageError::from))
            .collect()
    }
}

/// Secret-access audit records written into a [`Storage`] (the workers' audit sink).
#[derive(Debug)]
pub struct StorageAudit<S>(pub S);

impl<S: Storage> AuditSink for StorageAudit<S> {
    fn append(&self, record: &AuditRecord) -> std::io::Result<()> {
        self.0.append_audit(record).map_err(std::io::Error::other)
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_and_executions_are_scoped_by_tenant() {
        let s = SqliteStorage::open(Path::new(":memory:")).unwrap();
        let f = FunctionRecord {
            tenant: "a".into(),
            name: "f".into(),
            engine: "quickjs".into(),
            request: palisade::Request::script("1"),
            created_at: now(),
        };
        s.put_function(&f).unwrap();
        assert_eq!(s.get_function("a", "f").unwrap(), Some(f.clone()));
        assert_eq!(s.get_function("b", "f").unwrap(), None);
        assert_eq!(s.list_functions("a").unwrap().len(), 1);
        assert!(s.list_functions("b").unwrap().is_empty());
        assert!(!s.delete_function("b", "f").unwrap());
        assert!(s.delete_function("a", "f").unwrap());
        let outcome = palisade::Sandbox::new()
            .run(&palisade::Request::script("2"))
            .to_record();
        let e = ExecutionRecord {
            id: "x1".into(),
            tenant: "a".into(),
            function: None,
            engine: "quickjs".into(),
            outcome,
            created_at: now(),
        };
        s.put_execution(&e).unwrap();
        assert_eq!(s.get_execution("a", "x1").unwrap(), Some(e));
        assert_eq!(s.get_execution("b", "x1").unwrap(), None);
    }

    #[test]
    fn migrations_run_once() {
        let dir = std::env::temp_dir().join(format!("palisade-mig-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        SqliteStorage::open(&dir).unwrap();
        SqliteStorage::open(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
    }
}
