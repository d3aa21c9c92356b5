//! Compile once, run many (`palisade_core::code_cache`): a run served from cached bytecode must
//! end exactly as one that compiled its source, on every engine. Each case runs three times on
//! one sandbox (the first compiles, the others may read bytecode) and once on a sandbox of its
//! own, and all four outcomes must agree, metrics aside.

mod common;

use common::on_every_engine;
use palisade::{EngineKind, OutcomeRecord, Request, Sandbox};
use serde_json::json;

/// The outcome without its metrics (wall time and memory differ from run to run).
fn record(sandbox: &Sandbox, req: &Request) -> OutcomeRecord {
    let mut rec = sandbox.run(req).to_record();
    rec.metrics = Default::default();
    rec
}

fn same_every_time(kind: EngineKind, sandbox: &Sandbox, req: &Request) -> Result<(), String> {
    let first = record(sandbox, req);
    for i in 2..=3 {
        let again = record(sandbox, req);
        if again != first {
            return Err(format!("run {i} differs from run 1:\n{again:?}\n{first:?}"));
        }
    }
    let alone = Sandbox::builder()
        .engine(kind)
        .build()
        .map_err(|e| e.to_string())?;
    let fresh = record(&alone, req);
    if fresh != first {
        return Err(format!("a fresh sandbox differs:\n{fresh:?}\n{first:?}"));
    }
    Ok(())
}

#[test]
fn cached_code_ends_as_compiled_code_does() {
    let cases = [
        // Each run mutates a built-in and counts on seeing it pristine.
        Request::script(
            "const seen = Array.prototype.tainted; Array.prototype.tainted = 1; [seen, input * 2]",
        )
        .with_input(json!(21)),
        // Positions of a thrown error, its stack, and console output.
        Request::script("console.log('a', 1);\nfunction f() { null.x }\nf()"),
        // Function source text survives the bytecode.
        Request::script("(function add(a, b) { return a + b; }).toString()"),
        // A syntax error is reported each time, never cached.
        Request::script("let x = ;"),
        Request::module("import { k } from './k.js'; export default (x) => x * k;")
            .with_input(json!(2))
            .with_module("./k.js", "export const k = 21;"),
        Request::module("export default async () => { await null; return 7; };"),
    ];
    on_every_engine(|kind, sandbox| {
        for req in &cases {
            same_every_time(kind, sandbox, req).map_err(|e| format!("{}: {e}", req.source))?;
        }
        Ok(())
    });
}

/// A cached module's imports are resolved again for each run, from that run's modules: a
/// broken import fails as it would have without the cache.
#[test]
fn a_cached_module_resolves_each_runs_own_imports() {
    let main = "import { k } from './k.js'; export default () => k;";
    let good = Request::module(main).with_module("./k.js", "export const k = 1;");
    let other = Request::module(main).with_module("./k.js", "export const k = 2;");
    let broken = Request::module(main).with_module("./k.js", "export const k = ;");
    let missing = Request::module(main);
    on_every_engine(|kind, sandbox| {
        let value = |req: &Request| record(sandbox, req).value;
        if value(&good) != json!(1) || value(&other) != json!(2) {
            return Err("a cached module kept an earlier run's import".into());
        }
        for req in [&broken, &missing] {
            let cached = record(sandbox, req);
            let alone = Sandbox::builder()
                .engine(kind)
                .build()
                .map_err(|e| e.to_string())?;
            let fresh = record(&alone, req);
            if cached != fresh {
                return Err(format!("after caching:\n{cached:?}\nfresh:\n{fresh:?}"));
            }
        }
        Ok(())
    });
}
