//! Loss recovery (RFC 9002): which sent packets are in flight, which the
//! peer acknowledged, which are lost (packet and time thresholds), and the
//! probe timeout. Each packet remembers the courier frames it carried, so
//! couriers learn the fate of every frame they wrote; lost *frames* are
//! re-sent by their couriers in new packets, packets are never re-sent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::rtt::RttEstimator;

/// RFC 9002 kPacketThreshold.
const PACKET_THRESHOLD: u64 = 3;
/// RFC 9002 kGranularity.
const GRANULARITY: Duration = Duration::from_millis(1);
/// In-flight packets whose frames a probe timeout re-sends.
const PROBE_RETRANSMITS: usize = 2;
/// Packets remembered at most; older ones count as lost (a peer that never
/// acknowledges cannot make us remember without bound).
const MAX_TRACKED: usize = 8192;

/// A courier frame carried by a sent packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRecord {
    pub slot: u32,
    pub token: u64,
}

#[derive(Debug, Clone)]
struct SentPacket {
    pn: u64,
    sent_at: Instant,
    size: u32,
    ack_eliciting: bool,
    /// Index of its first frame in the frame ring, and how many.
    frames_start: u64,
    frames_len: u32,
    /// Acknowledged or declared lost; kept only until it reaches the front.
    done: bool,
}

/// What one acknowledgement or timeout decided.
#[derive(Debug, Default)]
pub struct Outcome {
    pub newly_acked_bytes: u64,
    pub lost_bytes: u64,
    /// Sent time of the newest lost packet, for congestion recovery.
    pub newest_lost_sent: Option<Instant>,
    /// Sent time of the newest acknowledged packet.
    pub newest_acked_sent: Option<Instant>,
    pub lost_packets: u64,
}

/// Sent-packet bookkeeping for one session.
#[derive(Debug, Default)]
pub struct Recovery {
    packets: VecDeque<SentPacket>,
    frames: VecDeque<FrameRecord>,
    /// Ring index of `frames[0]`.
    frames_base: u64,
    pub bytes_in_flight: u64,
    largest_acked: Option<u64>,
    loss_time: Option<Instant>,
    last_eliciting_sent: Option<Instant>,
    pub pto_count: u32,
    /// Back-off stops growing the probe timeout past this (but never cuts
    /// it below the un-backed-off value): a robot link must keep probing
    /// often enough to tell a burst of loss from a dead peer.
    pub max_pto: Option<Duration>,
    pub packets_lost: u64,
    pub packets_acked: u64,
}

impl Recovery {
    /// Whether another ack-eliciting packet may be tracked. The window also
    /// closes here: a loopback or LAN window of tens of megabytes holds more
    /// packets than are remembered, and one forgotten while in flight
    /// costs its frames a loss the peer never caused.
    pub fn has_room(&self) -> bool {
        self.packets.len() < MAX_TRACKED
    }

    /// Records a sent packet and the frames it carried. If that makes too
    /// many tracked, the oldest are forgotten as lost: their frames go to
    /// `lost`, so that their couriers send them again, and `out` counts
    /// them for congestion control.
    #[allow(clippy::too_many_arguments)]
    pub fn on_sent(
        &mut self,
        pn: u64,
        now: Instant,
        size: usize,
        ack_eliciting: bool,
        frames: &[FrameRecord],
        lost: &mut Vec<FrameRecord>,
        out: &mut Outcome,
    ) {
        let frames_start = self.frames_base + self.frames.len() as u64;
        self.frames.extend(frames.iter().copied());
        self.packets.push_back(SentPacket {
            pn,
            sent_at: now,
            size: size as u32,
            ack_eliciting,
            frames_start,
            frames_len: frames.len() as u32,
            done: !ack_eliciting,
        });
        if ack_eliciting {
            self.bytes_in_flight += size as u64;
            self.last_eliciting_sent = Some(now);
        }
        while self.packets.len() > MAX_TRACKED {
            if let Some(p) = self.packets.front().filter(|p| !p.done).cloned() {
                self.declare_lost(&p, lost, out);
            }
            self.pop_front();
        }
        self.trim();
    }

