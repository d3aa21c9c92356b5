//! Issue 3: the first fuel run of a process. A test binary of its own, so that run really is
//! the process's first: the fuel-counting compilation is made on first use.

use std::time::Duration;

use palisade_core::host::no_host;
use palisade_core::{Engine, Limits, Request};
use palisade_wasm::{Wasm, WasmOptions};

/// The fuel-counting compilation is made (here compiled, with no disk cache: over a second)
/// during the process's first fuel run; the run's timeout must not count it. Until 2026-12-01
/// the run's clock started before, and such a run was `timeout` under any shorter deadline.
#[test]
fn issue_3_a_runs_timeout_does_not_count_the_one_off_fuel_compilation() {
    let engine = Wasm::with_options(WasmOptions::default().no_disk_cache(true))
        .expect("the wasm engine starts");
    // Long enough (a few ms) for the deadline to be looked at while it runs.
    let src = "let s = 0; for (let i = 0; i < 300000; i++) s += i % 7; s";
    let req = Request::script(src).with_limits(Limits {
        fuel: Some(1 << 40),
        timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let o = engine.execute(&req, no_host());
    assert_eq!(o.result, Ok(serde_json::json!(899_997)), "{}", o.to_json());
    assert!(o.metrics.fuel_used.is_some(), "{}", o.to_json());
}
