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

use palisade::EngineKind;
use palisade_bench::light;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let engine: EngineKind = args.next().as_deref().unwrap_or("quickjs").parse()?;
    let runs = light::runs(args.next())?;
    light::one_plus_one(&light::sandbox(engine)?, runs)
}