    fn frames_of(&self, p: &SentPacket) -> impl Iterator<Item = FrameRecord> + '_ {
        let start = (p.frames_start - self.frames_base) as usize;
        self.frames.range(start..start + p.frames_len as usize).copied()
    }

    /// Processes an acknowledgement. `delivered` and `lost` receive the
    /// frames whose fate was decided. Returns an RTT sample when the
    /// largest acknowledged packet is newly acknowledged and ack-eliciting.
    #[allow(clippy::too_many_arguments)]
    pub fn on_ack(
        &mut self,
        now: Instant,
        largest: u64,
        ranges: impl Iterator<Item = (u64, u64)>,
        ack_delay: Duration,
        rtt: &mut RttEstimator,
        delivered: &mut Vec<FrameRecord>,
        lost: &mut Vec<FrameRecord>,
    ) -> Outcome {
        let mut out = Outcome::default();
        let mut largest_newly_acked: Option<(u64, Instant, bool)> = None;
        for (lo, hi) in ranges {
            let start = self.packets.partition_point(|p| p.pn < lo);
            for i in start..self.packets.len() {
                if self.packets[i].pn > hi {
                    break;
                }
                if self.packets[i].done {
                    continue;
                }
                self.packets[i].done = true;
                let p = self.packets[i].clone();
                self.bytes_in_flight = self.bytes_in_flight.saturating_sub(u64::from(p.size));
                out.newly_acked_bytes += u64::from(p.size);
                self.packets_acked += 1;
                delivered.extend(self.frames_of(&p));
                if largest_newly_acked.is_none_or(|(pn, _, _)| p.pn > pn) {
                    largest_newly_acked = Some((p.pn, p.sent_at, p.ack_eliciting));
                }
                out.newest_acked_sent = Some(out.newest_acked_sent.map_or(p.sent_at, |t| t.max(p.sent_at)));
            }
        }
        if self.largest_acked.is_none_or(|l| largest > l) {
            self.largest_acked = Some(largest);
        }
        if let Some((pn, sent, eliciting)) = largest_newly_acked {
            if pn == largest && eliciting {
                rtt.update(now.saturating_duration_since(sent), ack_delay);
            }
            self.pto_count = 0;
        }
        self.detect_lost(now, rtt, lost, &mut out);
        self.trim();
        out
    }

    fn loss_delay(rtt: &RttEstimator) -> Duration {
        let s = rtt.stats();
        let base = s
            .smoothed
            .unwrap_or(Duration::from_millis(333))
            .max(s.latest.unwrap_or_default());
        (base * 9 / 8).max(GRANULARITY)
    }

    /// Declares packets lost by the packet and time thresholds.
    pub fn detect_lost(
        &mut self,
        now: Instant,
        rtt: &RttEstimator,
        lost: &mut Vec<FrameRecord>,
        out: &mut Outcome,
    ) {
        self.loss_time = None;
        let Some(largest) = self.largest_acked else { return };
        let delay = Self::loss_delay(rtt);
        for i in 0..self.packets.len() {
            let p = &self.packets[i];
            if p.pn > largest {
                break;
            }
            if p.done {
                continue;
            }
            let by_count = largest - p.pn >= PACKET_THRESHOLD;
            let by_time = now.saturating_duration_since(p.sent_at) >= delay;
            if by_count || by_time {
                self.packets[i].done = true;
                let p = self.packets[i].clone();
                self.declare_lost(&p, lost, out);
            } else {
                let t = p.sent_at + delay;
                self.loss_time = Some(self.loss_time.map_or(t, |l| l.min(t)));
            }
        }
        self.trim();
    }

    /// Declares the oldest [`PROBE_RETRANSMITS`] ack-eliciting packets in
    /// flight lost, so that the probe carries their frames again (RFC 9002
    /// §6.2.4 lets a probe retransmit). A lost lone packet (a transfer's
    /// offer, the last of a burst) then goes again with the probe instead
    /// of a round trip after it. At most two, unlike an RTO's go-back-N: a
    /// delay spike costs two duplicate packets, not a window.
    fn probe_with_oldest(&mut self, lost: &mut Vec<FrameRecord>, out: &mut Outcome) {
        let mut declared = 0;
        for i in 0..self.packets.len() {
            if declared == PROBE_RETRANSMITS {
                break;
            }
            let p = &self.packets[i];
            if p.done || !p.ack_eliciting || p.frames_len == 0 {
                continue;
            }
            self.packets[i].done = true;
            let p = self.packets[i].clone();
            self.declare_lost(&p, lost, out);
            declared += 1;
        }
        self.trim();
    }

    fn declare_lost(&mut self, p: &SentPacket, lost: &mut Vec<FrameRecord>, out: &mut Outcome) {
        self.bytes_in_flight = self.bytes_in_flight.saturating_sub(u64::from(p.size));
        self.packets_lost += 1;
        out.lost_packets += 1;
        out.lost_bytes += u64::from(p.size);
        out.newest_lost_sent = Some(out.newest_lost_sent.map_or(p.sent_at, |t| t.max(p.sent_at)));
        lost.extend(self.frames_of(p));
    }

    /// Drops finished packets from the front.
    fn trim(&mut self) {
        while self.packets.front().is_some_and(|p| p.done) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(p) = self.packets.pop_front() {
            let end = p.frames_start + u64::from(p.frames_len);
            while self.frames_base < end && !self.frames.is_empty() {
                self.frames.pop_front();
                self.frames_base += 1;
            }
        }
    }

    /// The probe timeout (RFC 9002 §6.2), with exponential back-off.
    pub fn pto(&self, rtt: &RttEstimator, max_ack_delay: Duration) -> Duration {
        let s = rtt.stats();
        let srtt = s.smoothed.unwrap_or(Duration::from_millis(333));
        let var = if s.smoothed.is_some() {
            s.variance
        } else {
            srtt / 2
        };
        let base = srtt + (var * 4).max(GRANULARITY) + max_ack_delay;
        let backed_off = base * (1 << self.pto_count.min(10));
        match self.max_pto {
            Some(cap) => backed_off.min(cap.max(base)),
            None => backed_off,
        }
    }

    /// When recovery next needs the clock: a time-threshold loss, or the
    /// probe timeout while ack-eliciting data is in flight.
    pub fn timer(&self, rtt: &RttEstimator, max_ack_delay: Duration) -> Option<Instant> {
        if let Some(t) = self.loss_time {
            return Some(t);
        }
        if self.bytes_in_flight == 0 {
            return None;
        }
        Some(self.last_eliciting_sent? + self.pto(rtt, max_ack_delay))
    }

    /// When an ack-eliciting packet last went, if ever.
    pub fn last_eliciting_sent(&self) -> Option<Instant> {
        self.last_eliciting_sent
    }

    /// Runs the recovery timer. Returns true if a probe must be sent.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        rtt: &RttEstimator,
        max_ack_delay: Duration,
        lost: &mut Vec<FrameRecord>,
        out: &mut Outcome,
    ) -> bool {
        if self.loss_time.is_some_and(|t| t <= now) {
            self.detect_lost(now, rtt, lost, out);
            return false;
        }
        match self.timer(rtt, max_ack_delay) {
            Some(t) if t <= now => {
                self.pto_count += 1;
                self.probe_with_oldest(lost, out);
                // Restart the PTO clock from now, as a probe goes out.
                self.last_eliciting_sent = Some(now);
                true
            }
            _ => false,
        }
    }

    pub fn in_flight_packets(&self) -> usize {
        self.packets.iter().filter(|p| !p.done).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(slot: u32, token: u64) -> FrameRecord {
        FrameRecord { slot, token }
    }

    /// Sends well under the tracking cap: nothing is forgotten.
    fn send(r: &mut Recovery, pn: u64, now: Instant, size: usize, eliciting: bool, frames: &[FrameRecord]) {
        let (mut lost, mut out) = (Vec::new(), Outcome::default());
        r.on_sent(pn, now, size, eliciting, frames, &mut lost, &mut out);
        assert!(lost.is_empty() && out.lost_packets == 0);
    }

    #[test]
    fn the_window_closes_at_the_tracking_cap_and_a_forgotten_packet_s_frames_are_lost() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        for pn in 0..MAX_TRACKED as u64 {
            assert!(r.has_room(), "room below the cap");
            send(&mut r, pn, t0, 100, true, &[rec(1, pn)]);
        }
        assert!(!r.has_room(), "no room for an eliciting packet at the cap");
        // An ack-only packet still goes (acks ignore the window), and the
        // oldest packet in flight is forgotten: its frame must be re-sent.
        let (mut lost, mut out) = (Vec::new(), Outcome::default());
        r.on_sent(MAX_TRACKED as u64, t0, 50, false, &[], &mut lost, &mut out);
        assert_eq!(
            lost,
            vec![rec(1, 0)],
            "the forgotten packet's frame is reported lost"
        );
        assert_eq!(out.lost_packets, 1);
        assert_eq!(r.bytes_in_flight, 100 * (MAX_TRACKED as u64 - 1));
    }

    #[test]
    fn acked_frames_are_delivered_and_gaps_beyond_the_threshold_are_lost() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        let mut rtt = RttEstimator::default();
        for pn in 0..6 {
            send(&mut r, pn, t0, 100, true, &[rec(1, pn)]);
        }
        assert_eq!(r.bytes_in_flight, 600);
        let (mut d, mut l) = (Vec::new(), Vec::new());
        // Ack 4..=5 only: 0, 1 are ≥ 3 behind 5 and lost; 2, 3 are not yet.
        let now = t0 + Duration::from_millis(10);
        r.on_ack(
            now,
            5,
            [(4, 5)].into_iter(),
            Duration::ZERO,
            &mut rtt,
            &mut d,
            &mut l,
        );
        assert_eq!(d, vec![rec(1, 4), rec(1, 5)]);
        assert_eq!(l, vec![rec(1, 0), rec(1, 1), rec(1, 2)]);
        assert_eq!(rtt.stats().latest, Some(Duration::from_millis(10)));
        // Packet 3 goes by the time threshold (9/8 × 10 ms).
        let t = r.timer(&rtt, Duration::ZERO).unwrap();
        assert_eq!(t, t0 + Duration::from_micros(11_250));
        l.clear();
        let mut out = Outcome::default();
        r.on_timeout(t, &rtt, Duration::ZERO, &mut l, &mut out);
        assert_eq!(l, vec![rec(1, 3)]);
        assert_eq!(r.bytes_in_flight, 0);
        assert_eq!(r.in_flight_packets(), 0);
    }

    #[test]
    fn a_duplicate_ack_decides_nothing_twice() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        let mut rtt = RttEstimator::default();
        send(&mut r, 0, t0, 100, true, &[rec(1, 0)]);
        let (mut d, mut l) = (Vec::new(), Vec::new());
        r.on_ack(
            t0,
            0,
            [(0, 0)].into_iter(),
            Duration::ZERO,
            &mut rtt,
            &mut d,
            &mut l,
        );
        r.on_ack(
            t0,
            0,
            [(0, 0)].into_iter(),
            Duration::ZERO,
            &mut rtt,
            &mut d,
            &mut l,
        );
        assert_eq!(d.len(), 1);
        assert!(l.is_empty());
    }

    #[test]
    fn probe_timeout_backs_off() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        let rtt = RttEstimator::default();
        send(&mut r, 0, t0, 100, true, &[]);
        let first = r.timer(&rtt, Duration::ZERO).unwrap();
        let (mut l, mut out) = (Vec::new(), Outcome::default());
        assert!(r.on_timeout(first, &rtt, Duration::ZERO, &mut l, &mut out));
        let second = r.timer(&rtt, Duration::ZERO).unwrap();
        assert_eq!(second - first, (first - t0) * 2);
        assert!(l.is_empty(), "a probe timeout declares nothing lost");
    }

    #[test]
    fn a_probe_timeout_re_sends_the_frames_of_the_two_oldest_packets() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        let rtt = RttEstimator::default();
        send(&mut r, 0, t0, 100, true, &[]);
        for pn in 1..4 {
            send(&mut r, pn, t0, 100, true, &[rec(1, pn)]);
        }
        let t = r.timer(&rtt, Duration::ZERO).unwrap();
        let (mut l, mut out) = (Vec::new(), Outcome::default());
        assert!(r.on_timeout(t, &rtt, Duration::ZERO, &mut l, &mut out));
        assert_eq!(
            l,
            vec![rec(1, 1), rec(1, 2)],
            "frameless ping skipped, third kept"
        );
        assert_eq!(r.bytes_in_flight, 200);
    }

    #[test]
    fn capped_back_off_keeps_probing_at_least_every_cap() {
        let t0 = Instant::now();
        let mut r = Recovery {
            max_pto: Some(Duration::from_secs(1)),
            ..Recovery::default()
        };
        let rtt = RttEstimator::default();
        send(&mut r, 0, t0, 100, true, &[]);
        let (mut l, mut out) = (Vec::new(), Outcome::default());
        for _ in 0..8 {
            let t = r.timer(&rtt, Duration::ZERO).unwrap();
            r.on_timeout(t, &rtt, Duration::ZERO, &mut l, &mut out);
        }
        assert_eq!(r.pto(&rtt, Duration::ZERO), Duration::from_secs(1));
    }
}
