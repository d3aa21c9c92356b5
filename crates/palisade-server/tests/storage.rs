//! The [`Storage`] contract, checked on every backend: on SQLite always, and on PostgreSQL when
//! `PALISADE_TEST_POSTGRES_URL` names a server (`scripts/start-postgres` starts one). With
//! `CI=true` or `PALISADE_REQUIRE_POSTGRES=1` and no URL, the PostgreSQL tests fail instead of
//! being skipped. Each PostgreSQL test works in a schema of its own, dropped at its end, so the
//! tests run in parallel on one database.
#![allow(clippy::unwrap_used)] // test helpers

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use palisade::{AccessResult, AuditRecord, AuditSink};
use palisade_server::storage::{now, ExecutionRecord, FunctionRecord, StorageAudit};
use palisade_server::{open_storage, PostgresStorage, SqliteStorage, Storage, StorageError};

// ---------------------------------------------------------------------------------------------
// Backends

mod common;
use common::PgSchema;

static FILES: AtomicUsize = AtomicUsize::new(0);

/// A SQLite file of its own, removed when this is.
struct TempDb(PathBuf);

impl TempDb {
    fn new(test: &str) -> TempDb {
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "palisade-storage-{test}-{}-{n}.db",
            std::process::id()
        ));
        let t = TempDb(path);
        t.remove();
        t
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Runs each behaviour on SQLite (a file of its own) and on PostgreSQL (a schema of its own).
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let db = super::TempDb::new(stringify!($name));
                    let path = db.0.display().to_string();
                    super::behaviour::$name(&|| super::open_storage(Path::new(&path)).unwrap());
                }
            )*
            use std::path::Path;
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let Some(schema) = super::PgSchema::new(stringify!($name)) else { return };
                    super::behaviour::$name(&|| super::open_storage(Path::new(&schema.url)).unwrap());
                }
            )*
            use std::path::Path;
        }
    };
}

on_every_backend!(
    functions_are_scoped_by_tenant,
    put_function_replaces,
    functions_are_listed_by_name,
    executions_round_trip_and_are_scoped,
    execution_ids_are_unique,
    a_group_of_executions_commits_all_or_none,
    audit_is_oldest_first_and_scoped,
    text_round_trips_exactly,
    concurrent_use,
    data_survives_reopening,
    migrations_run_twice,
    concurrent_opens_migrate_once,
);

// ---------------------------------------------------------------------------------------------
// The behaviours. `open` opens the test's database (again, where a behaviour reopens it).

type Open<'a> = &'a (dyn Fn() -> Arc<dyn Storage> + Sync);

fn function(tenant: &str, name: &str, source: &str) -> FunctionRecord {
    FunctionRecord {
        tenant: tenant.into(),
        name: name.into(),
        engine: "quickjs".into(),
        request: palisade::Request::script(source),
        created_at: now(),
    }
}

fn execution(tenant: &str, id: &str, function: Option<&str>) -> ExecutionRecord {
    let outcome = palisade::Sandbox::new()
        .run(&palisade::Request::script("console.log('hi'); 40 + 2"))
        .to_record();
    ExecutionRecord {
        id: id.into(),
        tenant: tenant.into(),
        function: function.map(Into::into),
        engine: "quickjs".into(),
        outcome,
        created_at: now(),
    }
}

fn audit_record(tenant: &str, n: usize) -> AuditRecord {
    AuditRecord {
        ts: format!("2026-01-01T00:00:{:02}.000Z", n % 60),
        action: "secret.get".into(),
        tenant: tenant.into(),
        function: n.is_multiple_of(2).then(|| "f".to_owned()),
        execution_id: format!("x{n}"),
        secret: format!("S{n}"),
        result: if n.is_multiple_of(3) {
            AccessResult::Denied
        } else {
            AccessResult::Granted
        },
        reason: n.is_multiple_of(3).then(|| "policy".to_owned()),
    }
}

mod behaviour {
    use super::*;

    pub fn functions_are_scoped_by_tenant(open: Open<'_>) {
        let s = open();
        let f = function("a", "f", "1");
        s.put_function(&f).unwrap();
        assert_eq!(s.get_function("a", "f").unwrap(), Some(f.clone()));
        assert_eq!(s.get_function("b", "f").unwrap(), None);
        assert_eq!(s.get_function("a", "g").unwrap(), None);
        assert_eq!(s.list_functions("a").unwrap(), vec![f]);
        assert!(s.list_functions("b").unwrap().is_empty());
        assert!(!s.delete_function("b", "f").unwrap());
        assert!(s.delete_function("a", "f").unwrap());
        assert!(!s.delete_function("a", "f").unwrap());
        assert_eq!(s.get_function("a", "f").unwrap(), None);
        assert!(s.list_functions("a").unwrap().is_empty());
    }

