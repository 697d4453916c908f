//! Which packet numbers we have received, and when an acknowledgement is due.

use std::time::{Duration, Instant};

/// The most disjoint ranges remembered; older ones are forgotten (their
/// packets were long since acknowledged in earlier acks).
const MAX_RANGES: usize = 32;
/// Ack-eliciting packets that make an ack due at once.
const ACK_EVERY: u32 = 2;
/// A packet that follows the previous ack-eliciting one by at least this
/// many ack delays is acknowledged at once (see [`AckTracker::deadline`]).
const SPARSE_GAPS: u32 = 2;

/// Received packet numbers as inclusive ranges, plus ack timing.
#[derive(Debug, Clone, Default)]
pub struct AckTracker {
    /// Ascending, disjoint, non-adjacent.
    ranges: Vec<(u64, u64)>,
    eliciting_pending: u32,
    first_pending_at: Option<Instant>,
    /// A packet arrived out of order (a gap opened or closed): ack at once,
    /// so the sender's loss detection hears of it a round trip sooner.
    out_of_order: bool,
    largest_at: Option<Instant>,
    last_eliciting_at: Option<Instant>,
    /// How long before the first pending packet the previous ack-eliciting
    /// one arrived.
    gap_before_pending: Option<Duration>,
}

impl AckTracker {
    pub fn on_packet(&mut self, pn: u64, now: Instant, ack_eliciting: bool) {
        let in_order = self.ranges.last().is_none_or(|&(_, hi)| pn == hi + 1);
        self.insert(pn);
        if self.ranges.last().is_some_and(|&(_, hi)| hi == pn) {
            self.largest_at = Some(now);
        }
        if ack_eliciting {
            if self.first_pending_at.is_none() {
                self.gap_before_pending = self.last_eliciting_at.map(|t| now.saturating_duration_since(t));
            }
            self.last_eliciting_at = Some(now);
            self.eliciting_pending += 1;
            self.first_pending_at.get_or_insert(now);
            self.out_of_order |= !in_order;
        }
    }

    fn insert(&mut self, pn: u64) {
        let idx = self.ranges.partition_point(|&(_, hi)| hi.saturating_add(1) < pn);
        match self.ranges.get_mut(idx) {
            Some((lo, hi)) if *lo <= pn.saturating_add(1) => {
                *lo = (*lo).min(pn);
                *hi = (*hi).max(pn);
                // Merge with the next range if they now touch.
                if let Some(&(nlo, nhi)) = self.ranges.get(idx + 1) {
                    if self.ranges[idx].1 + 1 >= nlo {
                        self.ranges[idx].1 = nhi.max(self.ranges[idx].1);
                        self.ranges.remove(idx + 1);
                    }
                }
            }
            _ => {
                self.ranges.insert(idx, (pn, pn));
                if self.ranges.len() > MAX_RANGES {
                    self.ranges.remove(0);
                }
            }
        }
    }

    /// When an ack must go out even with nothing else to send: at once after
    /// `ACK_EVERY` ack-eliciting packets, one out of order, or one after a
    /// quiet gap of `SPARSE_GAPS` × `max_delay`; else after `max_delay`.
    ///
    /// Waiting lets one ack cover a second packet, or ride on a reply. A
    /// sparse flow (a 20 Hz publisher) has no second packet coming within
    /// the delay, and acking it later means visiting its session again once
    /// it has left the caches: at 10,000 such sessions that revisit was a
    /// fifth of the server's time. A reply from the application still
    /// rides on the ack when it is written before the next transmit.
    pub fn deadline(&self, max_delay: Duration) -> Option<Instant> {
        let first = self.first_pending_at?;
        let sparse = self
            .gap_before_pending
            .is_some_and(|gap| gap >= max_delay * SPARSE_GAPS);
        Some(
            if self.eliciting_pending >= ACK_EVERY || self.out_of_order || sparse {
                first
            } else {
                first + max_delay
            },
        )
    }

    pub fn has_ranges(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// Highest first, as the ack frame wants them.
    pub fn ranges_desc(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().rev().copied()
    }

    /// How long we have held the largest packet, for the ack delay field.
    pub fn delay(&self, now: Instant) -> Duration {
        self.largest_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }

    pub fn on_ack_sent(&mut self) {
        self.eliciting_pending = 0;
        self.first_pending_at = None;
        self.out_of_order = false;
    }
}

/// Telling the peer how long we hold acknowledgements, when that is not
/// the protocol's default: its probe timeout must allow for it, or it
/// would re-send what we are only waiting to acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckDelayAnnouncement {
    /// Nothing to say (the default delay), or the peer has heard it.
    Done,
    /// Not sent yet: a packet should go.
    Due(Duration),
    /// In every packet from `first_pn` on, until one of them is
    /// acknowledged.
    Sent { delay: Duration, first_pn: u64 },
}

impl AckDelayAnnouncement {
    pub fn new(ours: Duration) -> Self {
        if ours == crate::config::DEFAULT_MAX_ACK_DELAY {
            Self::Done
        } else {
            Self::Due(ours)
        }
    }

    /// Not sent yet: the session should send a packet for it.
    pub fn is_due(&self) -> bool {
        matches!(self, Self::Due(_))
    }

    /// The delay to write into the next packet, if any.
    pub fn to_send(&self) -> Option<Duration> {
        match *self {
            Self::Done => None,
            Self::Due(delay) | Self::Sent { delay, .. } => Some(delay),
        }
    }

