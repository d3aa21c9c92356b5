//! The wasm engine's figures, measured against the native quickjs engine in the same process:
//! `cargo run --release -p palisade-wasm --example figures [-- cold]`.
//!
//! - first run after a cold start (this process: engine start incl. compile or cache load);
//! - fresh `1+1` executions, open loop at 1,000/s: p50/p99 latency;
//! - saturated fresh executions per second on one thread, wasm and quickjs;
//! - RSS per live instance beyond the guest heap (64 concurrent runs held alive).
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use palisade_core::{host::no_host, Engine, Request};
use palisade_quickjs::QuickJs;
use palisade_wasm::{Wasm, WasmOptions};

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let t0 = Instant::now();
    let wasm = Wasm::with_options(WasmOptions::default()).expect("wasm engine");
    let started = t0.elapsed();
    let o = wasm.execute(&Request::script("1+1"), no_host());
    assert_eq!(o.result.expect("1+1"), serde_json::json!(2));
    println!(
        "cold start: engine ready {:.1} ms, first run done {:.1} ms after process start",
        started.as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3
    );
    if std::env::args().any(|a| a == "cold") {
        return;
    }
    let native = QuickJs::new();
    let req = Request::script("1+1");

    // Open loop at 1,000/s.
    for (name, engine) in [("wasm", &wasm as &dyn Engine), ("quickjs", &native)] {
        let mut lat = Vec::new();
        let start = Instant::now();
        for i in 0..3000u32 {
            let due = start + Duration::from_millis(u64::from(i));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let t = Instant::now();
            let o = engine.execute(&req, no_host());
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            assert!(o.result.is_ok());
        }
        let p50 = pct(&mut lat, 0.5);
        let p99 = pct(&mut lat, 0.99);
        println!("open loop 1000/s {name}: p50 {p50:.1} µs, p99 {p99:.1} µs");
    }

    // Saturated, one thread.
    for _ in 0..2 {
        for (name, engine) in [("wasm", &wasm as &dyn Engine), ("quickjs", &native)] {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < Duration::from_secs(2) {
                let o = engine.execute(&req, no_host());
                assert!(o.result.is_ok());
                n += 1;
            }
            println!(
                "saturated one thread {name}: {:.0} executions/s",
                n as f64 / start.elapsed().as_secs_f64()
            );
        }
    }

    // RSS per live instance: 64 runs held alive at once (each waits until all have started).
    let wasm = Arc::new(wasm);
    let n = 64;
    let before = rss();
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut handles = Vec::new();
    for _ in 0..n {
        let (w, b) = (wasm.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            let src = "const t = Date.now() + 1500; while (Date.now() < t) {} 0";
            b.wait();
            w.execute(&Request::script(src), no_host())
        }));
    }
    barrier.wait();
    std::thread::sleep(Duration::from_millis(1000));
    let during = rss();
    let heaps: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("thread").metrics.memory_bytes)
        .sum();
    let per = (during.saturating_sub(before)) as f64 / n as f64;
    let heap = heaps as f64 / n as f64;
    println!(
        "RSS per live instance: {:.0} KiB (guest heap {:.0} KiB, beyond it {:.0} KiB; threads' stacks included)",
        per / 1024.0,
        heap / 1024.0,
        (per - heap) / 1024.0
    );
}
