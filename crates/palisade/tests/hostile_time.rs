//! Hostile use of time, on every engine: a run stops at its deadline even when each step of it is
//! a call into the host that takes a while.

mod common;

use std::time::{Duration, Instant};

use common::{on_every_engine, still_runs};
use palisade::{EngineKind, ErrorKind, Limits, Request};

/// Loops of calls that each take milliseconds in the host: hashing a 30 MB buffer (or formatting
/// a 1 MiB console line). QuickJS asks its interrupt handler only once every
/// 10,000 polls, so before 2026-12-01 the `quickjs` engine ran such loops until they ended
/// (seconds to minutes past a 300 ms timeout; the CLI's watchdog ended the process at 2.3 s and
/// dropped the output). Its console and host door now stop the run at every call once the
/// deadline has passed, uncatchably, as `wasm` (memory revocation) and `v8` (watchdog) stop
/// wherever they are.
#[test]
fn regression_a_loop_of_slow_host_calls_stops_at_the_deadline() {
    // (A console loop is the same check on `quickjs`, but not slow past the output cap: every
    // engine drops the lines there before formatting them.)
    each_stops_at_the_deadline(&[
        "const b = new Uint8Array(3e7); for (let i = 0; i < 1000; i++) crypto.subtle.digest('SHA-256', b); 1",
        "const b = new Uint8Array(3e7); \
         for (let i = 0; i < 1000; i++) { try { crypto.subtle.digest('SHA-256', b) } catch {} } 1",
    ]);
}

/// Loops of built-ins that each take a millisecond or more inside QuickJS, where no poll runs:
/// before 2026-12-02 the `quickjs` engine's interrupt handler saw its deadline only after
/// 10,000 polls, several seconds late (the CLI's watchdog ended the process at 2.1 s under a
/// 100 ms timeout). Each of these builds something large, and the native allocator now refuses
/// a large block once the deadline has passed: the built-in fails, and a run that catches the
/// failure loops quickly to its next poll, which stops it for good. A built-in that carries on
/// after its failure, as `JSON.stringify` walks the rest of its value and `join` the rest of its
/// array, polls in that loop since the same day's vendored fix 8: before, a loop that caught its
/// failure was ended only by the CLI's watchdog, at 2.1 s.
#[test]
fn regression_a_loop_of_slow_builtins_stops_at_the_deadline() {
    each_stops_at_the_deadline(&[
        "for (;;) 'x'.repeat(3e6)",
        "for (;;) { try { 'x'.repeat(3e6) } catch {} }",
        "const a = Array.from({ length: 2e5 }, (_, i) => i); for (;;) a.join(',')",
        "const a = Array.from({ length: 1e5 }, (_, i) => (i * 7919) % 1e5); for (;;) a.slice().sort()",
        "const a = Array(1e5).fill({ a: 1 }); for (;;) JSON.stringify(a)",
        "const a = Array(1e5).fill({ a: 1 }); for (;;) { try { JSON.stringify(a) } catch {} }",
        "const a = Array(3e5).fill('x'.repeat(30)); for (;;) { try { a.join(',') } catch {} }",
        "const s = 'ab'.repeat(5e5); for (;;) s.split('')",
    ]);
}

