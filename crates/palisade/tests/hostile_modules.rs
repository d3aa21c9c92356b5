//! Hostile module graphs, on every engine: the host survives and the sandbox keeps working.

mod common;

use common::{on_every_engine, still_runs};
use palisade::{ErrorKind, Request};
use serde_json::json;

/// A main module importing `./m0.js`, and `n` modules each importing the next; the last one is
/// `last`, which exports `v`.
fn chain(n: usize, last: &str) -> Request {
    let mut req = Request::module("import { v } from './m0.js';\nexport default v;")
        .with_filename("main.mjs");
    for i in 0..n {
        let src = if i + 1 < n {
            format!(
                "import {{ v as w }} from './m{}.js';\nexport const v = w + 1;",
                i + 1
            )
        } else {
            last.to_owned()
        };
        req = req.with_module(format!("./m{i}.js"), src);
    }
    req
}

/// A chain of 10,000 modules, each importing the next. QuickJS resolves a module graph
/// recursively without checking its stack limit, so before 2026-11-30 this ran the native stack
/// out and aborted the host process on the `quickjs` engine (found by the cross-engine
/// differential run of module graphs). Each engine now either evaluates the chain (v8's loader
/// walks the graph without recursing) or ends the run as `stack_overflow`.
#[test]
fn regression_a_chain_of_10000_imports_ends_as_a_limit_not_a_crash() {
    const N: usize = 10_000;
    let req = chain(N, "export const v = 0;");
    on_every_engine(|kind, sandbox| {
        let outcome = sandbox.run(&req);
        match (&outcome.result, outcome.error_kind()) {
            (Ok(v), _) if *v == json!(N - 1) => {}
            (Err(_), Some(ErrorKind::StackOverflow)) => {}
            _ => {
                return Err(format!(
                    "{kind}: unexpected outcome {:?}",
                    outcome.to_record()
                ))
            }
        }
        still_runs(kind, sandbox)
    });
}

/// Chains of 1,000 to 3,000 imports whose last module is nested 100,000 parentheses deep. The
/// native engine's loader declared each module through rquickjs's `Module::declare`, which moves
/// QuickJS's stack top to the calling frame: the last module's parser, deep inside QuickJS's
/// recursive graph resolution, got the whole stack limit below that depth, ran the native stack
/// out and aborted the host process (found 2026-11-30; which length crashed depended on the
/// thread's stack). Without the fix this aborts the test binary.
#[test]
fn regression_a_deep_module_at_the_end_of_a_long_import_chain_is_stack_overflow() {
    const DEPTH: usize = 100_000;
    let last = format!(
        "export const v = {}1{};",
        "(".repeat(DEPTH),
        ")".repeat(DEPTH)
    );
    let requests: Vec<(usize, Request)> = [1_000, 1_500, 2_000, 2_500, 3_000]
        .into_iter()
        .map(|n| (n, chain(n, &last)))
        .collect();
    on_every_engine(|kind, sandbox| {
        for (n, req) in &requests {
            let outcome = sandbox.run(req);
            if outcome.error_kind() != Some(ErrorKind::StackOverflow) {
                return Err(format!(
                    "{kind}: a chain of {n}: unexpected outcome {:?}",
                    outcome.to_record()
                ));
            }
        }
        still_runs(kind, sandbox)
    });
}
