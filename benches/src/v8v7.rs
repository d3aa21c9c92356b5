//! The V8 Benchmark Suite, version 7, as one classic sloppy script.

use std::path::{Path, PathBuf};
use std::time::Duration;

use palisade::{Limits, Request};

/// The benchmark files, in the order they are loaded (after `base.js`).
pub const FILES: [&str; 8] = [
    "richards.js",
    "deltablue.js",
    "crypto.js",
    "raytrace.js",
    "earley-boyer.js",
    "regexp.js",
    "splay.js",
    "navier-stokes.js",
];

/// Reference total on this machine, not measured here: node 24
/// (`/work/shared/corpora/README.md`).
pub const NODE24_TOTAL: f64 = 24_841.0;

/// Reference total on this machine, not measured here: QuickJS-NG compiled to wasm under node
/// (quickjs-emscripten), "about 300".
pub const QUICKJS_EMSCRIPTEN_TOTAL: f64 = 300.0;

/// The `print` the suite needs, over `console.log`.
const PRELUDE: &str =
    "var print = function(){ console.log(Array.prototype.join.call(arguments, ' ')); };\n";

/// Runs every registered suite and prints `Name: score`, `Name: ERROR e` and `Score: total`.
const DRIVER: &str = "
BenchmarkSuite.RunSuites({
  NotifyResult: function(name, score){ print(name + ': ' + score); },
  NotifyError: function(name, e){ print(name + ': ERROR ' + e); },
  NotifyScore: function(score){ print('Score: ' + score); }
});
";

/// Where the shared directory is: `$PALISADE_SHARED`, else the `shared/` next to the
/// repository.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("PALISADE_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// The suite's directory under the shared directory.
pub fn corpus_dir() -> PathBuf {
    shared_dir().join("corpora/bench/v8-v7")
}

/// `print`, `base.js`, every benchmark file and the driver, as one script.
pub fn build_script(dir: &Path) -> std::io::Result<String> {
    let mut script = sources(dir)?;
    script.push_str(DRIVER);
    Ok(script)
}

/// The suite with a fixed amount of work instead of timed scoring: every benchmark's setup,
/// `rounds` runs and teardown, printing `Name: done` per suite. The same instructions on every
/// run, so it can be counted under callgrind (benches/README.md, "Counting the guest's instructions").
pub fn build_fixed_script(dir: &Path, rounds: u32) -> std::io::Result<String> {
    let mut script = sources(dir)?;
    script.push_str(&FIXED_DRIVER.replace("ROUNDS", &rounds.to_string()));
    Ok(script)
}

fn sources(dir: &Path) -> std::io::Result<String> {
    let mut script = String::from(PRELUDE);
    for file in std::iter::once("base.js").chain(FILES) {
        let text = std::fs::read_to_string(dir.join(file))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file)))?;
        script.push_str(&text);
        script.push('\n');
    }
    Ok(script)
}

/// Runs each benchmark ROUNDS times, untimed.
const FIXED_DRIVER: &str = "
for (var s = 0; s < BenchmarkSuite.suites.length; s++) {
  var suite = BenchmarkSuite.suites[s];
  for (var b = 0; b < suite.benchmarks.length; b++) {
    var bench = suite.benchmarks[b];
    bench.Setup();
    for (var i = 0; i < ROUNDS; i++) bench.run();
    bench.TearDown();
  }
  print(suite.name + ': done');
}
";

/// The request that runs `script` (from [`build_script`] or [`build_fixed_script`]): room for
/// the whole suite, 300 s and 1 GiB, under the file name its stack traces show.
pub fn request(script: String) -> Request {
    let limits = Limits {
        timeout: Duration::from_secs(300),
        memory: 1 << 30,
        ..Limits::default()
    };
    Request::script(script)
        .with_limits(limits)
        .with_filename("v8-v7.js")
}

/// What the driver printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// Each suite's score, in the order reported.
    pub suites: Vec<(String, f64)>,
    /// The geometric-mean total.
    pub total: Option<f64>,
    /// Suites that reported an error, with the error.
    pub errors: Vec<(String, String)>,
}

/// Parses the driver's output; lines it does not recognise are ignored.
pub fn parse(stdout: &str) -> Scores {
    let mut scores = Scores::default();
    for line in stdout.lines() {
        let Some((name, rest)) = line.split_once(": ") else {
            continue;
        };
        if let Some(err) = rest.strip_prefix("ERROR ") {
            scores.errors.push((name.to_owned(), err.to_owned()));
        } else if let Ok(score) = rest.trim().parse::<f64>() {
            if name == "Score" {
                scores.total = Some(score);
            } else {
                scores.suites.push((name.to_owned(), score));
            }
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_driver_output() {
        let s = parse("Richards: 1024\nnoise\nCrypto: ERROR boom: x\nSplay: 98.5\nScore: 321\n");
        assert_eq!(
            s.suites,
            vec![("Richards".into(), 1024.0), ("Splay".into(), 98.5)]
        );
        assert_eq!(s.errors, vec![("Crypto".into(), "boom: x".into())]);
        assert_eq!(s.total, Some(321.0));
    }

    #[test]
    fn the_fixed_driver_runs_every_benchmark_the_given_rounds() {
        let dir = std::env::temp_dir().join(format!("palisade-v8v7-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in std::iter::once("base.js").chain(FILES) {
            std::fs::write(dir.join(file), format!("// {file}\n")).unwrap();
        }
        let fixed = build_fixed_script(&dir, 7).unwrap();
        let timed = build_script(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(fixed.contains("i < 7; i++) bench.run()"));
        assert!(!fixed.contains("RunSuites") && timed.contains("RunSuites"));
        assert!(fixed.contains("// navier-stokes.js") && fixed.starts_with(PRELUDE));
    }
}
