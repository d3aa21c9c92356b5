//! `palisade-test262`: runs test262 tests through Palisade's public API, one fresh sandbox run
//! per test and mode, on every available engine, and compares the failures with the checked-in
//! known-failures list of each engine.
//!
//! ```text
//! palisade-test262 [--test262-dir DIR] [--engine NAME]... [--list FILE] [--known-failures-dir DIR]
//!                  [--update-known-failures] [--verbose] [--filter SUBSTR] [--threads N]
//!                  [--timeout DUR] [--memory SIZE] [PATH...]
//! ```
//!
//! Exit status: 0 when the run matches the known failures (or only counts were asked for), 1 on a
//! regression or a newly passing run, 2 on a usage error, 3 when an engine is unavailable.
#![forbid(unsafe_code)]

mod frontmatter;
mod harness;
mod known;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use palisade::{EngineKind, Limits, Sandbox};

use crate::harness::{RunMode, TestCase};

const USAGE: &str = "\
usage: palisade-test262 [--test262-dir DIR] [--engine NAME]... [--list FILE]
                        [--known-failures-dir DIR] [--update-known-failures] [--verbose]
                        [--filter SUBSTR] [--threads N] [--timeout DUR] [--memory SIZE] [PATH...]

Runs test262 tests through Palisade. PATHs (files or directories) are relative to the test262
directory; without PATHs or --list, the directory's sample.txt is run and the failures are
compared with tests/test262/known-failures-<engine>.txt.

  --test262-dir DIR         default: $PALISADE_SHARED/corpora/test262, else ../shared/corpora/test262
                            beside the workspace
  --engine NAME             quickjs, wasm or v8; repeatable (default: every available engine)
  --list FILE               run the test paths listed in FILE, one a line
  --known-failures-dir DIR  default: <workspace>/tests/test262
  --update-known-failures   rewrite the known-failures files from this run (full sample only)
  --verbose                 print every failure with its reason, and per-directory counts
  --filter SUBSTR           only tests whose path contains SUBSTR
  --threads N               worker threads (default: one per available core)
  --timeout DUR             per-run wall-clock limit (default 10s)
  --memory SIZE             per-run guest heap limit (default 256MiB)";

/// A usage error: a one-line message, exit status 2.
struct Usage(String);

#[derive(Debug)]
struct Config {
    test262_dir: PathBuf,
    engines: Vec<EngineKind>,
    list: Option<PathBuf>,
    known_dir: PathBuf,
    update: bool,
    verbose: bool,
    filter: Option<String>,
    threads: Option<usize>,
    limits: Limits,
    paths: Vec<String>,
}

