//! Issue 5: the native engine runs every execution on its thread's sealed runtime, restored
//! after each run. These cases run on one thread, back to back, so each later run executes in
//! the very heap an earlier one used, and check that nothing of the earlier run shows.

use std::time::Duration;

use palisade_core::host::no_host;
use palisade_core::policy::Deterministic;
use palisade_core::{Engine, Outcome, Request};
use palisade_quickjs::{QuickJs, QuickJsOptions};
use serde_json::{json, Value};

fn run(engine: &QuickJs, request: &Request) -> Outcome {
    engine.execute(request, no_host())
}

fn value(engine: &QuickJs, source: &str) -> Value {
    let outcome = run(engine, &Request::script(source));
    match outcome.result {
        Ok(v) => v,
        Err(e) => panic!("{source}: {e}"),
    }
}

#[test]
fn issue_5_a_run_sees_nothing_an_earlier_run_changed() {
    let engine = QuickJs::new();
    let pristine = "[typeof leak, typeof Object.prototype.polluted, typeof [].push, \
                    typeof JSON.stringify, Object.keys(globalThis).length, typeof pending]";
    let before = value(&engine, pristine);
    value(
        &engine,
        "globalThis.leak = 1; Object.prototype.polluted = true; Array.prototype.push = null; \
         JSON.stringify = null; globalThis.a = {}; globalThis.a.self = globalThis.a; \
         new Promise(() => {}); Promise.resolve().then(() => { globalThis.pending = 1 }); 0",
    );
    assert_eq!(value(&engine, pristine), before);
    assert_eq!(
        before,
        json!([
            "undefined",
            "undefined",
            "function",
            "function",
            // `input` only: `console` and `WebAssembly` are not enumerable, as on V8.
            1,
            "undefined"
        ])
    );
}

#[test]
fn issue_5_host_functions_survive_a_run_that_drops_and_collects_them() {
    let engine = QuickJs::new();
    // Drop every reference the guest has to the console, the policy's throwers and
    // Math.random, then make enough cyclic garbage that QuickJS's collector runs.
    let outcome = run(
        &engine,
        &Request::script(
            "delete globalThis.console; delete globalThis.eval; delete globalThis.Function; \
             delete globalThis.Atomics; delete globalThis.SharedArrayBuffer; Math.random = null; \
             for (let i = 0; i < 200000; i++) { const a = {}; const b = { a }; a.b = b; } 1",
        ),
    );
    assert_eq!(outcome.result.unwrap(), json!(1));
    let outcome = run(
        &engine,
        &Request::script(
            "console.log('still here'); \
             let denied = ''; try { eval('1') } catch (e) { denied = e.name } \
             [typeof Math.random(), denied]",
        ),
    );
    assert_eq!(outcome.stdout, "still here\n");
    assert_eq!(outcome.result.unwrap(), json!(["number", "EvalError"]));
}

#[test]
fn issue_5_math_random_is_fresh_per_run_and_seeded_when_deterministic() {
    let engine = QuickJs::new();
    let a = value(&engine, "[Math.random(), Math.random()]");
    let b = value(&engine, "[Math.random(), Math.random()]");
    assert_ne!(a, b, "a restored heap must not replay the generator");
    let mut det = Request::script("[Math.random(), Date.now()]");
    det.policy.deterministic = Some(Deterministic {
        seed: 7,
        ..Deterministic::default()
    });
    let x = run(&engine, &det).result.unwrap();
    let y = run(&engine, &det).result.unwrap();
    assert_eq!(x, y);
    // And outside deterministic mode again, the clock is the real one.
    let now = value(&engine, "Date.now()").as_f64().unwrap();
    assert!(now > 1.7e12, "{now}");
}

#[test]
fn issue_5_limits_hit_in_one_run_do_not_carry_over() {
    let engine = QuickJs::new();
    // The third run of a source: the first two compiled it (the second kept its bytecode, which
    // later runs read).
    run(&engine, &Request::script("1"));
    run(&engine, &Request::script("1"));
    let baseline = run(&engine, &Request::script("1")).metrics.memory_bytes;

    let mut bomb = Request::script("const k = []; for (;;) k.push(new Array(1e5).fill(1));");
    bomb.limits.memory = 16 << 20;
    let outcome = run(&engine, &bomb);
    assert_eq!(
        outcome.error_kind().map(|k| k.as_str()),
        Some("memory_limit")
    );

    let mut spin = Request::script("for (;;) {}");
    spin.limits.timeout = Duration::from_millis(50);
    let outcome = run(&engine, &spin);
    assert_eq!(outcome.error_kind().map(|k| k.as_str()), Some("timeout"));

    // A big run within its limit, then the next run is back to the baseline.
    let mut big = Request::script("new Array(4e6).fill(1.5).length");
    big.limits.memory = 256 << 20;
    assert_eq!(run(&engine, &big).result.unwrap(), json!(4_000_000));
    let after = run(&engine, &Request::script("1"));
    assert_eq!(after.result.unwrap(), json!(1));
    assert_eq!(after.metrics.memory_bytes, baseline);
}

#[test]
fn issue_5_restored_and_freshly_built_runtimes_give_the_same_outcomes() {
    let restored = QuickJs::new();
    let built = QuickJs::with_options(QuickJsOptions::default().snapshot(false));
    let cases = [
        "console.log('a', {b: [1, 2]}, 'c'); [1, 'x', null, {y: true}]",
        "function f() { throw new TypeError('boom') }\nf()",
        "let x = ;",
        "Promise.resolve(41).then(v => v + 1)",
        "new Function('return 1')",
        "[typeof fetch, typeof crypto.getRandomValues, typeof input, typeof performance]",
        "const s = new Set([3, 1]); JSON.stringify([...s])",
        "function r(n) { return r(n + 1) } r(0)",
    ];
    for source in cases {
        for _ in 0..2 {
            let a = run(&restored, &Request::script(source));
            let b = run(&built, &Request::script(source));
            assert_eq!(
                (&a.result, &a.stdout, &a.stderr),
                (&b.result, &b.stdout, &b.stderr),
                "{source}"
            );
        }
    }
}

/// A host whose one operation panics (a bug in a host implementation).
#[derive(Debug)]
struct PanickingHost;

impl palisade_core::HostCalls for PanickingHost {
    fn call(
        &self,
        op: &str,
        _arg: &str,
        _bytes: Option<&[u8]>,
    ) -> Result<palisade_core::host::HostValue, palisade_core::host::HostError> {
        panic!("host panicked on {op}");
    }

    fn denied(&self, _message: &str) -> bool {
        false
    }
}

#[test]
fn issue_5_a_host_panic_fails_only_its_own_run() {
    let engine = QuickJs::new();
    // The guest catches the error the panic became; the run is still a host failure.
    let caught = engine.execute(
        &Request::script("try { crypto.randomUUID() } catch (e) { 'caught' }"),
        std::sync::Arc::new(PanickingHost),
    );
    assert_eq!(
        caught.error_kind().map(|k| k.as_str()),
        Some("internal"),
        "{}",
        caught.to_json()
    );
    // Later runs on the same thread, one of them throwing, end as their own code says: the
    // panic is not kept anywhere to be raised again.
    let thrown = run(
        &engine,
        &Request::module("export default () => { throw new TypeError('mine') }"),
    );
    let error = thrown.result.unwrap_err();
    assert_eq!(error.kind().as_str(), "exception", "{error}");
    assert_eq!(value(&engine, "6 * 7"), json!(42));
}
