//! Issue 3 (the wasm engine): more executions at once than the instance pool has slots. Every
//! execution gets an instance of its own from a fixed pool; a caller past the pool's size waits
//! for a slot, and its run's clock starts once it has one. Before, it failed at once with
//! `internal` ("maximum concurrent core instance limit ... reached").
//!
//! Checked in a child process with a two-slot pool (`PALISADE_WASM_POOL_SLOTS`), so that a
//! few threads are more than the pool holds; the parent only reports the child's verdict.

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use palisade_core::host::no_host;
use palisade_core::{Engine, Limits, Request};
use palisade_wasm::{Wasm, WasmOptions};

const CHILD: &str = "PALISADE_ISSUE_3_POOL_CHILD";

/// Runs `name` (a test in this file) in a child process with a two-slot pool.
fn in_a_two_slot_child(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("PALISADE_WASM_POOL_SLOTS", "2")
        .output()
        .expect("the child test process runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed: {text}");
    assert!(text.contains("1 passed"), "the child ran no test: {text}");
    true
}

#[test]
fn issue_3_more_runs_at_once_than_pool_slots_all_finish() {
    if in_a_two_slot_child("issue_3_more_runs_at_once_than_pool_slots_all_finish") {
        return;
    }
    let engine = Arc::new(Wasm::with_options(WasmOptions::default()).expect("the wasm engine"));
    // Each run holds its slot for 100 ms of its own clock; a 400 ms timeout leaves room for
    // a loaded machine but not for the two waits ahead of the last callers.
    let limits = Limits {
        timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let req = Request::script("const t = Date.now(); while (Date.now() - t < 100) {} 'held'")
        .with_limits(limits);
    let threads = 6;
    let start = Arc::new(Barrier::new(threads));
    let begun = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (engine, req, start) = (engine.clone(), req.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                engine.execute(&req, no_host())
            })
        })
        .collect();
    for h in handles {
        let o = h.join().expect("no caller panics");
        assert_eq!(o.result, Ok(serde_json::json!("held")), "{}", o.to_json());
        assert!(
            o.metrics.wall_us < 400_000,
            "a run's clock counts its own time, not the wait for a slot: {}",
            o.to_json()
        );
    }
    // Six runs of 100 ms through two slots took at least three rounds.
    assert!(begun.elapsed() >= Duration::from_millis(300));
    // And the engine is whole afterwards.
    let o = engine.execute(&Request::script("1+1"), no_host());
    assert_eq!(o.result, Ok(serde_json::json!(2)), "{}", o.to_json());
}
