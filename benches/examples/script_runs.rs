//! N fresh runs of a 4 KB script on one engine: each run a different source (a comment makes it
//! unique), or the same source every time. What the compile-once cache
//! (`palisade_core::code_cache`) saves, and what it costs a source that never comes back.
//!
//! ```sh
//! cargo build --release -p palisade-bench --example script_runs
//! target/release/examples/script_runs wasm 3000 unique
//! target/release/examples/script_runs wasm 3000 same
//! ```
//!
//! Arguments: the engine (default `quickjs`), the number of runs (default 200), and `unique`
//! (default) or `same`. Prints the wall time per run, everything on the calling thread.
#![forbid(unsafe_code)]

use palisade::{EngineKind, Request};
use palisade_bench::light;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let engine: EngineKind = args.next().as_deref().unwrap_or("quickjs").parse()?;
    let runs = light::runs(args.next())?;
    let same = match args.next().as_deref() {
        None | Some("unique") => false,
        Some("same") => true,
        Some(other) => return Err(format!("expected `unique` or `same`, not `{other}`")),
    };
    let sandbox = light::sandbox(engine)?;
    // Forty small functions, about 4 KB: the size of a typical user-submitted handler.
    let body: String = (0..40)
        .map(|i| {
            format!(
                "function f{i}(a, b) {{ const x = a * {i} + b; \
                 if (x > 10) {{ return [x, 'v{i}', {{ k: x }}]; }} return null; }}\n"
            )
        })
        .collect();
    let started = std::time::Instant::now();
    for i in 0..runs {
        let source = if same {
            format!("{body}f9(1, 2)")
        } else {
            format!("// {i}\n{body}f9(1, 2)")
        };
        let outcome = sandbox.run(&Request::script(source));
        if outcome.result != Ok(serde_json::json!([11, "v9", { "k": 11 }])) {
            return Err(format!("run {i}: {}", outcome.to_json()));
        }
    }
    let per_run = started.elapsed().as_secs_f64() * 1e6 / runs.max(1) as f64;
    println!(
        "{engine} {}: {per_run:.1} µs per run",
        if same { "same" } else { "unique" }
    );
    Ok(())
}
