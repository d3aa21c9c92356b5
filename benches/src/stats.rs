//! Order statistics over samples.

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted`, which must be sorted
/// ascending; `None` when there are no samples.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Sorts `samples` and returns its nearest-rank median.
pub fn median<T: Copy + Ord>(samples: &mut [T]) -> Option<T> {
    samples.sort_unstable();
    percentile(samples, 50.0)
}

/// Sorts `samples` and returns its nearest-rank median.
pub fn median_f64(samples: &mut [f64]) -> Option<f64> {
    samples.sort_by(f64::total_cmp);
    percentile(samples, 50.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.1), Some(1));
        assert_eq!(percentile::<u64>(&[], 50.0), None);
        assert_eq!(median(&mut [3, 1, 2]), Some(2));
        assert_eq!(median_f64(&mut [2.5, 0.5, 1.5]), Some(1.5));
    }
}
