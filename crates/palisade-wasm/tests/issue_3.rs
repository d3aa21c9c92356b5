//! Issue 3 (the wasm engine): fuel inside long native builtins, `fuel_used` repeated across
//! engine instances and processes, and results nested too deeply for `JSON.stringify`'s C
//! recursion.

use std::process::Command;
use std::time::Duration;

use palisade_core::host::no_host;
use palisade_core::policy::Deterministic;
use palisade_core::{Engine, ErrorKind, Limits, Outcome, Policy, Request};
use palisade_quickjs::QuickJs;
use palisade_wasm::{Wasm, WasmOptions};

fn engine() -> Wasm {
    Wasm::with_options(WasmOptions::default()).expect("the wasm engine starts")
}

fn fuel(budget: u64) -> Limits {
    Limits {
        fuel: Some(budget),
        timeout: Duration::from_secs(30),
        ..Limits::default()
    }
}

fn run(e: &dyn Engine, src: &str, limits: Limits) -> Outcome {
    e.execute(&Request::script(src).with_limits(limits), no_host())
}

/// After any ending, the same engine still runs `1+1`, with and without fuel.
fn assert_healthy(e: &Wasm) {
    for limits in [Limits::default(), fuel(10_000_000)] {
        let o = run(e, "1+1", limits);
        assert_eq!(o.result, Ok(serde_json::json!(2)), "{}", o.to_json());
    }
}

/// Fuel left after `setup` runs to completion is far too little for `work`: the run must end as
/// `fuel_exhausted`, which can then only have happened inside `work` (a native builtin).
fn assert_fuel_stops_builtin(setup: &str, work: &str) {
    let e = engine();
    let alone = run(&e, &format!("{setup}; 0"), fuel(1 << 40));
    assert_eq!(
        alone.result,
        Ok(serde_json::json!(0)),
        "{}",
        alone.to_json()
    );
    let setup_fuel = alone.metrics.fuel_used.expect("fuel_used is reported");
    // Setup's own cost repeats exactly, so this margin is what the builtin gets.
    let budget = setup_fuel + 2_000_000;
    let o = run(&e, &format!("{setup}; {work}; 0"), fuel(budget));
    assert_eq!(
        o.error_kind(),
        Some(ErrorKind::FuelExhausted),
        "{work}: {}",
        o.to_json()
    );
    assert_eq!(o.metrics.fuel_used, Some(budget), "{}", o.to_json());
    assert_healthy(&e);
}

#[test]
fn issue_3_fuel_exhausts_inside_array_sort() {
    // Without a comparator every comparison converts both numbers to strings, in C.
    assert_fuel_stops_builtin(
        "const a = Array.from({ length: 200000 }, (_, i) => (i * 7919) % 200003)",
        "a.sort()",
    );
}

#[test]
fn issue_3_fuel_exhausts_inside_array_join() {
    assert_fuel_stops_builtin("const a = new Array(1000000).fill('abc')", "a.join(',')");
}

#[test]
fn issue_3_fuel_exhausts_inside_catastrophic_regex() {
    // 2^30 backtracking steps inside lre_exec: only fuel (or the deadline) ends it.
    assert_fuel_stops_builtin(
        "const re = /(a+)+$/, s = 'a'.repeat(30) + 'b'",
        "re.test(s)",
    );
    // And with a small absolute budget, the whole run included.
    let e = engine();
    let o = run(&e, "/(a+)+$/.test('a'.repeat(30) + 'b')", fuel(5_000_000));
    assert_eq!(
        o.error_kind(),
        Some(ErrorKind::FuelExhausted),
        "{}",
        o.to_json()
    );
    assert_healthy(&e);
}

/// A script that uses the input, the seeded `Math.random`, the deterministic clock, a sort, a
/// regex and JSON: its fuel must repeat exactly.
fn deterministic_request() -> Request {
    let src = r#"
        const xs = Array.from({ length: 2000 }, () => Math.random());
        xs.sort();
        const words = input.words.map((w) => w.toUpperCase()).join('-');
        const m = /([A-Z]+)-(\d+)/.exec(words + '-' + xs.length);
        ({ first: xs[0], words, m: m && m[2], now: Date.now(), json: JSON.stringify(xs.slice(0, 3)).length })
    "#;
    let policy = Policy {
        deterministic: Some(Deterministic {
            seed: 42,
            ..Deterministic::default()
        }),
        ..Policy::default()
    };
    Request::script(src)
        .with_input(serde_json::json!({ "words": ["alpha", "beta", "gamma"] }))
        .with_policy(policy)
        .with_limits(fuel(1 << 40))
}

