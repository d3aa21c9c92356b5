//! Which lane an execution takes: the fast lane's workers, or the slow lane's.
//!
//! A function that recently hit a limit (timeout, memory, fuel), killed its worker, or ran longer
//! than the slow threshold is sent to the slow lane, whose workers are few, run at a lower CPU
//! priority and have their own queue. So an infinite loop or a memory bomb costs the slow lane
//! its timeout, not a fast worker, and the benign traffic keeps its latency. A function whose
//! last [`HISTORY`] runs were all quick returns to the fast lane. A function not yet seen to be
//! quick ([`PROBATION`]) has at most one run at a time in the fast lane; a burst of it overflows
//! to the slow lane, so the first hostile runs of a new function cost the fast lane at most one
//! worker.
//!
//! Ad hoc `/v1/execute` requests are keyed by a hash of their source, so a script posted again
//! and again is classified like a deployed function.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use palisade::ErrorKind;

/// How many recent runs decide a function's lane.
pub const HISTORY: u32 = 8;

/// Functions remembered at most; past it, those with no slow run and no run in flight are
/// forgotten (and go back on probation).
const CAPACITY: usize = 100_000;

/// A lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Most executions.
    Fast,
    /// Executions of functions that recently ran long or hit a limit.
    Slow,
}

impl Lane {
    /// `fast` or `slow`, as in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Fast => "fast",
            Lane::Slow => "slow",
        }
    }
}

/// What a lane is chosen by: the tenant and the function (or the ad hoc source's hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaneKey {
    tenant: String,
    what: What,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum What {
    Function(String),
    Source(u64),
}

impl LaneKey {
    /// A deployed function.
    pub fn function(tenant: &str, name: &str) -> LaneKey {
        LaneKey {
            tenant: tenant.to_owned(),
            what: What::Function(name.to_owned()),
        }
    }

    /// An ad hoc execution of `source`.
    pub fn source(tenant: &str, source: &str) -> LaneKey {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        source.hash(&mut h);
        LaneKey {
            tenant: tenant.to_owned(),
            what: What::Source(h.finish()),
        }
    }
}

/// Quick runs a function needs before it may run several at once in the fast lane.
pub const PROBATION: u32 = 1;

#[derive(Debug, Default)]
struct State {
    /// A bit per recent run, newest lowest: 1 = slow.
    slow: u8,
    /// Quick runs seen, saturating at [`PROBATION`].
    quick: u32,
    /// Runs in the fast lane now.
    in_fast: u32,
    /// Whether the last run ended with its worker lost (`internal`).
    lost_worker: bool,
}

/// The classifier.
#[derive(Debug)]
pub struct Lanes {
    states: Mutex<HashMap<LaneKey, State>>,
    threshold: Duration,
}

/// A run admitted into a lane. Dropping it without [`Ticket::finish`] (the request failed
/// before a run) records nothing.
#[derive(Debug)]
pub struct Ticket<'a> {
    lanes: &'a Lanes,
    key: LaneKey,
    /// The lane the run takes.
    pub lane: Lane,
    /// Whether the function has shown it is quick (past probation, no slow run in its
    /// history): only such a run may have another job sent to its worker behind it.
    pub proven: bool,
    finished: bool,
}

impl Ticket<'_> {
    /// Records the finished run, by its outcome kind and execution time (see
    /// `Lanes::slow`).
    pub fn finish(mut self, kind: Option<ErrorKind>, ran: Duration) {
        self.finished = true;
        let threshold = self.lanes.threshold;
        let mut states = self.lanes.lock();
        let state = states.entry(self.key.clone()).or_default();
        if self.lane == Lane::Fast {
            state.in_fast = state.in_fast.saturating_sub(1);
        }
        // A worker lost quickly may have been killed from outside (an operator, the OOM killer,
        // a neighbour's crash): only a second loss in a row marks the function. A slow loss
        // counts at once, like any slow run.
        let lost = kind == Some(ErrorKind::Internal);
        let slow = if lost && ran <= threshold {
            state.lost_worker
        } else {
            Lanes::slow(threshold, kind, ran)
        };
        state.lost_worker = lost;
        state.slow = (state.slow << 1) | u8::from(slow);
        if !slow {
            state.quick = (state.quick + 1).min(PROBATION);
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.finished || self.lane != Lane::Fast {
            return;
        }
        let mut states = self.lanes.lock();
        if let Some(state) = states.get_mut(&self.key) {
            state.in_fast = state.in_fast.saturating_sub(1);
        }
    }
}

