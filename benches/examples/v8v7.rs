//! The V8 Benchmark Suite v7 on one engine, once: every suite's score and the total, for A/B
//! work on an engine's interpreter speed (the bench table's row 5 runs the same script).
//!
//! ```sh
//! cargo build --release -p palisade-bench --example v8v7
//! target/release/examples/v8v7 wasm
//! ```
//!
//! Arguments: the engine (default `quickjs`). `PALISADE_SHARED` names the shared directory.
#![forbid(unsafe_code)]

use std::time::Instant;

use palisade::{EngineKind, Sandbox};
use palisade_bench::v8v7;

fn main() -> Result<(), String> {
    let engine: EngineKind = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("quickjs")
        .parse()?;
    let script = v8v7::build_script(&v8v7::corpus_dir()).map_err(|e| e.to_string())?;
    let sandbox = Sandbox::builder()
        .engine(engine)
        .prewarm(0)
        .build()
        .map_err(|e| e.to_string())?;
    let request = v8v7::request(script);
    let started = Instant::now();
    let outcome = sandbox.run(&request);
    let scores = v8v7::parse(&outcome.stdout);
    for (name, score) in &scores.suites {
        println!("{name}: {score}");
    }
    for (name, e) in &scores.errors {
        println!("{name}: ERROR {e}");
    }
    match scores.total {
        Some(total) => println!(
            "total: {total:.1} ({:.1} s)",
            started.elapsed().as_secs_f64()
        ),
        None => return Err(format!("no total: {}", outcome.to_json())),
    }
    Ok(())
}
