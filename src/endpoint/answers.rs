//! The endpoint-wide pace of answer signatures.
//!
//! Each SYN-ACK costs an RSA signature, over a millisecond of the loop's
//! core. A fleet reconnecting at once (a server restart, an access point
//! back up) must neither fill the loop with that work nor be turned away
//! for it: answers beyond the pace get a slot in time, first come first
//! served, and are made then. A generic cell rate algorithm: each answer
//! moves the theoretical arrival time on by one interval, and an answer may
//! go when that time is at most a burst's worth ahead of now.

use std::time::{Duration, Instant};

/// Where an answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerSlot {
    Now,
    /// Later, at this instant (reserved once [`AnswerPacer::reserve`]d).
    At(Instant),
    /// Further ahead than anyone would wait: the initiator re-sends.
    Full,
}

#[derive(Debug, Clone)]
pub(crate) struct AnswerPacer {
    interval: Duration,
    /// How far ahead of now the theoretical arrival time may run while
    /// answers still go at once: a burst, less one.
    tolerance: Duration,
    /// Slots further out than this are refused.
    max_wait: Duration,
    tat: Instant,
}

impl AnswerPacer {
    /// `rate` answers a second (non-zero), `burst` of them at once (at
    /// least one), none queued further than `max_wait` ahead.
    pub fn new(now: Instant, rate: u32, burst: u32, max_wait: Duration) -> Self {
        let interval = Duration::from_secs(1) / rate.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            max_wait,
            tat: now,
        }
    }

    /// Where an answer would go now, reserving nothing.
    pub fn peek(&self, now: Instant) -> AnswerSlot {
        let allowed_at = self.tat.checked_sub(self.tolerance).unwrap_or(now);
        if allowed_at <= now {
            AnswerSlot::Now
        } else if allowed_at - now > self.max_wait {
            AnswerSlot::Full
        } else {
            AnswerSlot::At(allowed_at)
        }
    }

    /// Takes the next place: now, or a slot kept for this answer.
    pub fn reserve(&mut self, now: Instant) -> AnswerSlot {
        let slot = self.peek(now);
        if slot != AnswerSlot::Full {
            self.tat = self.tat.max(now) + self.interval;
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_goes_at_once_and_the_rest_get_slots_an_interval_apart() {
        let t0 = Instant::now();
        // 100 a second (10 ms apart), 3 at once, up to 50 ms of queue.
        let mut p = AnswerPacer::new(t0, 100, 3, 50 * MS);
        for _ in 0..3 {
            assert_eq!(p.reserve(t0), AnswerSlot::Now);
        }
        assert_eq!(p.reserve(t0), AnswerSlot::At(t0 + 10 * MS));
        assert_eq!(p.reserve(t0), AnswerSlot::At(t0 + 20 * MS));
        // Peeking reserves nothing.
        assert_eq!(p.peek(t0), AnswerSlot::At(t0 + 30 * MS));
        assert_eq!(p.peek(t0), AnswerSlot::At(t0 + 30 * MS));
        for k in 3..=5 {
            assert_eq!(p.reserve(t0), AnswerSlot::At(t0 + k * 10 * MS));
        }
        assert_eq!(p.reserve(t0), AnswerSlot::Full);
        assert_eq!(p.peek(t0 + 10 * MS), AnswerSlot::At(t0 + 60 * MS));
    }

    #[test]
    fn an_idle_pacer_refills_to_its_burst_and_no_further() {
        let t0 = Instant::now();
        let mut p = AnswerPacer::new(t0, 100, 2, 50 * MS);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.reserve(later), AnswerSlot::Now);
        assert_eq!(p.reserve(later), AnswerSlot::Now);
        assert_eq!(p.reserve(later), AnswerSlot::At(later + 10 * MS));
    }
}
