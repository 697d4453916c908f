//! Which couriers go into the next packet, and in what order.
//!
//! Couriers are ranked by `(priority + 1) × (lateness + 1 ms)`. Lateness is
//! how long a courier has been overdue, so a waiting courier's score keeps
//! growing: a priority-0 courier overdue by 256 ms outranks a priority-255
//! courier that just fell due, and nothing starves.

use std::time::{Duration, Instant};

/// The lateness every due courier starts with, so priority matters even at
/// the instant a courier falls due.
pub const AGING_BASE: Duration = Duration::from_millis(1);

/// One courier that is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the courier slot in the endpoint.
    pub slot: usize,
    pub priority: u8,
    pub due: Instant,
    pub max_payload: usize,
    /// The least room worth offering (≤ `max_payload`).
    pub min_payload: usize,
}

impl Candidate {
    pub fn score(&self, now: Instant) -> u128 {
        let lateness = now.saturating_duration_since(self.due) + AGING_BASE;
        (u128::from(self.priority) + 1) * lateness.as_micros()
    }
}

/// Sorts candidates best first; ties go to the lower slot, so the order is
/// deterministic.
pub fn rank(candidates: &mut [Candidate], now: Instant) {
    candidates.sort_unstable_by(|a, b| b.score(now).cmp(&a.score(now)).then_with(|| a.slot.cmp(&b.slot)));
}

/// Whether a candidate should get this opportunity: its whole payload fits,
/// or the packet is still empty (so an oversized courier is never stuck).
pub fn fits(candidate: &Candidate, space: usize, packet_has_courier_data: bool) -> bool {
    space >= candidate.min_payload.max(1) || (!packet_has_courier_data && space > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(slot: usize, priority: u8, due: Instant) -> Candidate {
        Candidate {
            slot,
            priority,
            due,
            max_payload: 10,
            min_payload: 10,
        }
    }

    #[test]
    fn higher_priority_goes_first_when_equally_late() {
        let now = Instant::now();
        let mut c = [cand(0, 10, now), cand(1, 200, now), cand(2, 100, now)];
        rank(&mut c, now);
        assert_eq!(c.map(|c| c.slot), [1, 2, 0]);
    }

    #[test]
    fn long_waiting_low_priority_overtakes_fresh_high_priority() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_millis(300);
        let mut c = [cand(0, 255, now), cand(1, 0, t0)];
        rank(&mut c, now);
        assert_eq!(c[0].slot, 1, "a courier overdue by 300 ms must not starve");
    }

    #[test]
    fn oversized_courier_gets_an_empty_packet() {
        let c = Candidate {
            slot: 0,
            priority: 1,
            due: Instant::now(),
            max_payload: 4000,
            min_payload: 4000,
        };
        assert!(!fits(&c, 400, true));
        assert!(fits(&c, 400, false));
    }
}