impl Config {
    /// Whether this is the default full-sample run, the only one compared with the known lists.
    fn is_full_sample(&self) -> bool {
        self.paths.is_empty() && self.list.is_none() && self.filter.is_none()
    }
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn default_test262_dir() -> PathBuf {
    match std::env::var_os("PALISADE_SHARED") {
        Some(shared) if !shared.is_empty() => PathBuf::from(shared).join("corpora/test262"),
        _ => workspace_root().join("../shared/corpora/test262"),
    }
}

fn parse_args(args: Vec<String>) -> Result<Option<Config>, Usage> {
    let mut cfg = Config {
        test262_dir: PathBuf::new(),
        engines: Vec::new(),
        list: None,
        known_dir: workspace_root().join("tests/test262"),
        update: false,
        verbose: false,
        filter: None,
        threads: None,
        limits: Limits {
            memory: 256 << 20,
            timeout: Duration::from_secs(10),
            ..Limits::default()
        },
        paths: Vec::new(),
    };
    let mut test262_dir = None;
    let mut it = args.into_iter();
    let mut only_paths = false;
    while let Some(arg) = it.next() {
        if only_paths || !arg.starts_with("--") || arg == "-" {
            if arg == "-h" {
                return Ok(None);
            }
            if arg.starts_with('-') && arg != "-" && !only_paths {
                return Err(Usage(format!("unknown option `{arg}`")));
            }
            cfg.paths.push(arg);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, Usage> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => Err(Usage(format!("{name} needs a value"))),
            }
        };
        match flag.as_str() {
            "--" => only_paths = true,
            "--help" => return Ok(None),
            "--test262-dir" => test262_dir = Some(PathBuf::from(value(&flag)?)),
            "--engine" => {
                let name = value(&flag)?;
                let kind: EngineKind = name.parse().map_err(Usage)?;
                if !cfg.engines.contains(&kind) {
                    cfg.engines.push(kind);
                }
            }
            "--list" => cfg.list = Some(PathBuf::from(value(&flag)?)),
            "--known-failures-dir" => cfg.known_dir = PathBuf::from(value(&flag)?),
            "--filter" => cfg.filter = Some(value(&flag)?),
            "--threads" => {
                let v = value(&flag)?;
                match v.parse::<usize>() {
                    Ok(n) if n > 0 => cfg.threads = Some(n),
                    _ => return Err(Usage(format!("--threads: `{v}` is not a positive number"))),
                }
            }
            "--timeout" => {
                cfg.limits.timeout = palisade::units::parse_duration(&value(&flag)?)
                    .map_err(|e| Usage(format!("--timeout: {e}")))?;
            }
            "--memory" => {
                cfg.limits.memory = palisade::units::parse_size(&value(&flag)?)
                    .map_err(|e| Usage(format!("--memory: {e}")))?;
            }
            "--update-known-failures" | "--verbose" if inline.is_some() => {
                return Err(Usage(format!("{flag} takes no value")));
            }
            "--update-known-failures" => cfg.update = true,
            "--verbose" => cfg.verbose = true,
            _ => return Err(Usage(format!("unknown option `{flag}`"))),
        }
    }
    cfg.limits
        .validate()
        .map_err(|e| Usage(format!("invalid limits: {e}")))?;
    cfg.test262_dir = test262_dir.unwrap_or_else(default_test262_dir);
    if !cfg.test262_dir.is_dir() {
        return Err(Usage(format!(
            "test262 directory {} does not exist",
            cfg.test262_dir.display()
        )));
    }
    if !cfg.test262_dir.join("harness/assert.js").is_file() {
        return Err(Usage(format!(
            "{} has no harness/assert.js: not a test262 directory",
            cfg.test262_dir.display()
        )));
    }
    if cfg.update && !cfg.is_full_sample() {
        return Err(Usage(
            "--update-known-failures needs the full default sample (no PATHs, --list or --filter)"
                .into(),
        ));
    }
    Ok(Some(cfg))
}

/// A test path as given, made relative to the test262 directory with `/` separators.
fn normalize_path(dir: &Path, p: &str) -> String {
    let mut s = p.trim().replace('\\', "/");
    let abs = Path::new(&s);
    if abs.is_absolute() {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let abs = abs.canonicalize().unwrap_or_else(|_| abs.to_path_buf());
        if let Ok(rel) = abs.strip_prefix(&dir) {
            s = rel.to_string_lossy().replace('\\', "/");
        }
    }
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_owned();
    }
    s
}

fn is_fixture(name: &str) -> bool {
    name.contains("_FIXTURE")
}

/// Every test file under a directory (relative path `rel`), fixtures excluded.
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{}/{name}", rel.trim_end_matches('/'))
        };
        let path = entry.path();
        if path.is_dir() {
            walk(&path, &child, out)?;
        } else if name.ends_with(".js") && !is_fixture(&name) {
            out.push(child);
        }
    }
    Ok(())
}

/// The test paths to run, sorted and without duplicates.
fn test_paths(cfg: &Config) -> Result<Vec<String>, Usage> {
    let dir = &cfg.test262_dir;
    let mut given: Vec<String> = Vec::new();
    let read_list = |file: &Path| -> Result<Vec<String>, Usage> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Usage(format!("cannot read test list {}: {e}", file.display())))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    };
    if let Some(list) = &cfg.list {
        given.extend(read_list(list)?);
    }
    given.extend(cfg.paths.iter().cloned());
    if cfg.list.is_none() && cfg.paths.is_empty() {
        let sample = dir.join("sample.txt");
        if !sample.is_file() {
            return Err(Usage(format!(
                "no tests given and {} does not exist",
                sample.display()
            )));
        }
        given.extend(read_list(&sample)?);
    }
    let mut out = Vec::new();
    for p in given {
        let rel = normalize_path(dir, &p);
        let full = dir.join(&rel);
        if full.is_dir() {
            walk(&full, &rel, &mut out).map_err(Usage)?;
        } else if full.is_file() {
            out.push(rel);
        } else {
            return Err(Usage(format!("test {rel} not found in {}", dir.display())));
        }
    }
    if let Some(f) = &cfg.filter {
        out.retain(|p| p.contains(f.as_str()));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every `.js` file in `harness/`, by file name.
fn load_harness(dir: &Path) -> Result<HashMap<String, String>, Usage> {
    let hdir = dir.join("harness");
    let mut out = HashMap::new();
    let entries = std::fs::read_dir(&hdir)
        .map_err(|e| Usage(format!("cannot read {}: {e}", hdir.display())))?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".js") && entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path())
                .map_err(|e| Usage(format!("cannot read harness file {name}: {e}")))?;
            out.insert(name, text);
        }
    }
    Ok(out)
}

