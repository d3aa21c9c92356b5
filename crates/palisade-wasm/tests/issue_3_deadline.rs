//! Issue 3 (the wasm engine): the deadline revokes the run's linear memory (`src/watch.rs`)
//! instead of Wasmtime's epoch checks, which cost 13-15% of the V8 v7 score. These tests cover
//! what that mechanism must get right: a run stopped anywhere (guest code, a host call, a
//! memory growth) ends as `timeout`; the host survives; and the pool slot the run used, whose
//! memory was revoked and then restored, serves the next runs as if fresh. Checked in child
//! processes with a one-slot pool, so every run reuses the same slot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use palisade_core::host::{HostCalls, HostError, HostValue};
use palisade_core::{Engine, ErrorKind, Limits, Outcome, Request};
use palisade_wasm::{Wasm, WasmOptions};

#[path = "support/child.rs"]
mod child;

const CHILD: &str = "PALISADE_ISSUE_3_DEADLINE_CHILD";

/// Runs `name` (a test in this file) in a child process with a one-slot pool.
fn in_a_one_slot_child(name: &str) -> bool {
    child::rerun_with_pool_slots(name, CHILD, 1)
}

fn engine() -> Wasm {
    Wasm::with_options(WasmOptions::default()).expect("the wasm engine starts")
}

fn run_with(e: &Wasm, src: &str, timeout: Duration, host: Arc<dyn HostCalls>) -> Outcome {
    let limits = Limits {
        timeout,
        memory: 2 << 30,
        ..Limits::default()
    };
    e.execute(&Request::script(src).with_limits(limits), host)
}

fn run(e: &Wasm, src: &str, timeout: Duration) -> Outcome {
    run_with(e, src, timeout, palisade_core::host::no_host())
}

/// A run that reads and writes much of a fresh memory, and checks what it reads: a slot whose
/// memory was left revoked, or restored with the wrong contents, fails it.
const CHECKED: &str = "
    const a = new Float64Array(1 << 18);
    for (let i = 0; i < a.length; i++) a[i] = i * 0.5;
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i];
    const o = {};
    for (let i = 0; i < 2000; i++) o['k' + i] = [i, String(i)];
    [s, Object.keys(o).length, globalThis.leaked === undefined]";

fn assert_checked_run(e: &Wasm) {
    let o = run(e, CHECKED, Duration::from_secs(10));
    // The sum of i / 2 for i below 2^18, a whole number.
    let sum = (1u64 << 18) * ((1u64 << 18) - 1) / 4;
    assert_eq!(
        o.result,
        Ok(serde_json::json!([sum, 2000, true])),
        "{}",
        o.to_json()
    );
}

/// A host whose every call takes `delay`: the deadline passes while the run is in the host.
#[derive(Debug)]
struct SlowHost {
    delay: Duration,
    calls: AtomicUsize,
}

impl HostCalls for SlowHost {
    fn call(&self, _op: &str, _arg: &str, _bytes: Option<&[u8]>) -> Result<HostValue, HostError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.delay);
        Ok(HostValue::Str(
            "00000000-0000-4000-8000-000000000000".into(),
        ))
    }

    fn denied(&self, _message: &str) -> bool {
        false
    }
}

#[test]
fn issue_3_a_run_stopped_anywhere_is_timeout_and_its_slot_serves_the_next_runs() {
    if in_a_one_slot_child(
        "issue_3_a_run_stopped_anywhere_is_timeout_and_its_slot_serves_the_next_runs",
    ) {
        return;
    }
    let e = engine();
    let stops = [
        // Guest code: the interpreter, a tight loop, native builtins, a huge zero-fill (1 GiB
        // of fresh pages in mem.c's memset), growth of the memory over and over.
        "for (;;) {}",
        "let n = 0; for (;;) n++",
        "const s = 'ab'.repeat(1 << 20); for (;;) s.split('').reverse().join('')",
        "new ArrayBuffer(2 ** 30); 1",
        "const k = []; for (;;) k.push(new ArrayBuffer(1 << 20))",
        "for (;;) JSON.parse(JSON.stringify({ a: [1, 2, 3], b: 'x'.repeat(1000) }))",
        "/(a+)+$/.test('a'.repeat(40) + 'b')",
        // Host calls, many: the console and the clock.
        "for (;;) console.log('x')",
        "for (;;) Date.now()",
    ];
    for round in 0..3 {
        for src in stops {
            let o = run(&e, src, Duration::from_millis(50));
            assert_eq!(
                o.error_kind(),
                Some(ErrorKind::Timeout),
                "{src}: {}",
                o.to_json()
            );
            // Stopped near its deadline, with room for a loaded machine.
            assert!(o.metrics.wall_us < 1_000_000, "{src}: {}", o.to_json());
            assert_checked_run(&e);
            let leak = run(&e, "globalThis.leaked = 1; 2", Duration::from_secs(10));
            assert_eq!(leak.result, Ok(serde_json::json!(2)), "round {round}");
        }
    }
}

#[test]
fn issue_3_a_deadline_that_passes_during_a_host_call_ends_the_run_when_it_returns() {
    if in_a_one_slot_child(
        "issue_3_a_deadline_that_passes_during_a_host_call_ends_the_run_when_it_returns",
    ) {
        return;
    }
    let e = engine();
    let host = Arc::new(SlowHost {
        delay: Duration::from_millis(120),
        calls: AtomicUsize::new(0),
    });
    // The first call outlasts the 50 ms deadline: the run must not go on to a second one.
    let o = run_with(
        &e,
        "for (;;) crypto.randomUUID()",
        Duration::from_millis(50),
        host.clone(),
    );
    assert_eq!(o.error_kind(), Some(ErrorKind::Timeout), "{}", o.to_json());
    assert_eq!(host.calls.load(Ordering::Relaxed), 1, "{}", o.to_json());
    assert!(o.metrics.wall_us >= 120_000, "{}", o.to_json());
    assert_checked_run(&e);
}

/// Deadlines that fall just as runs end, so that the watchdog's stop and the run's own end
/// meet: each run is `ok` or `timeout`, never anything else, and every later run is sound.
#[test]
fn issue_3_deadlines_racing_the_end_of_runs_leave_no_trace() {
    if in_a_one_slot_child("issue_3_deadlines_racing_the_end_of_runs_leave_no_trace") {
        return;
    }
    let e = engine();
    let (mut ok, mut timeout) = (0, 0);
    for i in 0..400u64 {
        // About 1-3 ms of work against a 2 ms deadline.
        let n = 20_000 + (i % 7) * 10_000;
        let src = format!("let s = 0; for (let i = 0; i < {n}; i++) s += i % 3; s");
        let o = run(&e, &src, Duration::from_millis(2));
        match o.error_kind() {
            None => {
                let want: u64 = (0..n).map(|i| i % 3).sum();
                assert_eq!(o.result, Ok(serde_json::json!(want)), "{}", o.to_json());
                ok += 1;
            }
            Some(ErrorKind::Timeout) => timeout += 1,
            Some(_) => panic!("{}", o.to_json()),
        }
        if i % 50 == 0 {
            assert_checked_run(&e);
        }
    }
    eprintln!("{ok} ok, {timeout} timeout");
    assert_checked_run(&e);
}
