//! A token-bucket pacer: caps a session's send rate so that an always-due
//! courier cannot make the engine emit packets without end. (Issue-3
//! congestion control sets the rate; until then it is the configured cap.)

use std::time::{Duration, Instant};

/// Token amounts are kept in byte-nanoseconds per second (bytes x 10^9):
/// `elapsed ns x rate` adds whole units, so the bucket is exact integer
/// arithmetic (no float rounding, no `Duration::from_secs_f64` per packet).
const UNITS_PER_BYTE: i128 = 1_000_000_000;

/// How long `short` units take to refill at `rate` bytes a second, rounded
/// up to the nanosecond. A packet's worth fits 64 bits, whose division is
/// several times cheaper than 128-bit division (a call, per packet sent).
fn wait_for(short: u128, rate: u64) -> Duration {
    let ns = match u64::try_from(short) {
        Ok(short) => short.div_ceil(rate),
        Err(_) => u64::try_from(short.div_ceil(u128::from(rate))).unwrap_or(u64::MAX),
    };
    Duration::from_nanos(ns)
}

#[derive(Debug, Clone)]
pub struct Pacer {
    /// Bytes per second.
    rate: u64,
    burst: i128,
    /// Below zero after a packet larger than what was left.
    tokens: i128,
    last: Instant,
    /// When the bucket is full again: from then on any packet may go at
    /// once, which spares the common case (an unhurried session) all the
    /// arithmetic.
    full_at: Instant,
}

impl Pacer {
    pub fn new(now: Instant, rate: u64, burst_bytes: usize) -> Self {
        let burst = burst_bytes as i128 * UNITS_PER_BYTE;
        Self {
            rate: rate.max(1),
            burst,
            tokens: burst,
            last: now,
            full_at: now,
        }
    }

    /// When the bucket as it stood at `last` is full.
    fn compute_full_at(&self) -> Instant {
        let short = (self.burst - self.tokens).max(0) as u128;
        self.last + wait_for(short, self.rate)
    }

    /// The bucket at `now` (never before `last`).
    fn tokens_at(&self, now: Instant) -> i128 {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        // Capped first (at the time to fill up): a long-idle session's
        // elapsed time times a high rate would not fit.
        let cap = wait_for((self.burst - self.tokens).max(0) as u128, self.rate).as_nanos();
        let gained = (elapsed.min(cap) * u128::from(self.rate)) as i128;
        (self.tokens + gained).min(self.burst)
    }

    /// When a packet of `len` bytes may go (now, or later). One larger than
    /// the bucket goes when the bucket is full: it could never wait for more.
    pub fn ready_at(&self, now: Instant, len: usize) -> Instant {
        if now >= self.full_at {
            return now;
        }
        let tokens = self.tokens_at(now);
        let need = (len as i128 * UNITS_PER_BYTE).min(self.burst);
        if tokens >= need {
            return now;
        }
        now + wait_for((need - tokens) as u128, self.rate)
    }

    /// When a packet of `len` bytes may go, judged from the last send (the
    /// instant [`Self::ready_at`] would give for any `now` before it).
    pub fn next_ready(&self, len: usize) -> Instant {
        if self.tokens >= len as i128 * UNITS_PER_BYTE {
            return self.last;
        }
        self.ready_at(self.last, len)
    }

    pub fn set_rate(&mut self, rate: u64) {
        let rate = rate.max(1);
        if rate != self.rate {
            self.rate = rate;
            self.full_at = self.compute_full_at();
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    pub fn on_sent(&mut self, now: Instant, len: usize) {
        // A full bucket (the usual case short of a bulk transfer) needs no
        // refill arithmetic.
        let before = if now >= self.full_at {
            self.burst
        } else {
            self.tokens_at(now)
        };
        self.tokens = before - len as i128 * UNITS_PER_BYTE;
        self.last = self.last.max(now);
        self.full_at = self.compute_full_at();
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

    #[test]
    fn a_long_idle_fast_pacer_neither_overflows_nor_exceeds_its_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, u64::MAX, 1000);
        p.on_sent(t0, 1000);
        let later = t0 + Duration::from_secs(86_400 * 365);
        assert_eq!(p.ready_at(later, 1000), later);
        p.on_sent(later, 1000);
        assert!(p.ready_at(later, 1) > later, "the burst was spent");
    }

    #[test]
    fn a_slower_rate_delays_the_instant_the_bucket_is_full() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 1000, 1000);
        p.on_sent(t0, 1000);
        p.set_rate(500);
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(p.ready_at(later, 1000), t0 + Duration::from_secs(2));
        assert_eq!(p.next_ready(1000), t0 + Duration::from_secs(2));
        p.set_rate(2000);
        assert_eq!(p.ready_at(later, 1000), later, "full since t0 + 0.5 s");
    }

    #[test]
    fn waits_round_up_to_the_nanosecond() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 3, 3);
        p.on_sent(t0, 3);
        // One byte at 3 B/s: 333,333,333.3 ns, so 333,333,334.
        assert_eq!(p.ready_at(t0, 1), t0 + Duration::from_nanos(333_333_334));
    }
}