/// Loads every test: source, metadata (from `sample.meta.jsonl` where it has the test, else
/// the test's own frontmatter) and the fixtures beside it.
fn load_tests(dir: &Path, paths: Vec<String>) -> Result<Vec<TestCase>, Usage> {
    let meta_file = dir.join("sample.meta.jsonl");
    let sample_meta = if meta_file.is_file() {
        let text = std::fs::read_to_string(&meta_file)
            .map_err(|e| Usage(format!("cannot read {}: {e}", meta_file.display())))?;
        frontmatter::load_jsonl(&text)
            .map_err(|e| Usage(format!("{}: {e}", meta_file.display())))?
    } else {
        HashMap::new()
    };
    let mut fixtures: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut tests = Vec::with_capacity(paths.len());
    for path in paths {
        let full = dir.join(&path);
        let source = std::fs::read_to_string(&full)
            .map_err(|e| Usage(format!("cannot read test {path}: {e}")))?;
        let meta = match sample_meta.get(&path) {
            Some(m) => m.clone(),
            None => frontmatter::parse(&source)
                .map_err(|e| Usage(format!("{path}: bad frontmatter: {e}")))?,
        };
        let parent = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        if !fixtures.contains_key(&parent) {
            let found = read_fixtures(&dir.join(&parent))?;
            fixtures.insert(parent.clone(), found);
        }
        tests.push(TestCase {
            fixtures: fixtures.get(&parent).cloned().unwrap_or_default(),
            path,
            source,
            meta,
        });
    }
    Ok(tests)
}

/// The `*_FIXTURE.*` files of a directory (`.js`, and `.json` for JSON module tests).
fn read_fixtures(dir: &Path) -> Result<Vec<(String, String)>, Usage> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_fixture(&name) && entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path())
                .map_err(|e| Usage(format!("cannot read fixture {name}: {e}")))?;
            out.push((name, text));
        }
    }
    out.sort();
    Ok(out)
}

/// The verdict on one run.
#[derive(Debug)]
struct RunResult {
    test: usize,
    mode: RunMode,
    verdict: Result<(), String>,
}

/// Runs every job on `threads` workers, each with its own sandbox; results sorted by path, mode.
fn run_all(
    kind: EngineKind,
    tests: &[TestCase],
    harness: &HashMap<String, String>,
    limits: &Limits,
    threads: usize,
) -> Vec<RunResult> {
    let jobs: Vec<(usize, RunMode)> = tests
        .iter()
        .enumerate()
        .flat_map(|(i, t)| RunMode::for_test(&t.meta).into_iter().map(move |m| (i, m)))
        .collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let progress = std::io::stderr().is_terminal();
    let threads = threads.clamp(1, jobs.len().max(1));
    let mut results: Vec<RunResult> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let sandbox = Sandbox::builder().engine(kind).build();
                    let mut out = Vec::new();
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(test, mode)) = jobs.get(j) else {
                            break;
                        };
                        let t = &tests[test];
                        let verdict = match &sandbox {
                            Err(e) => Err(format!("cannot build sandbox: {e}")),
                            Ok(sandbox) => harness::request(t, mode, harness, limits)
                                .map(|req| sandbox.run(&req))
                                .and_then(|outcome| harness::judge(&t.meta, mode, &outcome)),
                        };
                        out.push(RunResult {
                            test,
                            mode,
                            verdict,
                        });
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if progress && (n.is_multiple_of(50) || n == jobs.len()) {
                            eprint!("\r{kind}: {n}/{} runs", jobs.len());
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    if progress {
        eprint!("\r\x1b[K");
    }
    // A worker that panicked lost its results: report those runs rather than drop them.
    if results.len() < jobs.len() {
        let have: BTreeSet<(usize, RunMode)> = results.iter().map(|r| (r.test, r.mode)).collect();
        for &(test, mode) in &jobs {
            if !have.contains(&(test, mode)) {
                results.push(RunResult {
                    test,
                    mode,
                    verdict: Err("the runner's worker thread panicked".into()),
                });
            }
        }
    }
    results.sort_by(|a, b| {
        tests[a.test]
            .path
            .cmp(&tests[b.test].path)
            .then(a.mode.cmp(&b.mode))
    });
    results
}

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    passed: usize,
    total: usize,
}

