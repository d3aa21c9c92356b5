//! Compile once, run many (`palisade_core::code_cache`): a run served from cached bytecode must
//! end exactly as one that compiled its source, on every engine. Each case runs three times on
//! one sandbox (the first compiles, the others may read bytecode) and once on a sandbox of its
//! own, and all four outcomes must agree, metrics aside.

mod common;

use common::on_every_engine;
use palisade::{EngineKind, Limits, OutcomeRecord, Request, Sandbox};
use serde_json::json;

/// The outcome without its metrics (wall time and memory differ from run to run).
fn record(sandbox: &Sandbox, req: &Request) -> OutcomeRecord {
    let mut rec = sandbox.run(req).to_record();
    rec.metrics = Default::default();
    rec
}

/// The outcome of `req` on a sandbox of its own (a cache nothing else has filled).
fn fresh_record(kind: EngineKind, req: &Request) -> Result<OutcomeRecord, String> {
    let alone = Sandbox::builder()
        .engine(kind)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(record(&alone, req))
}

fn same_every_time(kind: EngineKind, sandbox: &Sandbox, req: &Request) -> Result<(), String> {
    let first = record(sandbox, req);
    for i in 2..=3 {
        let again = record(sandbox, req);
        if again != first {
            return Err(format!("run {i} differs from run 1:\n{again:?}\n{first:?}"));
        }
    }
    let fresh = fresh_record(kind, req)?;
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
            let fresh = fresh_record(kind, req)?;
            if cached != fresh {
                return Err(format!("after caching:\n{cached:?}\nfresh:\n{fresh:?}"));
            }
        }
        Ok(())
    });
}

/// Bytecode kept by runs under other limits is not read: compiling costs stack (the parser
/// recurses) and memory that reading does not, so a run under tight limits must end as it
/// would have compiling. Found in review (2026-11-30): from bytecode the first case succeeded
/// where compiling overflows a 64 KiB stack, and the second where compiling needs ~8 MB.
#[test]
fn bytecode_kept_under_other_limits_is_not_read() {
    let nested = format!("{}1{}", "(".repeat(300), ")".repeat(300));
    let lines: String = (0..20_000)
        .map(|i| format!("var v{i} = {{ a: {i}, b: 'x{i}' }};\n"))
        .collect();
    let tight = |src: &str, limits: Limits| Request::script(src).with_limits(limits);
    let cases = [
        tight(
            &nested,
            Limits {
                stack: Some(64 << 10),
                ..Limits::default()
            },
        ),
        tight(
            &lines,
            Limits {
                memory: 6 << 20,
                ..Limits::default()
            },
        ),
        tight(
            &lines,
            Limits {
                memory: 8 << 20,
                ..Limits::default()
            },
        ),
    ];
    on_every_engine(|kind, sandbox| {
        for req in &cases {
            // The same source under the default limits, often enough to be kept.
            let roomy = Request::script(req.source.clone());
            for _ in 0..3 {
                record(sandbox, &roomy);
            }
            same_every_time(kind, sandbox, req)
                .map_err(|e| format!("{:?}: {e}", (req.limits.stack, req.limits.memory)))?;
        }
        Ok(())
    });
}

/// QuickJS resolves a module's imports while it is still reading its bytecode, so an import
/// cycle back into the run's own module (valid: test262's `instn-star-binding.js` imports
/// itself) failed from bytecode where compiling succeeded (found in review, 2026-11-30): such a
/// module is never cached. (The v8 engine refuses any import of the run's own module, a known
/// difference: test262's list of its known failures has that case.)
#[test]
fn an_import_cycle_back_into_the_module_works_every_time() {
    let req = Request::module(
        "import { a } from './k.js'; import { b } from './j.js'; export const m = 5; \
         export default () => [a, b, m];",
    )
    .with_filename("main.js")
    .with_module("main.js", "export const m = 0;")
    .with_module("k.js", "import { m } from './main.js'; export const a = 1;")
    .with_module("j.js", "export const b = 2;");
    on_every_engine(|kind, sandbox| {
        let first = record(sandbox, &req);
        if kind != EngineKind::V8 && first.value != json!([1, 2, 5]) {
            return Err(format!("compiled: {first:?}"));
        }
        same_every_time(kind, sandbox, &req)
    });
}
