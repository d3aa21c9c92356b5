//! Issue 3 (the wasm engine): more executions at once than the instance pool has slots. Every
//! execution gets an instance of its own from a fixed pool; a caller past the pool's size waits
//! for a slot within its timeout, and gets `timeout` without running if none comes free in time.
//! Before, it failed at once with `internal` ("maximum concurrent core instance limit ...
//! reached").
//!
//! Checked in a child process with a two-slot pool (`PALISADE_WASM_POOL_SLOTS`), so that a
//! few threads are more than the pool holds; the parent only reports the child's verdict.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use palisade_core::host::no_host;
use palisade_core::{Engine, ErrorKind, Limits, Outcome, Request};
use palisade_wasm::{Wasm, WasmOptions};

#[path = "support/child.rs"]
mod child;

const CHILD: &str = "PALISADE_ISSUE_3_POOL_CHILD";

/// Runs `name` (a test in this file) in a child process with a two-slot pool.
fn in_a_two_slot_child(name: &str) -> bool {
    child::rerun_with_pool_slots(name, CHILD, 2)
}

/// Runs `threads` copies of `req` at once, from a barrier.
fn at_once(engine: &Arc<Wasm>, req: &Request, threads: usize) -> Vec<Outcome> {
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (engine, req, start) = (engine.clone(), req.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                engine.execute(&req, no_host())
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("no caller panics"))
        .collect()
}

/// A script that holds its instance for `ms` milliseconds of wall-clock time.
fn holding(ms: u64, timeout: Duration) -> Request {
    Request::script(format!(
        "const t = Date.now(); while (Date.now() - t < {ms}) {{}} 'held'"
    ))
    .with_limits(Limits {
        timeout,
        ..Limits::default()
    })
}

#[test]
fn issue_3_more_runs_at_once_than_pool_slots_all_finish() {
    if in_a_two_slot_child("issue_3_more_runs_at_once_than_pool_slots_all_finish") {
        return;
    }
    let engine = Arc::new(Wasm::with_options(WasmOptions::default()).expect("the wasm engine"));
    // Six runs of 100 ms through two slots: the last two wait about 200 ms and run 100 ms, well
    // within their 2 s timeout.
    let begun = Instant::now();
    for o in at_once(&engine, &holding(100, Duration::from_secs(2)), 6) {
        assert_eq!(o.result, Ok(serde_json::json!("held")), "{}", o.to_json());
    }
    // They took at least three rounds: two at a time.
    assert!(begun.elapsed() >= Duration::from_millis(300));
    // And the engine is whole afterwards.
    let o = engine.execute(&Request::script("1+1"), no_host());
    assert_eq!(o.result, Ok(serde_json::json!(2)), "{}", o.to_json());
}

#[test]
fn issue_3_a_caller_waiting_for_a_slot_gets_timeout_at_its_own_deadline() {
    if in_a_two_slot_child("issue_3_a_caller_waiting_for_a_slot_gets_timeout_at_its_own_deadline") {
        return;
    }
    let engine = Arc::new(Wasm::with_options(WasmOptions::default()).expect("the wasm engine"));
    let hold = holding(1500, Duration::from_secs(10));
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let (engine, hold) = (engine.clone(), hold.clone());
            std::thread::spawn(move || engine.execute(&hold, no_host()))
        })
        .collect();
    // Both slots are taken well before this caller comes.
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let o = engine.execute(
        &Request::script("1+1").with_limits(Limits {
            timeout: Duration::from_millis(200),
            ..Limits::default()
        }),
        no_host(),
    );
    let waited = asked.elapsed();
    let e = o.to_record().error.expect("an error");
    assert_eq!(e.kind, ErrorKind::Timeout, "{}", o.to_json());
    assert!(e.message.contains("in use"), "{}", o.to_json());
    // At its own deadline, not when a slot came free (1.2 s later).
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_millis(1000), "{waited:?}");
    assert!(o.metrics.wall_us >= 200_000, "{}", o.to_json());
    for h in holders {
        let o = h.join().expect("no caller panics");
        assert_eq!(o.result, Ok(serde_json::json!("held")), "{}", o.to_json());
    }
}
