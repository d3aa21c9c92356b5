//! Hostile module graphs, on every engine: the host survives and the sandbox keeps working.

mod common;

use common::on_every_engine;
use palisade::{ErrorKind, Request};
use serde_json::json;

/// A chain of 10,000 modules, each importing the next. QuickJS resolves a module graph
/// recursively without checking its stack limit, so before 2026-11-30 this ran the native stack
/// out and aborted the host process on the `quickjs` engine (found by the cross-engine
/// differential run of module graphs). Each engine now either evaluates the chain (v8's loader
/// walks the graph without recursing) or ends the run as `stack_overflow`.
#[test]
fn regression_a_chain_of_10000_imports_ends_as_a_limit_not_a_crash() {
    const N: usize = 10_000;
    let mut req = Request::module("import { v } from './m0.js';\nexport default v;")
        .with_filename("main.mjs");
    for i in 0..N {
        let src = if i + 1 < N {
            format!(
                "import {{ v as w }} from './m{}.js';\nexport const v = w + 1;",
                i + 1
            )
        } else {
            "export const v = 0;".to_owned()
        };
        req = req.with_module(format!("./m{i}.js"), src);
    }
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
        // The sandbox still runs the next request.
        let next = sandbox.run(&Request::script("1 + 1"));
        if next.result != Ok(json!(2)) {
            return Err(format!("{kind}: the next run gave {:?}", next.to_record()));
        }
        Ok(())
    });
}
