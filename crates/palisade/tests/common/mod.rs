//! The one cross-engine helper: runs a closure on every engine available here.

#![allow(dead_code)]

use palisade::{EngineKind, Sandbox};

/// Every engine available on this host, with a sandbox for it.
pub fn engines() -> Vec<(EngineKind, Sandbox)> {
    EngineKind::ALL
        .into_iter()
        .filter_map(|kind| {
            Sandbox::builder()
                .engine(kind)
                .build()
                .ok()
                .map(|s| (kind, s))
        })
        .collect()
}

/// Runs `f` once per available engine; panics listing every engine whose run failed `f`.
pub fn on_every_engine(mut f: impl FnMut(EngineKind, &Sandbox) -> Result<(), String>) {
    let engines = engines();
    assert!(!engines.is_empty(), "no engine is available");
    let mut failures = Vec::new();
    for (kind, sandbox) in &engines {
        if let Err(e) = f(*kind, sandbox) {
            failures.push(format!("[{kind}] {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
