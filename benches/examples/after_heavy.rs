//! N fresh `1+1` runs on one engine after one heavy run: the cost of a light run in a pool slot
//! (or sealed runtime) that an earlier run wrote much of. Like `fresh_runs`, a fixed amount of
//! work, for `perf stat` or an instruction count.
//!
//! ```sh
//! cargo build --release -p palisade-bench --example after_heavy
//! for heavy in none deep heap; do target/release/examples/after_heavy wasm $heavy 3000; done
//! ```
//!
//! It prints the light runs' wall time per run, timed in the process, so the heavy run's own
//! (widely varying) time is left out. Cachegrind cannot weigh the native engine's effect: under
//! valgrind its kernel write tracking is unavailable and every restore copies everything.
//! Arguments: the engine (default `quickjs`), the heavy run (`none`, `deep`: recursion until
//! the stack limit, `heap`: ~34 MB of objects, so the collector runs) and the number of light
//! runs (default 200). The native engine protects its pages again at most 4,096 restores after a
//! heavy run, so its effect shows in the first few thousand light runs only.
#![forbid(unsafe_code)]

use palisade::{EngineKind, Request};
use palisade_bench::light;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let engine: EngineKind = args.next().as_deref().unwrap_or("quickjs").parse()?;
    let heavy = match args.next().as_deref().unwrap_or("none") {
        "none" => None,
        "deep" => Some(
            "function f(n) { return n ? 1 + f(n - 1) : 0 } try { f(1e6) } catch (e) { 'deep' }",
        ),
        "heap" => {
            Some("let a = []; for (let i = 0; i < 300000; i++) a.push({ i, s: 'x' + i }); 'heap'")
        }
        other => return Err(format!("the heavy run: none, deep or heap, not {other}")),
    };
    let runs = light::runs(args.next())?;
    let sandbox = light::sandbox(engine)?;
    // The first run takes the slot (and any one-time start-up) with or without a heavy run.
    light::one_plus_one(&sandbox, 1)?;
    if let Some(src) = heavy {
        let o = sandbox.run(&Request::script(src));
        if o.result.is_err() {
            return Err(o.to_json().to_string());
        }
    }
    let start = std::time::Instant::now();
    light::one_plus_one(&sandbox, runs)?;
    if runs > 0 {
        let per_run = start.elapsed().as_secs_f64() * 1e6 / runs as f64;
        println!("{per_run:.2} µs per light run (wall, {runs} runs)");
    }
    Ok(())
}