    /// Packet `pn` carried it.
    pub fn on_sent(&mut self, pn: u64) {
        if let Self::Due(delay) = *self {
            *self = Self::Sent { delay, first_pn: pn };
        }
    }

    /// The peer acknowledged up to `largest`: every packet from `first_pn`
    /// on carried the announcement, so any of them arriving is enough.
    pub fn on_ack(&mut self, largest: u64) {
        if let Self::Sent { first_pn, .. } = *self {
            if largest >= first_pn {
                *self = Self::Done;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_packet_out_of_order_makes_the_ack_immediate() {
        let now = Instant::now();
        let d = Duration::from_millis(5);
        let mut t = AckTracker::default();
        t.on_packet(1, now, true);
        assert_eq!(t.deadline(d), Some(now + d), "in order: may wait");
        t.on_ack_sent();
        t.on_packet(3, now, true);
        assert_eq!(t.deadline(d), Some(now), "2 is missing: the sender should know");
        t.on_ack_sent();
        t.on_packet(2, now, true);
        assert_eq!(t.deadline(d), Some(now), "the gap closed late");
        t.on_ack_sent();
        t.on_packet(4, now, true);
        assert_eq!(t.deadline(d), Some(now + d));
    }

    #[test]
    fn ack_is_immediate_after_two_eliciting_packets() {
        let now = Instant::now();
        let d = Duration::from_millis(5);
        let mut t = AckTracker::default();
        t.on_packet(1, now, false);
        assert_eq!(t.deadline(d), None);
        t.on_packet(2, now, true);
        assert_eq!(t.deadline(d), Some(now + d));
        t.on_packet(3, now, true);
        assert_eq!(t.deadline(d), Some(now));
        t.on_ack_sent();
        assert_eq!(t.deadline(d), None);
    }

    #[test]
    fn a_packet_after_a_quiet_gap_is_acknowledged_at_once() {
        let t0 = Instant::now();
        let d = Duration::from_millis(5);
        let mut t = AckTracker::default();
        t.on_packet(1, t0, true);
        assert_eq!(t.deadline(d), Some(t0 + d), "no earlier packet: may wait");
        t.on_ack_sent();
        // A 20 Hz publisher: the next update is 50 ms away, beyond any
        // ack the delay could save.
        let t1 = t0 + Duration::from_millis(50);
        t.on_packet(2, t1, true);
        assert_eq!(t.deadline(d), Some(t1), "sparse: ack at once");
        t.on_ack_sent();
        // Closely spaced packets still wait, and a non-eliciting packet in
        // between does not count as traffic.
        let t2 = t1 + Duration::from_millis(3);
        t.on_packet(3, t2 - Duration::from_millis(1), false);
        t.on_packet(4, t2, true);
        assert_eq!(t.deadline(d), Some(t2 + d), "3 ms after the last: may wait");
        t.on_ack_sent();
        let t3 = t2 + 2 * d;
        t.on_packet(5, t3, true);
        assert_eq!(t.deadline(d), Some(t3), "exactly two delays: at once");
    }

    proptest! {
        /// The ranges always equal the set of received numbers (numbers
        /// below 62 can form at most 31 ranges, so none is forgotten).
        #[test]
        fn ranges_match_the_received_set(pns in proptest::collection::vec(0u64..62, 0..150)) {
            let now = Instant::now();
            let mut t = AckTracker::default();
            let mut set = std::collections::BTreeSet::new();
            for pn in pns {
                t.on_packet(pn, now, true);
                set.insert(pn);
            }
            let mut from_ranges = std::collections::BTreeSet::new();
            let ranges: Vec<_> = t.ranges_desc().collect();
            for w in ranges.windows(2) {
                prop_assert!(w[1].1 + 1 < w[0].0, "ranges overlap or touch: {:?}", ranges);
            }
            for (lo, hi) in ranges { from_ranges.extend(lo..=hi); }
            prop_assert_eq!(from_ranges, set);
        }
    }

    #[test]
    fn an_ack_delay_announcement_repeats_until_a_carrier_is_acknowledged() {
        let default = crate::config::DEFAULT_MAX_ACK_DELAY;
        assert_eq!(AckDelayAnnouncement::new(default), AckDelayAnnouncement::Done);
        let ours = Duration::from_millis(100);
        let mut a = AckDelayAnnouncement::new(ours);
        assert_eq!(a, AckDelayAnnouncement::Due(ours));
        a.on_sent(7);
        a.on_sent(8);
        a.on_ack(6);
        assert_eq!(a.to_send(), Some(ours), "an ack of older packets says nothing");
        a.on_ack(8);
        assert_eq!(a, AckDelayAnnouncement::Done);
        assert_eq!(a.to_send(), None);
    }

    #[test]
    fn the_oldest_range_is_forgotten_beyond_the_limit() {
        let now = Instant::now();
        let mut t = AckTracker::default();
        for i in 0..=MAX_RANGES as u64 {
            t.on_packet(i * 2, now, false);
        }
        assert_eq!(t.ranges.len(), MAX_RANGES);
        assert_eq!(t.ranges_desc().last(), Some((2, 2)), "range 0 forgotten");
        assert_eq!(t.ranges_desc().next(), Some((64, 64)));
    }
}