/// The engine keeps bytecode of sources it runs often (compile once, run many); a fuel budget
/// counts the compilation, so runs under one never read it: the same fuel either way.
#[test]
fn issue_3_fuel_used_is_the_same_once_the_source_is_cached() {
    let fresh = fuel_of(&engine());
    let e = engine();
    let mut unmetered = deterministic_request();
    unmetered.limits.fuel = None;
    for _ in 0..3 {
        let o = e.execute(&unmetered, no_host());
        assert_eq!(o.result.as_ref().ok(), Some(&fresh.1));
    }
    assert_eq!(fuel_of(&e), fresh);
    assert_eq!(fuel_of(&e), fresh);
}

const CHILD_ENV: &str = "PALISADE_ISSUE_3_FUEL_CHILD";

fn fuel_of(e: &Wasm) -> (u64, serde_json::Value) {
    let o = e.execute(&deterministic_request(), no_host());
    let value = o.result.clone().unwrap_or_else(|e| panic!("{e}"));
    (o.metrics.fuel_used.expect("fuel_used is reported"), value)
}

#[test]
fn issue_3_fuel_used_repeats_across_engine_instances_and_processes() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The child: a separate process, so a separate Wasmtime engine, snapshot and
        // compilation (no disk cache).
        let e = Wasm::with_options(WasmOptions::default().no_disk_cache(true))
            .expect("the wasm engine starts");
        let (used, value) = fuel_of(&e);
        println!("\nCHILD_FUEL_USED={used} {value}");
        return;
    }
    let a = engine();
    let (used_a, value_a) = fuel_of(&a);
    let (again, _) = fuel_of(&a);
    assert_eq!(used_a, again, "two runs on one engine");
    let b = Wasm::with_options(WasmOptions::default().prewarm(2)).expect("a second engine");
    let (used_b, value_b) = fuel_of(&b);
    assert_eq!(used_a, used_b, "two engine instances in one process");
    assert_eq!(value_a, value_b);

    let out = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "issue_3_fuel_used_repeats_across_engine_instances_and_processes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("the child test process runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD_FUEL_USED=").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no fuel line from the child: {stdout}"));
    let (used_c, value_c) = line.split_once(' ').expect("fuel and value");
    assert_eq!(
        used_c.parse::<u64>().ok(),
        Some(used_a),
        "an engine in another process (fresh compile) uses the same fuel"
    );
    assert_eq!(value_c, value_a.to_string());
}

fn nested(levels: u32) -> String {
    format!("let a = []; for (let i = 0; i < {levels}; i++) a = [a]; a")
}

