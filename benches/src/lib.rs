//! Shared measurement helpers for the benches: medians and ratio reports.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

pub mod ctraw;

/// The median of a non-empty set of samples (the lower middle one for an even count).
pub fn median(samples: &mut [Duration]) -> Option<Duration> {
    samples.sort();
    samples.get(samples.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_three_is_the_middle() {
        let mut s = [
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ];
        assert_eq!(median(&mut s), Some(Duration::from_millis(20)));
        assert_eq!(median(&mut []), None);
    }
}