impl Count {
    fn add(&mut self, pass: bool) {
        self.total += 1;
        self.passed += usize::from(pass);
    }
}

impl Count {
    fn percent(&self) -> String {
        let pct = if self.total == 0 {
            0.0
        } else {
            self.passed as f64 * 100.0 / self.total as f64
        };
        format!("{pct:.1}%")
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ({})", self.passed, self.total, self.percent())
    }
}

/// `built-ins/Array` for `test/built-ins/Array/from/x.js`.
fn top_dir(path: &str) -> String {
    let rest = path.strip_prefix("test/").unwrap_or(path);
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [a, b, _, ..] => format!("{a}/{b}"),
        [a, _] => (*a).to_owned(),
        _ => rest.to_owned(),
    }
}

/// Runs one engine and reports; returns the exit status for it.
fn run_engine(
    cfg: &Config,
    kind: EngineKind,
    tests: &[TestCase],
    harness: &HashMap<String, String>,
    threads: usize,
) -> i32 {
    if let Err(e) = Sandbox::builder()
        .engine(kind)
        .expect_limits(cfg.limits.clone())
        .build()
    {
        println!("{kind}: {e}");
        return 3;
    }
    let start = Instant::now();
    let results = run_all(kind, tests, harness, &cfg.limits, threads);
    let wall = start.elapsed();

    let mut runs = Count::default();
    let mut non_temporal = Count::default();
    let mut per_test: BTreeMap<usize, bool> = BTreeMap::new();
    let mut per_dir: BTreeMap<String, Count> = BTreeMap::new();
    let mut failing: BTreeSet<String> = BTreeSet::new();
    let mut reasons: HashMap<String, String> = HashMap::new();
    for r in &results {
        let t = &tests[r.test];
        let pass = r.verdict.is_ok();
        runs.add(pass);
        if !t.is_temporal() {
            non_temporal.add(pass);
        }
        *per_test.entry(r.test).or_insert(true) &= pass;
        per_dir.entry(top_dir(&t.path)).or_default().add(pass);
        if let Err(why) = &r.verdict {
            let key = format!("{} {}", t.path, r.mode.as_str());
            reasons.insert(key.clone(), why.clone());
            failing.insert(key);
        }
    }
    let mut test_count = Count::default();
    for pass in per_test.values() {
        test_count.add(*pass);
    }

    let out = std::io::stdout();
    let mut out = out.lock();
    let full = cfg.is_full_sample();
    if cfg.verbose {
        for key in &failing {
            let _ = writeln!(out, "FAIL {key}: {}", reasons[key]);
        }
        let _ = writeln!(out, "{kind}: per directory:");
        for (dir, c) in &per_dir {
            let _ = writeln!(out, "  {dir}: {c}");
        }
    } else if !full {
        for key in &failing {
            let _ = writeln!(out, "FAIL {key}");
        }
    }
    let _ = writeln!(
        out,
        "{kind}: {}/{} runs passed ({}); non-Temporal: {non_temporal}; tests: {test_count}",
        runs.passed,
        runs.total,
        runs.percent()
    );
    let _ = writeln!(
        out,
        "{kind}: {} runs of {} tests in {:.1} s on {threads} threads",
        runs.total,
        tests.len(),
        wall.as_secs_f64()
    );
    if !full {
        return 0;
    }

    let file = known::file_for(&cfg.known_dir, kind.as_str());
    if cfg.update {
        if let Err(e) = std::fs::create_dir_all(&cfg.known_dir)
            .and_then(|()| std::fs::write(&file, known::render(&failing)))
        {
            let _ = writeln!(out, "{kind}: cannot write {}: {e}", file.display());
            return 1;
        }
        let _ = writeln!(
            out,
            "{kind}: wrote {} known failures to {}",
            failing.len(),
            file.display()
        );
        return 0;
    }
    let known = match known::read(&file) {
        Ok(Some(k)) => k,
        Ok(None) => {
            let _ = writeln!(
                out,
                "{kind}: no known-failures file {}: every failure counts as a regression",
                file.display()
            );
            BTreeSet::new()
        }
        Err(e) => {
            let _ = writeln!(out, "{kind}: {e}");
            return 1;
        }
    };
    let diff = known::Diff::new(&known, &failing);
    for key in &diff.regressions {
        let _ = writeln!(out, "REGRESSION {key}: {}", reasons[key]);
    }
    for key in &diff.newly_passing {
        let _ = writeln!(out, "NEWLY PASSING {key}");
    }
    if diff.is_clean() {
        let _ = writeln!(
            out,
            "{kind}: matches {} ({} known failures)",
            file.display(),
            known.len()
        );
        0
    } else {
        let _ = writeln!(
            out,
            "{kind}: {} regressions, {} newly passing against {}; update with --update-known-failures",
            diff.regressions.len(),
            diff.newly_passing.len(),
            file.display()
        );
        1
    }
}