    pub fn put_function_replaces(open: Open<'_>) {
        let s = open();
        s.put_function(&function("a", "f", "1")).unwrap();
        s.put_function(&function("b", "f", "b's")).unwrap();
        let mut g = function("a", "f", "2");
        g.engine = "wasm".into();
        g.created_at = 7;
        s.put_function(&g).unwrap();
        assert_eq!(s.get_function("a", "f").unwrap(), Some(g.clone()));
        assert_eq!(s.list_functions("a").unwrap(), vec![g]);
        // The other tenant's function of the same name is untouched.
        assert_eq!(
            s.get_function("b", "f").unwrap().unwrap().request.source,
            "b's"
        );
    }

    pub fn functions_are_listed_by_name(open: Open<'_>) {
        let s = open();
        // Byte order, as SQLite's default collation: upper case before lower case.
        for name in ["b", "a", "B", "a-2", "z"] {
            s.put_function(&function("t", name, "1")).unwrap();
        }
        s.put_function(&function("u", "c", "1")).unwrap();
        let names: Vec<String> = s
            .list_functions("t")
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["B", "a", "a-2", "b", "z"]);
    }

    pub fn executions_round_trip_and_are_scoped(open: Open<'_>) {
        let s = open();
        let e = execution("a", "x1", None);
        let g = execution("a", "x2", Some("double"));
        s.put_execution(&e).unwrap();
        s.put_execution(&g).unwrap();
        assert_eq!(s.get_execution("a", "x1").unwrap(), Some(e));
        assert_eq!(s.get_execution("a", "x2").unwrap(), Some(g));
        assert_eq!(s.get_execution("b", "x1").unwrap(), None);
        assert_eq!(s.get_execution("a", "x3").unwrap(), None);
    }

    pub fn execution_ids_are_unique(open: Open<'_>) {
        let s = open();
        s.put_execution(&execution("a", "same", None)).unwrap();
        let err = s.put_execution(&execution("b", "same", None)).unwrap_err();
        // The message says why (PostgreSQL's client alone says "db error").
        assert!(err.to_string().to_lowercase().contains("unique"), "{err}");
        // The first one stands, and the storage still works after the error.
        assert!(s.get_execution("a", "same").unwrap().is_some());
        assert_eq!(s.get_execution("b", "same").unwrap(), None);
        s.put_execution(&execution("b", "other", None)).unwrap();
    }

    pub fn a_group_of_executions_commits_all_or_none(open: Open<'_>) {
        let s = open();
        let group: Vec<_> = (0..5)
            .map(|i| execution("a", &format!("g{i}"), None))
            .collect();
        s.put_executions(&group).unwrap();
        for e in &group {
            assert_eq!(s.get_execution("a", &e.id).unwrap().as_ref(), Some(e));
        }
        // A duplicate id anywhere fails the whole group: nothing of it is kept.
        let bad = vec![
            execution("a", "h0", None),
            execution("a", "g2", None),
            execution("a", "h1", None),
        ];
        assert!(s.put_executions(&bad).is_err());
        assert_eq!(s.get_execution("a", "h0").unwrap(), None);
        assert_eq!(s.get_execution("a", "h1").unwrap(), None);
        s.put_executions(&[]).unwrap();
    }

    pub fn audit_is_oldest_first_and_scoped(open: Open<'_>) {
        let s = open();
        let sink = StorageAudit(s.clone());
        let mut alice = Vec::new();
        for n in 0..12 {
            let r = audit_record(if n % 4 == 1 { "bob" } else { "alice" }, n);
            sink.append(&r).unwrap();
            if r.tenant == "alice" {
                alice.push(r);
            }
        }
        assert_eq!(s.audit("alice").unwrap(), alice);
        assert_eq!(s.audit("bob").unwrap().len(), 3);
        assert!(s.audit("carol").unwrap().is_empty());
    }

    pub fn text_round_trips_exactly(open: Open<'_>) {
        let s = open();
        // NUL (which PostgreSQL's TEXT cannot hold raw), quotes, non-ASCII, astral planes.
        let source = "'\u{0}' + \"é\" + `😀` + '\\\\' + '\u{7f}'; // ünïcödé\n".repeat(200);
        let f = function("tenant ü 'q'", "name/with\"odd'chars", &source);
        s.put_function(&f).unwrap();
        assert_eq!(
            s.get_function("tenant ü 'q'", "name/with\"odd'chars")
                .unwrap(),
            Some(f)
        );
    }

    pub fn concurrent_use(open: Open<'_>) {
        let s = open();
        std::thread::scope(|scope| {
            for t in 0..6 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..20 {
                        let id = format!("c{t}-{i}");
                        s.put_execution(&execution("conc", &id, None)).unwrap();
                        assert!(s.get_execution("conc", &id).unwrap().is_some());
                        s.put_function(&function("conc", &format!("f{t}"), &id))
                            .unwrap();
                        s.append_audit(&audit_record("conc", i)).unwrap();
                    }
                });
            }
        });
        assert_eq!(s.list_functions("conc").unwrap().len(), 6);
        assert_eq!(s.audit("conc").unwrap().len(), 120);
    }

    pub fn data_survives_reopening(open: Open<'_>) {
        let f = function("a", "kept", "1");
        let e = execution("a", "kept-x", Some("kept"));
        {
            let s = open();
            s.put_function(&f).unwrap();
            s.put_execution(&e).unwrap();
            s.append_audit(&audit_record("a", 1)).unwrap();
        }
        let s = open();
        assert_eq!(s.get_function("a", "kept").unwrap(), Some(f));
        assert_eq!(s.get_execution("a", "kept-x").unwrap(), Some(e));
        assert_eq!(s.audit("a").unwrap(), vec![audit_record("a", 1)]);
    }

    pub fn migrations_run_twice(open: Open<'_>) {
        let first = open();
        first.put_function(&function("a", "f", "1")).unwrap();
        // A second open of a migrated database, while the first is still open, and a third.
        let second = open();
        drop(open());
        assert_eq!(second.list_functions("a").unwrap().len(), 1);
        second.put_function(&function("a", "g", "1")).unwrap();
        assert_eq!(first.list_functions("a").unwrap().len(), 2);
    }

    pub fn concurrent_opens_migrate_once(open: Open<'_>) {
        // Processes opening a fresh database at once (the server and its workers): every
        // open succeeds and they share one schema.
        let opened: Vec<Arc<dyn Storage>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4).map(|_| scope.spawn(open)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        opened[0].put_function(&function("a", "f", "1")).unwrap();
        for s in &opened {
            assert_eq!(s.list_functions("a").unwrap().len(), 1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backend-specific

#[test]
fn open_storage_picks_the_backend_from_the_database_string() {
    let s = open_storage(Path::new(":memory:")).unwrap();
    assert!(format!("{s:?}").starts_with("SqliteStorage"), "{s:?}");
    // A URL is never taken for a file name: nothing listens on port 1, so this fails to
    // connect instead of creating a file called `postgres:`.
    for url in [
        "postgres://nobody@127.0.0.1:1/none?connect_timeout=5",
        "postgresql://nobody@127.0.0.1:1/none?connect_timeout=5",
    ] {
        let err = open_storage(Path::new(url)).unwrap_err();
        assert!(matches!(err, StorageError::Postgres(_)), "{err:?}");
        // With the cause, not just the client's "error connecting to server".
        assert!(err.to_string().starts_with("postgres: "), "{err}");
        assert!(err.to_string().contains("refused"), "{err}");
    }
    assert!(!Path::new("postgres:").exists());
    assert!(matches!(
        PostgresStorage::open("postgres://127.0.0.1:5432/db?bogus_option=1"),
        Err(StorageError::Postgres(_))
    ));
}

#[test]
fn sqlite_memory_databases_are_private() {
    let a = SqliteStorage::open(Path::new(":memory:")).unwrap();
    a.put_function(&function("a", "f", "1")).unwrap();
    let b = SqliteStorage::open(Path::new(":memory:")).unwrap();
    assert!(b.list_functions("a").unwrap().is_empty());
}

#[test]
fn postgres_schema_is_versioned() {
    let Some(schema) = PgSchema::new("versioned") else {
        return;
    };
    drop(PostgresStorage::open(&schema.url).unwrap());
    drop(PostgresStorage::open(&schema.url).unwrap());
    let mut c = schema.admin();
    let versions: Vec<i32> = c
        .query(
            &format!(
                "SELECT version FROM {}.palisade_schema ORDER BY version",
                schema.name
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1]);
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1
             ORDER BY table_name",
            &[&schema.name],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        ["audit", "executions", "functions", "palisade_schema"]
    );
}

#[test]
fn postgres_reconnects_after_its_connections_are_killed() {
    let Some(schema) = PgSchema::new("reconnect") else {
        return;
    };
    let s = PostgresStorage::open(&schema.url).unwrap();
    s.put_function(&function("a", "f", "1")).unwrap();
    let kill = || {
        let n = schema
            .admin()
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = $1",
                &[&schema.name],
            )
            .unwrap()
            .len();
        assert!(n >= 1);
        // Let the server finish closing them.
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    kill();
    // A read is retried on a new connection.
    assert!(s.get_function("a", "f").unwrap().is_some());
    kill();
    // A write on a dead connection fails (it may or may not have been applied: it is not
    // retried), and the next one gets a new connection.
    let _ = s.put_function(&function("a", "g", "1"));
    s.put_function(&function("a", "h", "1")).unwrap();
    assert!(s.get_function("a", "h").unwrap().is_some());
}
