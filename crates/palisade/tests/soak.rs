//! Soak check (issue 2, "bad input"): 10,000 runs of mixed hostile cases, after which the
//! process's resident memory is back near its baseline. Its own test binary, so no other test
//! shares the process while RSS is measured.

use std::time::Duration;

use palisade::{ErrorKind, Limits, Request, Sandbox};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn issue_2_rss_returns_to_baseline_after_10000_hostile_runs() {
    let sandbox = Sandbox::new();
    // (source, expected kind, timeout in ms): loops get a short deadline, the rest a generous one.
    let cases: [(&str, Option<ErrorKind>, u64); 8] = [
        ("for (;;) {}", Some(ErrorKind::Timeout), 2),
        (
            "let a = []; for (;;) a.push({ i: a.length, s: 'x' + a.length });",
            Some(ErrorKind::MemoryLimit),
            5000,
        ),
        (
            "(function f() { f() })()",
            Some(ErrorKind::StackOverflow),
            5000,
        ),
        (
            "throw new TypeError('boom')",
            Some(ErrorKind::Exception),
            5000,
        ),
        (
            "let o = {}; o.o = o; o",
            Some(ErrorKind::NotSerializable),
            5000,
        ),
        ("'y'.repeat(10000)", Some(ErrorKind::ResultLimit), 5000),
        (
            "function f() { Promise.resolve().then(f) } f()",
            Some(ErrorKind::Timeout),
            2,
        ),
        ("console.log('hi'); ({ ok: [1, 2, 3] })", None, 5000),
    ];
    let run = |i: usize| {
        let (src, kind, timeout) = cases[i % cases.len()];
        let limits = Limits {
            memory: 4 << 20,
            timeout: Duration::from_millis(timeout),
            result: 4096,
            ..Limits::default()
        };
        let o = sandbox.run(&Request::script(src).with_limits(limits));
        assert_eq!(o.error_kind(), kind, "{src}: {}", o.to_json());
    };
    // Warm up allocator arenas and lazily initialised statics before taking the baseline.
    for i in 0..500 {
        run(i);
    }
    let baseline = rss_kib();
    for i in 0..10_000 {
        run(i);
    }
    let after = rss_kib();
    let growth = after.saturating_sub(baseline);
    eprintln!("RSS baseline {baseline} KiB, after 10,000 runs {after} KiB, growth {growth} KiB");
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB");
}
