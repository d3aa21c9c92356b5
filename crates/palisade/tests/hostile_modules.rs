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

/// A chain of 24 imports whose last module has a real syntax error. The native engine compiled a
/// failed module again with more stack to tell a real syntax error from one the stack made, in
/// its loader too; QuickJS compiles a module's imports while it compiles the module, so each
/// level compiled the levels below it twice more: 2^24 compiles, and a `timeout` instead of the
/// `syntax_error` (found in review, 2026-11-30). Only the run's own compile is judged now.
#[test]
fn regression_a_syntax_error_at_the_end_of_an_import_chain_is_found_once() {
    let req = chain(24, "export const v = ;");
    on_every_engine(|kind, sandbox| {
        let outcome = sandbox.run(&req);
        if outcome.error_kind() != Some(ErrorKind::SyntaxError) {
            return Err(format!(
                "{kind}: unexpected outcome {:?}",
                outcome.to_record()
            ));
        }
        still_runs(kind, sandbox)
    });
}

/// A guest `Error.prepareStackTrace` that allocates 12 MiB each time QuickJS builds an error,
/// then a dynamic import of a module with a syntax error, under a 16 MiB limit. The native
/// engine's second compile of that module ran outside the run's memory accounting, with twice
/// the limit, and the guest's `prepareStackTrace` ran inside it: the run kept 24 MiB and ended
/// with a value (found in review, 2026-11-30). The guest never holds more than its limit.
#[test]
fn regression_guest_code_never_runs_outside_the_memory_accounting() {
    let req = Request::module(
        "globalThis.keep = [];\n\
         Error.prepareStackTrace = () => { keep.push(new Uint8Array(12 << 20).fill(1)); return 'x'; };\n\
         try { await import('./bad.js'); } catch (e) {}\n\
         export default keep.length;",
    )
    .with_filename("main.mjs")
    .with_module("./bad.js", "export const v = ;")
    .with_limits(palisade::Limits {
        memory: 16 << 20,
        ..palisade::Limits::default()
    });
    on_every_engine(|kind, sandbox| {
        let outcome = sandbox.run(&req);
        let kept = outcome.result.as_ref().ok().and_then(|v| v.as_u64());
        match (kept, outcome.error_kind()) {
            (Some(0 | 1), _) | (None, Some(ErrorKind::MemoryLimit)) => {}
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