#[test]
fn issue_3_deep_results_are_not_serializable_like_the_native_engine() {
    let wasm = engine();
    let native = QuickJs::new();
    let too_deep = palisade_core::result_too_deep().to_string();
    let limits = Limits {
        memory: 512 << 20,
        timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    for levels in [100_000, 1_000_000] {
        let src = nested(levels);
        let w = run(&wasm, &src, limits.clone());
        assert_eq!(
            w.error_kind(),
            Some(ErrorKind::NotSerializable),
            "wasm, {levels} levels: {}",
            w.to_json()
        );
        let message = w.result.as_ref().err().map(ToString::to_string);
        assert_eq!(message.as_deref(), Some(too_deep.as_str()), "{levels}");

        let q = run(&native, &src, limits.clone());
        assert_eq!(
            q.error_kind(),
            Some(ErrorKind::NotSerializable),
            "quickjs, {levels} levels: {}",
            q.to_json()
        );
        assert_eq!(
            q.result.as_ref().err().map(ToString::to_string),
            message,
            "the same message on both engines, {levels} levels"
        );
    }
    // With fuel (the other compilation) too, and the engine is fine afterwards.
    let mut with_fuel = limits.clone();
    with_fuel.fuel = Some(1 << 40);
    let w = run(&wasm, &nested(100_000), with_fuel);
    assert_eq!(
        w.error_kind(),
        Some(ErrorKind::NotSerializable),
        "{}",
        w.to_json()
    );
    assert_healthy(&wasm);
}

#[test]
fn issue_3_native_stack_exhaustion_outside_the_result_is_still_stack_overflow() {
    // The same recursion in guest code (not the result's conversion) stays `stack_overflow`.
    let wasm = engine();
    let o = run(
        &wasm,
        &format!(
            "{}; JSON.stringify(a); 1",
            nested(100_000).trim_end_matches("; a")
        ),
        Limits::default(),
    );
    assert_eq!(
        o.error_kind(),
        Some(ErrorKind::StackOverflow),
        "{}",
        o.to_json()
    );
    // A shallow result past the conversion depth is the shared rule's `not_serializable`.
    let o = run(&wasm, &nested(5_000), Limits::default());
    assert_eq!(o.error_kind(), Some(ErrorKind::NotSerializable));
    assert_healthy(&wasm);
}

#[test]
fn issue_3_c_recursion_deeper_than_the_native_stack_throws_a_catchable_range_error() {
    // C-only recursion (JSON.stringify and JSON.parse of deep values) used to exhaust
    // Wasmtime's native stack before QuickJS's shadow-stack check fired: an uncatchable trap,
    // where the native engine throws a RangeError the script can catch. Now both throw it.
    let wasm = engine();
    let native = QuickJs::new();
    let caught = |body: &str| {
        format!("let r; try {{ {body}; r = 'ok' }} catch (e) {{ r = e.name + ': ' + e.message }} r")
    };
    let stringify = caught(&format!(
        "{}; JSON.stringify(a)",
        nested(200_000).trim_end_matches("; a")
    ));
    let parse = caught("const s = '['.repeat(200000) + ']'.repeat(200000); JSON.parse(s)");
    let expected = serde_json::json!(format!(
        "RangeError: {}",
        palisade_core::STACK_OVERFLOW_MESSAGE
    ));
    for (what, src) in [("stringify", &stringify), ("parse", &parse)] {
        for fueled in [false, true] {
            let mut limits = Limits {
                memory: 256 << 20,
                timeout: Duration::from_secs(30),
                ..Limits::default()
            };
            if fueled {
                limits.fuel = Some(1 << 40);
            }
            let w = run(&wasm, src, limits.clone());
            assert_eq!(
                w.result,
                Ok(expected.clone()),
                "wasm, {what}: {}",
                w.to_json()
            );
            let q = run(&native, src, limits);
            assert_eq!(
                q.result,
                Ok(expected.clone()),
                "quickjs, {what}: {}",
                q.to_json()
            );
        }
    }
    // A smaller JS stack budget gives a smaller share of the native stack: the same script
    // throws at a shallower depth.
    let depth = |stack: u64| {
        let src = "let a = []; let n = 0; for (;;) { a = [a]; n++; if (n % 500 === 0) \
                   { try { JSON.stringify(a) } catch (e) { break } } } n";
        let o = run(
            &wasm,
            src,
            Limits {
                stack: Some(stack),
                memory: 256 << 20,
                timeout: Duration::from_secs(30),
                ..Limits::default()
            },
        );
        o.result
            .as_ref()
            .ok()
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("{}", o.to_json()))
    };
    let (small, big) = (depth(128 << 10), depth(1 << 20));
    assert!(small >= 500 && big > 2 * small, "{small} {big}");
    assert_healthy(&wasm);
}

/// What a run sees of the snapshot: globals, prototypes, builtins.
const PROBE: &str =
    "JSON.stringify([typeof globalThis.leaked, Object.getOwnPropertyNames(globalThis).length, \
    ({}).polluted, [3, 1, 2].sort().join(), typeof Array.prototype.sort, Math.max(1, 2)])";

/// A run that wrote much of its linear memory (deep recursion, a garbage collection) has its
/// pages handed back to the kernel instead of reset one by one. Every later run in the slot must
/// still start from the snapshot exactly, with or without fuel.
#[test]
fn issue_3_a_slot_handed_back_after_a_heavy_run_starts_from_the_snapshot() {
    let e = engine();
    let pollute =
        "globalThis.leaked = 1; Object.prototype.polluted = 1; Array.prototype.sort = null;";
    let heavy = [
        format!("{pollute} function f(n) {{ return n ? 1 + f(n - 1) : 0 }} try {{ f(1e6) }} catch (e) {{}} 'deep'"),
        format!("{pollute} let a = []; for (let i = 0; i < 100000; i++) a.push({{ i, s: 'x' + i }}); 'heap'"),
    ];
    for limits in [Limits::default(), fuel(2_000_000_000)] {
        // Twice first, so that every probe compared reads the same cached bytecode (a run that
        // compiles peaks at another memory figure than one that reads bytecode).
        for _ in 0..2 {
            run(&e, PROBE, limits.clone());
        }
        let expected = run(&e, PROBE, limits.clone());
        assert!(expected.result.is_ok(), "{}", expected.to_json());
        for src in &heavy {
            let o = run(&e, src, limits.clone());
            assert!(o.result.is_ok(), "{}", o.to_json());
            for _ in 0..3 {
                let again = run(&e, PROBE, limits.clone());
                assert_eq!(again.result, expected.result, "after {src}");
                assert_eq!(again.metrics.memory_bytes, expected.metrics.memory_bytes);
            }
        }
    }
    assert_healthy(&e);
}

