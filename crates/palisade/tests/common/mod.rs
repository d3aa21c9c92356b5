//! The one cross-engine helper: runs a closure on every engine available here.

#![allow(dead_code)]

use palisade::{EngineKind, Request, Sandbox};

/// Every engine available on this host, with a sandbox for it. Engines named in
/// `PALISADE_REQUIRE_ENGINES` (comma-separated; CI sets it) must be available: a missing one
/// fails the test instead of being skipped.
pub fn engines() -> Vec<(EngineKind, Sandbox)> {
    let required = std::env::var("PALISADE_REQUIRE_ENGINES").unwrap_or_default();
    EngineKind::ALL
        .into_iter()
        .filter_map(|kind| match Sandbox::builder().engine(kind).build() {
            Ok(s) => Some((kind, s)),
            Err(e) if required.split(',').any(|r| r.trim() == kind.as_str()) => {
                panic!("engine `{kind}` is required (PALISADE_REQUIRE_ENGINES) but {e}")
            }
            Err(_) => None,
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

/// After a hostile run: the same sandbox still runs the next request.
pub fn still_runs(kind: EngineKind, sandbox: &Sandbox) -> Result<(), String> {
    let next = sandbox.run(&Request::script("1 + 1"));
    if next.result != Ok(serde_json::json!(2)) {
        return Err(format!("{kind}: the next run gave {:?}", next.to_record()));
    }
    Ok(())
}
