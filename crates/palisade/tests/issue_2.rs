//! Regression tests for issue 2 (the foundation): isolation between runs, the memory latch,
//! configuration errors, and engine availability.

mod common;

use std::time::Duration;

use palisade::{BuildError, ConfigError, EngineKind, ErrorKind, Limit, Limits, Request, Sandbox};
use serde_json::json;

fn small(memory: u64, timeout_ms: u64) -> Limits {
    Limits {
        memory,
        timeout: Duration::from_millis(timeout_ms),
        ..Limits::default()
    }
}

#[test]
fn issue_2_nothing_survives_into_the_next_run() {
    common::on_every_engine(|_, sb| {
        let first = sb.run(&Request::script(
            "globalThis.leak = 1; Array.prototype.evil = 2; Object.prototype.toString = () => 'x';
             Promise.resolve().then(() => { globalThis.late = 1 });
             new FinalizationRegistry(() => console.log('finalized')).register({}, 0);
             1",
        ));
        if !first.is_ok() {
            return Err(format!("first run failed: {}", first.to_json()));
        }
        let second = sb.run(&Request::script(
            "[typeof leak, typeof late, [].evil === undefined, Object.prototype.toString.call([])]",
        ));
        let want = json!(["undefined", "undefined", true, "[object Array]"]);
        if second.result != Ok(want) || second.stdout.contains("finalized") {
            return Err(format!("state leaked: {}", second.to_json()));
        }
        Ok(())
    });
}

#[test]
fn issue_2_prewarmed_contexts_are_fresh_too() {
    let sb = Sandbox::builder()
        .prewarm(2)
        .build()
        .expect("quickjs builds");
    for i in 0..20 {
        let o = sb.run(&Request::script(format!(
            "const seen = typeof globalThis.mark; globalThis.mark = {i}; seen"
        )));
        assert_eq!(o.result, Ok(json!("undefined")), "run {i}: {}", o.to_json());
    }
}

#[test]
fn issue_2_caught_out_of_memory_is_still_memory_limit() {
    common::on_every_engine(|_, sb| {
        let o = sb.run(
            &Request::script(
                "let keep = [];
                 for (let i = 0; i < 3; i++) {
                   try { for (;;) keep.push(new Array(10000).fill(i)); }
                   catch (e) { keep = []; }
                 }
                 'survived'",
            )
            .with_limits(small(8 << 20, 5000)),
        );
        match o.error() {
            Some(palisade::ExecError::Limit(l)) if l.limit == Limit::Memory => {
                if l.configured != 8 << 20 || l.observed.is_none_or(|b| b <= 8 << 20) {
                    return Err(format!("bad limit receipt: {l:?}"));
                }
                Ok(())
            }
            _ => Err(format!("expected memory_limit: {}", o.to_json())),
        }
    });
}

#[test]
fn issue_2_the_host_survives_a_run_after_each_limit() {
    common::on_every_engine(|_, sb| {
        let hostile = [
            ("for(;;){}", ErrorKind::Timeout),
            (
                "let a = []; for (;;) a.push('x'.repeat(1e4) + a.length);",
                ErrorKind::MemoryLimit,
            ),
            ("(function f(){ f() })()", ErrorKind::StackOverflow),
            ("'x'.repeat(4096)", ErrorKind::ResultLimit),
        ];
        for (src, kind) in hostile {
            // Only the timeout case needs a short deadline; the others get room to hit their own
            // limit first even on a loaded machine (V8 enforces its heap limit after a GC).
            let timeout = if kind == ErrorKind::Timeout {
                100
            } else {
                5000
            };
            let limits = Limits {
                result: 1024,
                ..small(16 << 20, timeout)
            };
            let o = sb.run(&Request::script(src).with_limits(limits));
            if o.error_kind() != Some(kind) {
                return Err(format!("{src}: {}", o.to_json()));
            }
            let ok = sb.run(&Request::script("6 * 7"));
            if ok.result != Ok(json!(42)) {
                return Err(format!("run after {src}: {}", ok.to_json()));
            }
        }
        Ok(())
    });
}

#[test]
fn issue_2_smaller_stack_limit_overflows_sooner() {
    let depth = |stack: u64| {
        let o = Sandbox::new().run(
            &Request::script("let d = 0; function f() { d++; f(); } try { f() } catch (e) { } d")
                .with_limits(Limits {
                    stack: Some(stack),
                    ..Limits::default()
                }),
        );
        o.result
            .expect("caught overflow gives a value")
            .as_u64()
            .expect("a number")
    };
    let (small, large) = (depth(256 << 10), depth(4 << 20));
    assert!(small > 50 && large > small * 4, "depths {small} vs {large}");
}

#[test]
fn issue_2_unenforceable_limit_is_a_configuration_error() {
    let fuel = Limits {
        fuel: Some(1000),
        ..Limits::default()
    };
    let err = Sandbox::builder()
        .engine(EngineKind::QuickJs)
        .expect_limits(fuel.clone())
        .build()
        .expect_err("quickjs cannot count fuel");
    assert_eq!(
        err,
        BuildError::Config(ConfigError::Unsupported {
            engine: "quickjs",
            limit: Limit::Fuel
        })
    );
    let o = Sandbox::new().run(&Request::script("1").with_limits(fuel));
    assert_eq!(o.error_kind(), Some(ErrorKind::InvalidRequest));
    let o = Sandbox::new().run(&Request::script("1").with_limits(Limits {
        memory: 10,
        ..Limits::default()
    }));
    assert_eq!(o.error_kind(), Some(ErrorKind::InvalidRequest));
}

#[test]
fn issue_2_unavailable_engine_is_engine_unavailable() {
    for kind in [EngineKind::Wasm, EngineKind::V8] {
        let info = palisade::engine_info(kind);
        if info.available {
            continue;
        }
        let err = Sandbox::builder()
            .engine(kind)
            .build()
            .expect_err("unavailable");
        let o = err.to_outcome(kind);
        assert_eq!(o.error_kind(), Some(ErrorKind::EngineUnavailable));
        assert_eq!(o.exit_code(), 3);
    }
}

#[test]
fn issue_2_modules_resolve_only_to_supplied_sources() {
    common::on_every_engine(|_, sb| {
        let req = Request::module(
            "import { twice } from './lib/math.js';
             export default (input) => twice(input.n);",
        )
        .with_module(
            "./lib/math.js",
            "import { one } from '../one.js'; export const twice = (n) => 2 * n * one;",
        )
        .with_module("one.js", "export const one = 1;")
        .with_input(json!({"n": 21}));
        let o = sb.run(&req);
        if o.result != Ok(json!(42)) {
            return Err(o.to_json());
        }
        let denied = sb.run(&Request::module("import fs from 'fs'; export default 1;"));
        if denied.error_kind().is_none() {
            return Err(format!(
                "import of an unsupplied module succeeded: {}",
                denied.to_json()
            ));
        }
        Ok(())
    });
}