/// The snapshot already has the default policy applied (prepare.js); a run under another policy
/// deletes or restores globals on top. Interleaved in one engine, every run must see exactly its
/// own policy's globals, with the attributes the native engine gives them, and the default
/// policy's runs must not inherit what an earlier run restored or deleted.
#[test]
fn issue_3_runs_see_their_own_policys_globals_whatever_ran_before() {
    const GLOBALS: &str = "JSON.stringify(['console', 'input', 'crypto', 'performance', 'fetch', \
        'Headers', 'Response', 'secrets'].map(n => { const d = Object.getOwnPropertyDescriptor(\
        globalThis, n); return d ? [n, typeof d.value, d.writable, d.enumerable, d.configurable] \
        : n; }))";
    let mut none = Policy::default();
    none.globals.clear();
    let mut all = Policy::permissive();
    all.fetch.allow = vec!["https://api.example.com/".parse().expect("pattern")];
    all.secrets.insert("TOKEN".into());
    let policies = [Policy::default(), all, none, Policy::default()];
    let wasm = engine();
    let native = QuickJs::new();
    for round in 0..2 {
        for (i, policy) in policies.iter().enumerate() {
            let req = Request::script(GLOBALS).with_policy(policy.clone());
            let got = wasm.execute(&req, no_host());
            let want = native.execute(&req, no_host());
            assert!(got.result.is_ok(), "{}", got.to_json());
            assert_eq!(got.result, want.result, "round {round}, policy {i}");
        }
    }
}

/// An error thrown inside Palisade's own scripts (the host prelude, its fetch part, the
/// deterministic clock) has frames there, which the guest can print: they must read the same as
/// on the native engine. Before, the wasm guest evaluated the prelude with its fetch part bound in
/// one script and called the files `eval_script`, so every such frame was a line off (and fetch
/// frames hundreds of lines off). The outcome of an uncaught one drops those frames.
#[test]
fn issue_3_frames_in_palisade_scripts_read_the_same_as_on_the_native_engine() {
    let src = r#"
        const show = (e) => console.log(e.name, e.stack);
        try { crypto.getRandomValues(5) } catch (e) { show(e) }
        try { new Headers([["a"]]) } catch (e) { show(e) }
        try { new Response(1, { status: 7 }) } catch (e) { show(e) }
        crypto.subtle.digest("nope", new Uint8Array(1)).catch(show);
        fetch("https://api.example.com/", { method: "A B" }).catch(show);
        try { Date.prototype.getTime.call(1) } catch (e) { show(e) }
        new Headers([["a"]]);
    "#;
    let mut policy = Policy {
        deterministic: Some(Deterministic::default()),
        ..Policy::default()
    };
    policy.fetch.allow = vec!["https://api.example.com/".parse().expect("pattern")];
    let req = Request::script(src).with_policy(policy);
    let got = engine().execute(&req, no_host());
    let want = QuickJs::new().execute(&req, no_host());
    for file in ["palisade:host:", "palisade:fetch:"] {
        assert!(want.stdout.contains(file), "{}", want.stdout);
    }
    assert_eq!(got.stdout, want.stdout);
    assert_eq!(got.result, want.result);
    let stack = match &got.result {
        Err(palisade_core::ExecError::Exception(g)) => g.stack.clone().unwrap_or_default(),
        other => panic!("expected an exception, got {other:?}"),
    };
    assert!(!stack.contains("palisade:"), "{stack}");
    assert!(stack.contains("at <eval> (script.js:9:"), "{stack}");
}

/// The global object's own keys come in the same order as on the native engine, under the
/// default policy and under policies that add or remove host globals, whatever ran before in
/// the same engine. Before, the wasm snapshot defined the host globals before the
/// `WebAssembly` stub (`...,console,crypto,WebAssembly,input` against the native
/// `...,console,WebAssembly,crypto,input`), and a global a run restored came after `input`.
#[test]
fn issue_3_the_global_objects_keys_come_in_the_native_engines_order() {
    const KEYS: &str = "Reflect.ownKeys(globalThis).map(String).join()";
    let mut perf = Policy::default();
    perf.globals.insert(palisade_core::HostGlobal::Performance);
    let mut bare = Policy::default();
    bare.globals.clear();
    let mut all = Policy::permissive();
    all.fetch.allow = vec!["https://api.example.com/".parse().expect("pattern")];
    all.secrets.insert("TOKEN".into());
    let wasm = engine();
    let native = QuickJs::new();
    for policy in [Policy::default(), perf, bare, all, Policy::default()] {
        let req = Request::script(KEYS).with_policy(policy);
        let got = wasm.execute(&req, no_host());
        let want = native.execute(&req, no_host());
        assert!(want.result.is_ok(), "{}", want.to_json());
        assert_eq!(got.result, want.result);
    }
}