impl Lanes {
    /// A classifier that calls a run slow past `threshold` of execution time.
    pub fn new(threshold: Duration) -> Lanes {
        Lanes {
            states: Mutex::new(HashMap::new()),
            threshold,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LaneKey, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits the next run of `key`: to the slow lane if any of its last [`HISTORY`] runs was
    /// slow, or if it is still on probation (fewer than [`PROBATION`] quick runs) and already
    /// has a run in the fast lane; to the fast lane otherwise. So a burst of a new function
    /// costs the fast lane at most one worker until the function has shown it is quick.
    pub fn admit(&self, key: LaneKey) -> Ticket<'_> {
        let mut states = self.lock();
        if states.len() >= CAPACITY && !states.contains_key(&key) {
            states.retain(|_, s| s.slow != 0 || s.in_fast != 0);
        }
        let state = states.entry(key.clone()).or_default();
        let lane = if state.slow != 0 || (state.quick < PROBATION && state.in_fast > 0) {
            Lane::Slow
        } else {
            state.in_fast += 1;
            Lane::Fast
        };
        let proven = state.slow == 0 && state.quick >= PROBATION;
        drop(states);
        Ticket {
            lanes: self,
            key,
            lane,
            proven,
            finished: false,
        }
    }

    /// Whether a run with this outcome kind and execution time counts as slow: a timeout,
    /// memory or fuel limit, a lost worker, or a run past the threshold.
    fn slow(threshold: Duration, kind: Option<ErrorKind>, wall: Duration) -> bool {
        matches!(
            kind,
            Some(
                ErrorKind::Timeout
                    | ErrorKind::MemoryLimit
                    | ErrorKind::FuelExhausted
                    | ErrorKind::Internal
            )
        ) || wall > threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lanes: &Lanes, key: &LaneKey, slow: bool) -> Lane {
        let kind = slow.then_some(ErrorKind::Timeout);
        finish(lanes, key, kind, Duration::ZERO)
    }

    fn finish(lanes: &Lanes, key: &LaneKey, kind: Option<ErrorKind>, ran: Duration) -> Lane {
        let t = lanes.admit(key.clone());
        let lane = t.lane;
        t.finish(kind, ran);
        lane
    }

    #[test]
    fn one_quick_lost_worker_is_forgiven_two_in_a_row_are_not() {
        let lanes = Lanes::new(Duration::from_millis(50));
        let f = LaneKey::function("t", "f");
        let lost = Some(ErrorKind::Internal);
        finish(&lanes, &f, None, Duration::ZERO);
        finish(&lanes, &f, lost, Duration::from_millis(1));
        assert_eq!(lanes.admit(f.clone()).lane, Lane::Fast);
        finish(&lanes, &f, None, Duration::ZERO);
        finish(&lanes, &f, lost, Duration::from_millis(1));
        finish(&lanes, &f, lost, Duration::from_millis(1));
        assert_eq!(lanes.admit(f.clone()).lane, Lane::Slow);
        // A loss that took long counts at once.
        let g = LaneKey::function("t", "g");
        finish(&lanes, &g, None, Duration::ZERO);
        finish(&lanes, &g, lost, Duration::from_millis(60));
        assert_eq!(lanes.admit(g.clone()).lane, Lane::Slow);
    }

    #[test]
    fn a_slow_run_moves_a_function_until_eight_quick_ones() {
        let lanes = Lanes::new(Duration::from_millis(50));
        let f = LaneKey::function("t", "f");
        let slow = |kind, ms| Lanes::slow(lanes.threshold, kind, Duration::from_millis(ms));
        assert!(slow(Some(ErrorKind::Timeout), 0));
        assert!(slow(None, 51));
        assert!(!slow(Some(ErrorKind::Exception), 1));
        assert_eq!(run(&lanes, &f, true), Lane::Fast);
        assert_eq!(run(&lanes, &LaneKey::function("u", "f"), false), Lane::Fast);
        for i in 0..HISTORY {
            assert_eq!(run(&lanes, &f, false), Lane::Slow, "after {i} quick runs");
        }
        assert_eq!(run(&lanes, &f, false), Lane::Fast);
    }

    #[test]
    fn a_new_function_has_one_fast_run_at_a_time_until_proven() {
        let lanes = Lanes::new(Duration::from_millis(50));
        let f = LaneKey::function("t", "f");
        let first = lanes.admit(f.clone());
        assert_eq!(first.lane, Lane::Fast);
        assert_eq!(lanes.admit(f.clone()).lane, Lane::Slow);
        drop(first);
        for _ in 0..PROBATION {
            assert_eq!(run(&lanes, &f, false), Lane::Fast);
        }
        let held: Vec<_> = (0..4).map(|_| lanes.admit(f.clone())).collect();
        assert!(held.iter().all(|t| t.lane == Lane::Fast));
        drop(held);
        assert_eq!(lanes.lock().get(&f).map(|s| s.in_fast), Some(0));
    }

    #[test]
    fn ad_hoc_sources_are_keyed_by_text() {
        let lanes = Lanes::new(Duration::from_millis(50));
        run(&lanes, &LaneKey::source("t", "for(;;){}"), true);
        assert_eq!(
            run(&lanes, &LaneKey::source("t", "for(;;){}"), true),
            Lane::Slow
        );
        assert_eq!(run(&lanes, &LaneKey::source("t", "1+1"), false), Lane::Fast);
    }
}
