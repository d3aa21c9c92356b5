//! N fresh `1+1` runs on one engine, nothing else: a fixed amount of work for an instruction
//! count, which on a shared VM is the only A/B signal steadier than the ±20–30% timing noise.
//!
//! ```sh
//! cargo build --release -p palisade-bench --example fresh_runs
//! for n in 100 300; do
//!   valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!     target/release/examples/fresh_runs quickjs $n 2>&1 | grep 'I *refs'
//! done
//! ```
//!
//! The difference of the two counts over 200 is one run's instructions, without the process's
//! start-up. Arguments: the engine (default `quickjs`) and the number of runs (default 200).
#![forbid(unsafe_code)]

use palisade::{EngineKind, Request, Sandbox};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let engine: EngineKind = args.next().as_deref().unwrap_or("quickjs").parse()?;
    let runs: usize = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("the number of runs: {e}"))?,
        None => 200,
    };
    let sandbox = Sandbox::builder()
        .engine(engine)
        .prewarm(0)
        .build()
        .map_err(|e| e.to_string())?;
    let request = Request::script("1+1");
    for i in 0..runs {
        let outcome = sandbox.run(&request);
        if outcome.result != Ok(serde_json::json!(2)) {
            return Err(format!("run {i}: {}", outcome.to_json()));
        }
    }
    Ok(())
}
