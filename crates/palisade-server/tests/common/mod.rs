//! What the PostgreSQL tests share: the server to test against, and a schema per test.
#![allow(dead_code, clippy::unwrap_used)] // not every test crate uses every helper

use std::sync::atomic::{AtomicUsize, Ordering};

/// The PostgreSQL server to test against, or `None` to skip (panics where it is required).
pub fn postgres_url() -> Option<String> {
    match std::env::var("PALISADE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("CI").is_ok_and(|v| v == "true")
                || std::env::var("PALISADE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "PALISADE_TEST_POSTGRES_URL is not set, and CI=true or PALISADE_REQUIRE_POSTGRES=1 \
                 requires the PostgreSQL storage tests (start a server with scripts/start-postgres)"
            );
            eprintln!("skipped: PALISADE_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A schema of its own on the test server, dropped when this is.
pub struct PgSchema {
    pub admin: String,
    pub name: String,
    /// The server's URL with this schema first in `search_path`.
    pub url: String,
}

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

impl PgSchema {
    pub fn new(test: &str) -> Option<PgSchema> {
        let admin = postgres_url()?;
        let name = format!(
            "t_{test}_{}_{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-csearch_path%3D{name}&application_name={name}");
        Some(PgSchema { admin, name, url })
    }

    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.admin, postgres::NoTls).unwrap()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // On a thread of its own: the sync client panics if used on an async runtime's thread.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA {name} CASCADE"));
            }
        })
        .join();
    }
}