/// A built-in that V8 cannot interrupt: sorting a sparse array of 2^30 elements checks for no
/// interrupt and runs for minutes. The run ended as a timeout, but its V8 worker went back into
/// the pool still busy with it (freeing the context waits for it), so the next run, any
/// tenant's in the service, waited there until it timed out too (found by a sweep of the
/// service, 2026-12-02). The worker is now replaced. On `quickjs` both loops poll the interrupt
/// handler (`sort`'s since vendored fix 8), so the run stops at its deadline on the calling
/// thread.
#[test]
fn regression_a_builtin_past_its_deadline_does_not_hold_the_next_run() {
    on_every_engine(|kind, sandbox| {
        let limits = Limits {
            timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        for src in [
            "const a = []; a[2 ** 30] = 1; a.sort(); 1",
            "const a = []; a[2 ** 30] = 1; a.indexOf(2); 1",
        ] {
            let stuck = sandbox.run(&Request::script(src).with_limits(limits.clone()));
            if stuck.error_kind() != Some(ErrorKind::Timeout) {
                return Err(format!("{kind}: {src}: {:?}", stuck.to_record()));
            }
            still_runs(kind, sandbox)?;
        }
        Ok(())
    });
}

/// Array built-ins over an array-like's or a sparse array's indexes, up to a `length` the guest
/// chose, allocating nothing for a hole. QuickJS-NG polled its interrupt handler in `fill`,
/// `includes`, `indexOf` and `lastIndexOf` only, so on `quickjs` these held the calling thread
/// for hours (2^40 steps), and `palisade run` and the service ended them only by killing the
/// process or the worker 2 s past the deadline, losing the output already written. Vendored fix 8
/// polls in each loop: the run stops at its deadline and keeps its output, on every engine.
#[test]
fn regression_generic_array_loops_stop_at_the_deadline_with_their_output() {
    let cases = [
        "Array.prototype.reverse.call({ length: 2 ** 40 })",
        "Array.prototype.copyWithin.call({ length: 2 ** 40 }, 0, 1)",
        "Array.prototype.shift.call({ length: 2 ** 40 })",
        "Array.prototype.unshift.call({ length: 2 ** 40 }, 1)",
        "Array.prototype.splice.call({ length: 2 ** 40 }, 0, 1)",
        "Array.prototype.flat.call({ length: 2 ** 40 })",
        "Array.prototype.slice.call({ length: 2 ** 32 - 1 })",
        "Array(2 ** 32 - 1).reverse()",
        "Array(2 ** 32 - 1).sort()",
    ];
    // V8 ends these sooner, by limits of its own: a sort's work array for 2^40 elements is a
    // fatal out-of-memory (`memory_limit`), a string past its maximum length a RangeError, and
    // its `concat` returns at once.
    let not_v8 = [
        "Array.prototype.sort.call({ length: 2 ** 40 })",
        "Array.prototype.join.call({ length: 2 ** 40 })",
        "[].concat({ length: 2 ** 40, [Symbol.isConcatSpreadable]: true })",
        "JSON.stringify(Array(2 ** 32 - 1))",
    ];
    let timeout = Duration::from_millis(300);
    on_every_engine(|kind, sandbox| {
        let more = if kind == EngineKind::V8 {
            &[][..]
        } else {
            &not_v8[..]
        };
        for src in cases.iter().chain(more) {
            let started = Instant::now();
            let outcome = sandbox.run(
                &Request::script(format!("console.log('before'); {src}")).with_limits(Limits {
                    timeout,
                    ..Limits::default()
                }),
            );
            let took = started.elapsed();
            // Not a speed goal: the bound tells a stop at the deadline from one hours later.
            if outcome.error_kind() != Some(ErrorKind::Timeout)
                || outcome.stdout != "before\n"
                || took > timeout * 4
            {
                return Err(format!(
                    "{kind}: {src}: {took:?}: {:?}",
                    outcome.to_record()
                ));
            }
        }
        still_runs(kind, sandbox)
    });
}

/// Each of `cases` ends as a timeout close to its deadline, on every engine, and the sandbox
/// runs on.
fn each_stops_at_the_deadline(cases: &[&str]) {
    let timeout = Duration::from_millis(300);
    on_every_engine(|kind, sandbox| {
        for src in cases {
            // Room for the garbage copies: v8 counts them until it collects (ARCHITECTURE).
            let limits = Limits {
                timeout,
                memory: 1 << 30,
                ..Limits::default()
            };
            let started = Instant::now();
            let outcome = sandbox.run(&Request::script(*src).with_limits(limits));
            let took = started.elapsed();
            // The bound is for a stop at the deadline on a loaded machine, not a speed goal: the
            // old behaviour took seconds to minutes here.
            if outcome.error_kind() != Some(ErrorKind::Timeout) || took > timeout * 4 {
                return Err(format!(
                    "{kind}: {src}: {took:?}: {:?}",
                    outcome.to_record().error
                ));
            }
        }
        still_runs(kind, sandbox)
    });
}
