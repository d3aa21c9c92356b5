//! Figures for the v8 engine: open-loop latency of a fresh `1+1` at 100/s, the saturated rate,
//! memory per live (prepared) context, and the V8 Benchmark Suite v7 score.
//!
//! `cargo run --release -p palisade-v8 --bin palisade-v8-bench [-- V8V7_DIR]`
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use palisade_core::{host::no_host, Engine, Limits, Request};
use palisade_v8::{V8Options, V8};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn children_rss_kib() -> u64 {
    let mut total = 0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    for t in tasks.flatten() {
        let Ok(kids) = std::fs::read_to_string(t.path().join("children")) else {
            continue;
        };
        for pid in kids.split_whitespace() {
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                total += s
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| {
                        l.split_whitespace()
                            .nth(1)
                            .and_then(|v| v.parse::<u64>().ok())
                    })
                    .unwrap_or(0);
            }
        }
    }
    total
}

fn main() {
    let engine = match V8::with_options(V8Options::default().prewarm(2)) {
        Ok(e) => e,
        Err(why) => {
            eprintln!("v8 unavailable: {why}");
            std::process::exit(3);
        }
    };
    let req = Request::script("1+1");
    for _ in 0..50 {
        let _ = engine.execute(&req, no_host());
    }
    // Open loop at 100/s: latency from the scheduled start.
    let n = 500;
    let period = Duration::from_millis(10);
    let t0 = Instant::now();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let at = t0 + period * i as u32;
        if let Some(d) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let o = engine.execute(&req, no_host());
        assert!(o.is_ok(), "{}", o.to_json());
        lat.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "open loop 100/s, fresh context per run, `1+1`: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms (n={n})",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99)
    );
    // Saturated: back to back on one thread.
    let t = Instant::now();
    let mut k = 0u64;
    while t.elapsed() < Duration::from_secs(3) {
        let _ = engine.execute(&req, no_host());
        k += 1;
    }
    println!(
        "saturated (1 caller thread): {:.0} runs/s",
        k as f64 / t.elapsed().as_secs_f64()
    );
    // Memory per live context: a worker holding 1 prepared context vs one holding 16.
    drop(engine);
    std::thread::sleep(Duration::from_millis(300));
    let one = V8::with_options(V8Options::default().prewarm(1)).expect("v8");
    let _ = one.execute(&req, no_host());
    std::thread::sleep(Duration::from_millis(500));
    let rss1 = children_rss_kib();
    drop(one);
    std::thread::sleep(Duration::from_millis(300));
    let many = V8::with_options(V8Options::default().prewarm(16)).expect("v8");
    let _ = many.execute(&req, no_host());
    std::thread::sleep(Duration::from_millis(1500));
    let rss16 = children_rss_kib();
    println!(
        "memory: worker RSS {rss1} KiB with 1 prepared context, {rss16} KiB with 16: {:.2} MiB per live context",
        (rss16 as f64 - rss1 as f64) / 15.0 / 1024.0
    );
    // V8 Benchmark Suite v7.
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        // The shared corpora: $PALISADE_SHARED, else ../shared beside the checkout.
        let shared = std::env::var("PALISADE_SHARED")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned());
        format!("{shared}/corpora/bench/v8-v7")
    });
    let mut script = String::from(
        "var print = function(){ console.log(Array.prototype.join.call(arguments, ' ')); };\n",
    );
    for f in [
        "base.js",
        "richards.js",
        "deltablue.js",
        "crypto.js",
        "raytrace.js",
        "earley-boyer.js",
        "regexp.js",
        "splay.js",
        "navier-stokes.js",
    ] {
        match std::fs::read_to_string(format!("{dir}/{f}")) {
            Ok(t) => {
                script.push_str(&t);
                script.push('\n');
            }
            Err(e) => {
                println!("v8-v7: skipped ({dir}/{f}: {e})");
                return;
            }
        }
    }
    script.push_str("BenchmarkSuite.RunSuites({ NotifyResult: function(n, s){ print(n + ': ' + s); }, NotifyError: function(n, e){ print(n + ': ERROR ' + e); }, NotifyScore: function(s){ print('Score: ' + s); } });\n");
    let limits = Limits {
        memory: 1 << 30,
        timeout: Duration::from_secs(300),
        ..Limits::default()
    };
    // Node 24 (scripts/fetch-node) runs the very same script, interleaved with Palisade's runs so
    // that both see the same machine; the figures are the medians of the rounds.
    let node = node_binary();
    let rounds: usize = std::env::var("PALISADE_V8V7_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let file = std::env::temp_dir().join(format!("palisade-v8v7-{}.js", std::process::id()));
    if node.is_some() && std::fs::write(&file, &script).is_err() {
        println!("v8-v7: cannot write {}", file.display());
        return;
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let o = many.execute(
            &Request::script(script.clone()).with_limits(limits.clone()),
            no_host(),
        );
        if let Err(e) = &o.result {
            println!("v8-v7 failed on palisade v8: {e}");
            return;
        }
        if round == 1 {
            print!("v8-v7 on palisade v8 (round 1):\n{}", o.stdout);
        }
        let Some(got) = score(&o.stdout) else {
            println!("v8-v7: no score in {:?}", o.stdout);
            return;
        };
        ours.push(got);
        if let Some(node) = &node {
            match std::process::Command::new(node).arg(&file).output() {
                Ok(out) => match score(&String::from_utf8_lossy(&out.stdout)) {
                    Some(s) => theirs.push(s),
                    None => println!("v8-v7 on node: no score ({})", out.status),
                },
                Err(e) => println!("v8-v7 on node: cannot run {}: {e}", node.display()),
            }
        }
        println!(
            "round {round}: palisade v8 {got:.0}{}",
            theirs
                .last()
                .filter(|_| theirs.len() == ours.len())
                .map_or(String::new(), |n| format!(", node {n:.0}"))
        );
    }
    let _ = std::fs::remove_file(&file);
    let ours = median(&mut ours);
    if theirs.is_empty() {
        println!("v8-v7 median of {rounds}: palisade v8 {ours:.0} (node 24 not found: bash scripts/fetch-node)");
    } else {
        let theirs = median(&mut theirs);
        println!(
            "v8-v7 median of {rounds}: palisade v8 {ours:.0}, node 24 {theirs:.0}: {:.2}x node (goal >= 0.95x)",
            ours / theirs
        );
    }
}

/// The `Score: N` line of a V8 benchmark suite run.
fn score(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Score: "))
        .and_then(|s| s.trim().parse().ok())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    pct(v, 0.5)
}

/// Node 24 for the peer figure: `PALISADE_NODE`, else what scripts/fetch-node installed.
fn node_binary() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("PALISADE_NODE") {
        return Some(p.into());
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(".cache/node/bin/node");
    p.exists().then_some(p)
}
