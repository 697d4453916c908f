//! A token-bucket pacer: caps a session's send rate so that an always-due
//! courier cannot make the engine emit packets without end. (Issue-3
//! congestion control sets the rate; until then it is the configured cap.)

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Pacer {
    /// Bytes per second.
    rate: u64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    pub fn new(now: Instant, rate: u64, burst_bytes: usize) -> Self {
        Self {
            rate: rate.max(1),
            burst: burst_bytes as f64,
            tokens: burst_bytes as f64,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate as f64).min(self.burst);
        self.last = self.last.max(now);
    }

    /// When a packet of `len` bytes may go (now, or later). One larger than
    /// the bucket goes when the bucket is full: it could never wait for more.
    pub fn ready_at(&self, now: Instant, len: usize) -> Instant {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = (self.tokens + dt * self.rate as f64).min(self.burst);
        let len = (len as f64).min(self.burst);
        if tokens >= len {
            now
        } else {
            now + Duration::from_secs_f64((len - tokens) / self.rate as f64)
        }
    }

    /// When a packet of `len` bytes may go, judged from the last send (the
    /// instant [`Self::ready_at`] would give for any `now` before it).
    pub fn next_ready(&self, len: usize) -> Instant {
        self.ready_at(self.last, len)
    }

    pub fn set_rate(&mut self, rate: u64) {
        self.rate = rate.max(1);
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    pub fn on_sent(&mut self, now: Instant, len: usize) {
        self.refill(now);
        self.tokens -= len as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_spaces_packets_at_the_rate_after_the_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 1000, 1000);
        assert_eq!(p.ready_at(t0, 500), t0);
        p.on_sent(t0, 500);
        p.on_sent(t0, 500);
        assert_eq!(p.ready_at(t0, 500), t0 + Duration::from_millis(500));
    }

    #[test]
    fn a_packet_larger_than_the_bucket_goes_when_the_bucket_is_full() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 1000, 1000);
        p.on_sent(t0, 1000);
        let at = p.ready_at(t0, 5000);
        assert_eq!(at, t0 + Duration::from_secs(1));
        assert_eq!(p.ready_at(at, 5000), at, "a full bucket lets it go");
    }
}
