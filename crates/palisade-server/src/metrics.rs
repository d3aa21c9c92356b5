//! Prometheus text exposition of the service's counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use crate::pool::Pool;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// A per-lane series: name, type, help, and how to read it from a lane's pool.
type PerLane = (&'static str, &'static str, &'static str, fn(&Pool) -> u64);

/// Execution counters and latency histograms.
#[derive(Debug, Default)]
pub struct Metrics {
    executions: Mutex<BTreeMap<(String, String), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    rejected: std::sync::atomic::AtomicU64,
    by_lane: [std::sync::atomic::AtomicU64; 2],
    connections: std::sync::atomic::AtomicU64,
    client_timeouts: [std::sync::atomic::AtomicU64; 3],
}

/// Which of the front door's timeouts a client ran out (see [`crate::door`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTimeout {
    /// `header_timeout_ms`: a request's head did not arrive, or a kept-alive connection sat
    /// idle.
    Head,
    /// `body_timeout_ms`: a request's body did not all arrive.
    Body,
    /// `send_timeout_ms`: the client took no byte of a response.
    Send,
}

impl ClientTimeout {
    const ALL: [ClientTimeout; 3] = [
        ClientTimeout::Head,
        ClientTimeout::Body,
        ClientTimeout::Send,
    ];

    fn label(self) -> &'static str {
        match self {
            ClientTimeout::Head => "head",
            ClientTimeout::Body => "body",
            ClientTimeout::Send => "send",
        }
    }
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Records one execution: its engine, its outcome kind (`ok` or the error kind) and the
    /// server-side latency.
    pub fn record(&self, engine: &str, kind: &str, latency: Duration) {
        if let Ok(mut m) = self.executions.lock() {
            *m.entry((engine.to_owned(), kind.to_owned())).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(engine.to_owned()).or_default();
            let s = latency.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
        }
    }

    /// Counts an execution that ran in `lane`.
    pub fn ran_in(&self, lane: crate::lanes::Lane) {
        let i = match lane {
            crate::lanes::Lane::Fast => 0,
            crate::lanes::Lane::Slow => 1,
        };
        self.by_lane[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused because the queue was full.
    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection open until the guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }

    /// Counts a client that ran out one of the front door's timeouts.
    pub fn client_timeout(&self, which: ClientTimeout) {
        self.client_timeouts[which as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text format; the pools are labelled by lane.
    pub fn render(&self, pools: &[(&str, &Pool)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP palisade_executions_total Executions by engine and outcome kind.\n");
        out.push_str("# TYPE palisade_executions_total counter\n");
        if let Ok(m) = self.executions.lock() {
            for ((engine, kind), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "palisade_executions_total{{engine=\"{engine}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP palisade_execution_seconds Execution latency seen by the server.\n");
        out.push_str("# TYPE palisade_execution_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (engine, h) in m.iter() {
                for (b, c) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        out,
                        "palisade_execution_seconds_bucket{{engine=\"{engine}\",le=\"{b}\"}} {c}"
                    );
                }
                let _ = writeln!(
                    out,
                    "palisade_execution_seconds_bucket{{engine=\"{engine}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "palisade_execution_seconds_sum{{engine=\"{engine}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "palisade_execution_seconds_count{{engine=\"{engine}\"}} {}",
                    h.count
                );
            }
        }
        let per_lane: [PerLane; 5] = [
            (
                "palisade_queue_depth",
                "gauge",
                "Executions waiting for a worker, by lane.",
                |p| p.queue_depth() as u64,
            ),
            (
                "palisade_workers_live",
                "gauge",
                "Workers running and answering, by lane.",
                Pool::live,
            ),
            (
                "palisade_worker_restarts_total",
                "counter",
                "Workers replaced after a crash or a missed deadline, by lane.",
                |p| p.stats().restarts.load(Ordering::Relaxed),
            ),
            (
                "palisade_worker_recycles_total",
                "counter",
                "Workers retired by execution count or memory, by lane.",
                |p| p.stats().recycles.load(Ordering::Relaxed),
            ),
            (
                "palisade_workers_spawned_total",
                "counter",
                "Worker processes started, by lane.",
                |p| p.stats().spawned.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, read) in per_lane {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (lane, pool) in pools {
                let _ = writeln!(out, "{name}{{lane=\"{lane}\"}} {}", read(pool));
            }
        }
        let name = "palisade_lane_executions_total";
        let _ = writeln!(
            out,
            "# HELP {name} Executions run, by lane.\n# TYPE {name} counter\n\
             {name}{{lane=\"fast\"}} {}\n{name}{{lane=\"slow\"}} {}",
            self.by_lane[0].load(Ordering::Relaxed),
            self.by_lane[1].load(Ordering::Relaxed)
        );
        let name = "palisade_rejected_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests refused with 429 (queue full).\n# TYPE {name} counter\n{name} {}",
            self.rejected.load(Ordering::Relaxed)
        );
        let name = "palisade_connections_open";
        let _ = writeln!(
            out,
            "# HELP {name} Client connections open.\n# TYPE {name} gauge\n{name} {}",
            self.connections.load(Ordering::Relaxed)
        );
        let name = "palisade_client_timeouts_total";
        let _ = writeln!(
            out,
            "# HELP {name} Client connections or requests ended by a timeout: head \
             (header_timeout_ms), body (body_timeout_ms), send (send_timeout_ms).\n\
             # TYPE {name} counter"
        );
        for which in ClientTimeout::ALL {
            let _ = writeln!(
                out,
                "{name}{{phase=\"{}\"}} {}",
                which.label(),
                self.client_timeouts[which as usize].load(Ordering::Relaxed)
            );
        }
        out
    }
}
