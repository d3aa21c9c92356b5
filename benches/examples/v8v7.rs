//! The V8 Benchmark Suite v7 on one engine, once: every suite's score and the total, for A/B
//! work on an engine's interpreter speed (the bench table's row 5 runs the same script).
//!
//! ```sh
//! cargo build --release -p palisade-bench --example v8v7
//! target/release/examples/v8v7 wasm
//! target/release/examples/v8v7 wasm --rounds 2   # fixed work, for instruction counts
//! ```
//!
//! Arguments: the engine (default `quickjs`), then optionally `--rounds N`: instead of timed
//! scoring, run every benchmark N times and print only which suites finished, the same work on
//! every run (see benches/README.md, "Counting the guest's instructions"). `PALISADE_SHARED`
//! names the shared directory.
#![forbid(unsafe_code)]

use std::time::Instant;

use palisade::{EngineKind, Sandbox};
use palisade_bench::v8v7;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let engine: EngineKind = args.next().as_deref().unwrap_or("quickjs").parse()?;
    let rounds = match (args.next().as_deref(), args.next()) {
        (None, _) => None,
        (Some("--rounds"), Some(n)) => {
            Some(n.parse::<u32>().map_err(|e| format!("--rounds: {e}"))?)
        }
        _ => return Err("usage: v8v7 [ENGINE] [--rounds N]".into()),
    };
    let dir = v8v7::corpus_dir();
    let script = match rounds {
        Some(n) => v8v7::build_fixed_script(&dir, n),
        None => v8v7::build_script(&dir),
    }
    .map_err(|e| e.to_string())?;
    let sandbox = Sandbox::builder()
        .engine(engine)
        .prewarm(0)
        .build()
        .map_err(|e| e.to_string())?;
    let request = v8v7::request(script);
    let started = Instant::now();
    let outcome = sandbox.run(&request);
    if rounds.is_some() {
        print!("{}", outcome.stdout);
        if outcome.result.is_err() {
            return Err(outcome.to_json());
        }
        println!("({:.1} s)", started.elapsed().as_secs_f64());
        return Ok(());
    }
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