/// A module specifier with a lone surrogate reads as one U+FFFD on both QuickJS engines, as
/// every string crossing to the host does: a supplied module of that name loads, and any other
/// is the policy's denial. Before, rquickjs's strict conversion failed on the native engine
/// first (`exception`, "Conversion from string failed"), where wasm resolved the name.
#[test]
fn issue_3_module_specifiers_with_lone_surrogates_resolve_alike() {
    let cases = [
        Request::module("import k from './\\ud800.js'; export default k;")
            .with_module("./\u{FFFD}.js", "export default 42;"),
        Request::module("import k from './\\udc00'; export default k;"),
        Request::module(
            "const out = []; for (const s of ['./\\ud800.js', './\\ud800x']) { try { \
             out.push((await import(s)).default) } catch (e) { out.push(e.message) } } \
             export default out;",
        )
        .with_module("./\u{FFFD}.js", "export default 7;"),
    ];
    let wasm = engine();
    let native = QuickJs::new();
    for (i, req) in cases.iter().enumerate() {
        let got = wasm.execute(req, no_host());
        let want = native.execute(req, no_host());
        assert_eq!(got.result, want.result, "case {i}: {}", want.to_json());
        assert!(!want.to_json().contains("Conversion"), "{}", want.to_json());
    }
    let first = native.execute(&cases[0], no_host());
    assert_eq!(
        first.result,
        Ok(serde_json::json!(42)),
        "{}",
        first.to_json()
    );
}

#[test]
fn issue_3_a_huge_zero_fill_stops_at_the_deadline() {
    // Wasmtime runs a `memory.fill`/`memory.copy` as one host call no deadline interrupts, and
    // QuickJS zero-filled a new 1 GiB `ArrayBuffer` (1 GiB of fresh pages to fault in) in one:
    // until 2026-12-01 this ran 0.8 s past a 100 ms timeout, and the service's worker was
    // killed for it (`internal`). The guest now copies and fills with loops of its own, which
    // the deadline's memory revocation stops (no bulk memory instructions at all:
    // guest::tests::issue_3_the_guest_has_no_bulk_memory_instructions).
    let wasm = engine();
    let limits = Limits {
        memory: 3 << 30,
        timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    for src in [
        "new ArrayBuffer(2 ** 30); 1",
        "new ArrayBuffer(8, { maxByteLength: 2 ** 30 }).resize(2 ** 30); 1",
    ] {
        let o = run(&wasm, src, limits.clone());
        assert_eq!(o.error_kind(), Some(ErrorKind::Timeout), "{}", o.to_json());
        // Stopped near the deadline, with room for a loaded machine.
        assert!(o.metrics.wall_us < 400_000, "{src}: {}", o.to_json());
    }
    assert_healthy(&wasm);
}

/// A closed memory latch wins over the fuel budget that ran out after it: the guest caught its
/// out-of-memory error and looped without a host call until the fuel ran out. Before
/// 2026-12-01 this was `fuel_exhausted` on wasm (found by a helper's hunt); the native engine,
/// which has no fuel, says `memory_limit`.
#[test]
fn issue_3_a_memory_limit_hit_before_the_fuel_ran_out_wins() {
    let e = engine();
    let limits = |budget| Limits {
        memory: 8 << 20,
        ..fuel(budget)
    };
    // The fuel up to the loop, then a budget that runs out a few hundred turns into it, long
    // before QuickJS's next interrupt poll (which would end the run on the latch).
    let prefix = "let n = 0; try { new ArrayBuffer(300e6) } catch (e) { n = 1 }";
    let o = run(&e, prefix, limits(1 << 40));
    assert_eq!(
        o.error_kind(),
        Some(ErrorKind::MemoryLimit),
        "{}",
        o.to_json()
    );
    let used = o.metrics.fuel_used.expect("fuel_used");
    let src = "let n = 0; try { new ArrayBuffer(300e6) } catch (e) { for (;;) n++ }";
    let o = run(&e, src, limits(used + 20_000));
    assert_eq!(
        o.error_kind(),
        Some(ErrorKind::MemoryLimit),
        "{}",
        o.to_json()
    );
    assert_healthy(&e);
}
