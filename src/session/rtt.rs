//! Round-trip time estimation (RFC 6298, with RFC 9002's ack-delay
//! adjustment) from acknowledgements of ack-eliciting packets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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

/// Send times of recent ack-eliciting packets, for RTT samples.
#[derive(Debug, Clone, Default)]
pub struct SentLog {
    entries: VecDeque<(u64, Instant)>,
    largest_acked: Option<u64>,
}

impl SentLog {
    const CAPACITY: usize = 256;

    pub fn on_sent(&mut self, pn: u64, now: Instant) {
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back((pn, now));
    }

    /// Processes an ack's largest number; returns the RTT sample if it newly
    /// acknowledges an ack-eliciting packet we remember.
    pub fn on_ack(&mut self, largest: u64, now: Instant) -> Option<Duration> {
        if self.largest_acked.is_some_and(|l| l >= largest) {
            return None;
        }
        self.largest_acked = Some(largest);
        let mut sample = None;
        while let Some(&(pn, at)) = self.entries.front() {
            if pn > largest {
                break;
            }
            if pn == largest {
                sample = Some(now.saturating_duration_since(at));
            }
            self.entries.pop_front();
        }
        sample
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

    #[test]
    fn only_new_largest_acks_give_samples() {
        let t0 = Instant::now();
        let mut log = SentLog::default();
        log.on_sent(1, t0);
        log.on_sent(2, t0 + Duration::from_millis(1));
        assert_eq!(
            log.on_ack(2, t0 + Duration::from_millis(11)),
            Some(Duration::from_millis(10))
        );
        assert_eq!(log.on_ack(2, t0 + Duration::from_millis(20)), None);
        assert_eq!(log.on_ack(1, t0 + Duration::from_millis(20)), None);
    }
}