fn real_main() -> Result<i32, Usage> {
    let Some(cfg) = parse_args(std::env::args().skip(1).collect())? else {
        println!("{USAGE}");
        return Ok(0);
    };
    let engines: Vec<EngineKind> = if cfg.engines.is_empty() {
        let available: Vec<EngineKind> = palisade::engines()
            .into_iter()
            .filter(|info| info.available)
            .filter_map(|info| info.name.parse().ok())
            .collect();
        if available.is_empty() {
            println!("palisade-test262: no engine is available");
            return Ok(3);
        }
        available
    } else {
        cfg.engines.clone()
    };
    let harness = load_harness(&cfg.test262_dir)?;
    let paths = test_paths(&cfg)?;
    let tests = load_tests(&cfg.test262_dir, paths)?;
    let threads = cfg.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(std::num::NonZeroUsize::get)
            .unwrap_or(1)
    });
    let mut status = 0;
    for kind in engines {
        status = status.max(run_engine(&cfg, kind, &tests, &harness, threads));
    }
    Ok(status)
}

fn main() {
    let code = match real_main() {
        Ok(code) => code,
        Err(Usage(msg)) => {
            eprintln!("palisade-test262: {msg} (see --help)");
            2
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn top_dirs() {
        assert_eq!(top_dir("test/built-ins/Array/from/x.js"), "built-ins/Array");
        assert_eq!(top_dir("test/language/x.js"), "language");
    }

    #[test]
    fn args() {
        let parse = |a: &[&str]| parse_args(a.iter().map(|s| (*s).to_owned()).collect());
        assert!(matches!(parse(&["--bogus"]), Err(Usage(_))));
        assert!(matches!(parse(&["-x"]), Err(Usage(_))));
        assert!(matches!(parse(&["--engine", "nope"]), Err(Usage(_))));
        assert!(matches!(
            parse(&["--test262-dir", "/definitely/not/here"]),
            Err(Usage(_))
        ));
        assert!(matches!(parse(&["--help"]), Ok(None)));
    }

    /// The frontmatter parser agrees with the sample's `sample.meta.jsonl` on every sampled test
    /// (skipped when the shared corpus is not there).
    #[test]
    fn frontmatter_parser_agrees_with_sample_meta() {
        let dir = default_test262_dir();
        let Ok(text) = std::fs::read_to_string(dir.join("sample.meta.jsonl")) else {
            eprintln!("skipped: no sample.meta.jsonl in {}", dir.display());
            return;
        };
        let expected = frontmatter::load_jsonl(&text).expect("sample.meta.jsonl parses");
        assert!(!expected.is_empty());
        for (path, meta) in &expected {
            let source = std::fs::read_to_string(dir.join(path)).expect("sampled test is readable");
            let parsed = frontmatter::parse(&source).expect("frontmatter parses");
            assert_eq!(&parsed, meta, "{path}");
        }
    }

    #[test]
    fn counts_print_percentages() {
        let c = Count {
            passed: 1,
            total: 3,
        };
        assert_eq!(c.to_string(), "1/3 (33.3%)");
        assert_eq!(Count::default().to_string(), "0/0 (0.0%)");
    }
}
