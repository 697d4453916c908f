//! Round-trip time estimation (RFC 6298, with RFC 9002's ack-delay
//! adjustment) from acknowledgements of ack-eliciting packets.

use std::time::Duration;

use crate::stats::RttStats;

#[derive(Debug, Clone, Default)]
pub struct RttEstimator {
    stats: RttStats,
}

impl RttEstimator {
    pub fn stats(&self) -> RttStats {
        self.stats
    }

    pub fn smoothed(&self) -> Option<Duration> {
        self.stats.smoothed
    }

    pub fn update(&mut self, sample: Duration, ack_delay: Duration) {
        let s = &mut self.stats;
        s.samples += 1;
        s.latest = Some(sample);
        let min = s.min.map_or(sample, |m| m.min(sample));
        s.min = Some(min);
        // Ignore the peer's ack delay where it would take us below min_rtt.
        let adjusted = if sample >= min + ack_delay {
            sample - ack_delay
        } else {
            sample
        };
        match s.smoothed {
            None => {
                s.smoothed = Some(adjusted);
                s.variance = adjusted / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(adjusted);
                s.variance = (s.variance * 3 + diff) / 4;
                s.smoothed = Some((srtt * 7 + adjusted) / 8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimator_follows_rfc6298() {
        let mut r = RttEstimator::default();
        r.update(Duration::from_millis(100), Duration::ZERO);
        assert_eq!(r.stats().smoothed, Some(Duration::from_millis(100)));
        assert_eq!(r.stats().variance, Duration::from_millis(50));
        r.update(Duration::from_millis(60), Duration::ZERO);
        assert_eq!(r.stats().smoothed, Some(Duration::from_millis(95)));
        assert_eq!(r.stats().min, Some(Duration::from_millis(60)));
    }
}
