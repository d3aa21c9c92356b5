//! Light runs for the per-run examples (`examples/fresh_runs.rs`, `examples/after_heavy.rs`):
//! N fresh `1+1` runs on one engine, every cost on the calling thread.

use palisade::{EngineKind, Request, Sandbox};

/// Light runs when the command line names no number.
pub const DEFAULT_RUNS: usize = 200;

/// The number of runs from a command-line argument, or [`DEFAULT_RUNS`].
pub fn runs(arg: Option<String>) -> Result<usize, String> {
    arg.map_or(Ok(DEFAULT_RUNS), |n| {
        n.parse().map_err(|e| format!("the number of runs: {e}"))
    })
}

/// A sandbox on `engine` that keeps nothing ready in the background (`prewarm(0)`), so a run's
/// whole cost lands on the calling thread.
pub fn sandbox(engine: EngineKind) -> Result<Sandbox, String> {
    Sandbox::builder()
        .engine(engine)
        .prewarm(0)
        .build()
        .map_err(|e| e.to_string())
}

/// Runs `1+1` `runs` times, failing on the first run whose outcome is not the value 2.
pub fn one_plus_one(sandbox: &Sandbox, runs: usize) -> Result<(), String> {
    let request = Request::script("1+1");
    for i in 0..runs {
        let outcome = sandbox.run(&request);
        if outcome.result != Ok(serde_json::json!(2)) {
            return Err(format!("run {i}: {}", outcome.to_json()));
        }
    }
    Ok(())
}
