//! One direction of an emulated link: what `tc netem` would do to it, in
//! user space (this kernel has no `sch_netem`). Loss, duplication,
//! corruption, a rate with a bounded queue, delay with jitter, and
//! reordering, applied to UDP-in-IPv4 frames; ARP and the rest pass at once
//! so that address resolution does not become the test.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::frame::UdpFrame;

#[derive(Debug, Clone, Default)]
pub struct Impairments {
    pub delay: Duration,
    /// Each frame's delay is drawn uniformly from delay ± jitter, so frames
    /// overtake each other when jitter exceeds their spacing.
    pub jitter: Duration,
    /// Shares, 0..=1.
    pub loss: f64,
    pub duplicate: f64,
    pub corrupt: f64,
    /// Share of frames sent at once, skipping the delay (netem's reorder).
    pub reorder: f64,
    /// Bits per second; 0 is unlimited.
    pub rate: u64,
    /// Bytes that may wait for the rate; more are dropped (tail drop).
    pub queue_limit: usize,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub frames_in: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    pub reordered: u64,
    pub overflowed: u64,
    pub frames_out: u64,
}

/// Frames waiting out their delay: release time, arrival order, bytes.
type Waiting = Reverse<(Instant, u64, Vec<u8>)>;

pub struct Link {
    cfg: Impairments,
    rng: StdRng,
    queue: BinaryHeap<Waiting>,
    /// When the rate-limited transmitter is next free.
    wire_free_at: Instant,
    order: u64,
    pub counters: Counters,
}

impl Link {
    pub fn new(cfg: Impairments, seed: u64, now: Instant) -> Self {
        Self {
            cfg,
            rng: StdRng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            wire_free_at: now,
            order: 0,
            counters: Counters::default(),
        }
    }

    /// Takes a frame that arrived at `now`.
    pub fn arrive(&mut self, now: Instant, frame: &[u8]) {
        self.counters.frames_in += 1;
        let Some(udp) = UdpFrame::parse(frame) else {
            self.push(now, frame.to_vec());
            return;
        };
        if self.rng.gen_bool(self.cfg.loss) {
            self.counters.lost += 1;
            return;
        }
        let copies = if self.rng.gen_bool(self.cfg.duplicate) {
            self.counters.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut bytes = frame.to_vec();
            let payload = udp.payload();
            if !payload.is_empty() && self.rng.gen_bool(self.cfg.corrupt) {
                self.counters.corrupted += 1;
                let at = self.rng.gen_range(payload);
                bytes[at] ^= 1 << self.rng.gen_range(0..8);
                udp.clear_checksum(&mut bytes);
            } else {
                udp.fill_checksum(&mut bytes);
            }
            let Some(on_wire) = self.serialise(now, bytes.len()) else {
                self.counters.overflowed += 1;
                continue;
            };
            let release = if self.rng.gen_bool(self.cfg.reorder) {
                self.counters.reordered += 1;
                on_wire
            } else {
                on_wire + self.draw_delay()
            };
            self.push(release, bytes);
        }
    }

    /// When a frame of `len` bytes has left the rate-limited transmitter,
    /// or `None` if the queue before it is full.
    fn serialise(&mut self, now: Instant, len: usize) -> Option<Instant> {
        if self.cfg.rate == 0 {
            return Some(now);
        }
        let start = self.wire_free_at.max(now);
        let backlog = start.duration_since(now).as_secs_f64() * self.cfg.rate as f64 / 8.0;
        if backlog > self.cfg.queue_limit as f64 {
            return None;
        }
        self.wire_free_at = start + Duration::from_secs_f64(len as f64 * 8.0 / self.cfg.rate as f64);
        Some(self.wire_free_at)
    }

    fn draw_delay(&mut self) -> Duration {
        let j = self.cfg.jitter.as_secs_f64();
        let d = self.cfg.delay.as_secs_f64() + if j > 0.0 { self.rng.gen_range(-j..j) } else { 0.0 };
        Duration::from_secs_f64(d.max(0.0))
    }

    fn push(&mut self, release: Instant, bytes: Vec<u8>) {
        self.order += 1;
        self.queue.push(Reverse((release, self.order, bytes)));
    }

    /// The next frame due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_release()? > now {
            return None;
        }
        let Reverse((_, _, bytes)) = self.queue.pop()?;
        self.counters.frames_out += 1;
        Some(bytes)
    }

    pub fn next_release(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::tests::udp_frame;

    fn drain(link: &mut Link, until: Instant) -> Vec<(Instant, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(t) = link.next_release().filter(|t| *t <= until) {
            out.push((t, link.pop_due(t).unwrap()));
        }
        out
    }

    #[test]
    fn frames_wait_out_the_delay_and_the_rate_spaces_them() {
        let t0 = Instant::now();
        let cfg = Impairments {
            delay: Duration::from_millis(50),
            rate: 8_000_000,
            queue_limit: 100_000,
            ..Impairments::default()
        };
        let mut link = Link::new(cfg, 1, t0);
        let f = udp_frame(&[7u8; 958]);
        link.arrive(t0, &f);
        link.arrive(t0, &f);
        assert_eq!(link.pop_due(t0 + Duration::from_millis(50)), None);
        let out = drain(&mut link, t0 + Duration::from_secs(1));
        // 1000-byte frames at 1 MB/s: one millisecond each on the wire.
        assert_eq!(out[0].0, t0 + Duration::from_millis(51));
        assert_eq!(out[1].0, t0 + Duration::from_millis(52));
    }

    #[test]
    fn loss_duplication_and_corruption_happen_at_their_rates() {
        let t0 = Instant::now();
        let cfg = Impairments {
            loss: 0.1,
            duplicate: 0.05,
            corrupt: 0.02,
            ..Impairments::default()
        };
        let mut link = Link::new(cfg, 2, t0);
        let f = udp_frame(&[1u8; 100]);
        for _ in 0..20_000 {
            link.arrive(t0, &f);
        }
        let c = link.counters;
        let near = |n: u64, share: f64| (n as f64 - 20_000.0 * share).abs() < 20_000.0 * share * 0.2;
        assert!(near(c.lost, 0.1), "{c:?}");
        assert!(near(c.duplicated, 0.9 * 0.05), "{c:?}");
        let out = drain(&mut link, t0);
        assert_eq!(out.len() as u64, 20_000 - c.lost + c.duplicated);
        let damaged = out.iter().filter(|(_, b)| b[42..] != f[42..]).count() as u64;
        assert_eq!(damaged, c.corrupted);
    }

    #[test]
    fn jitter_reorders_and_arp_passes_at_once() {
        let t0 = Instant::now();
        let cfg = Impairments {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            loss: 1.0,
            ..Impairments::default()
        };
        let mut link = Link::new(cfg.clone(), 3, t0);
        let mut arp = udp_frame(&[0u8; 28]);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        link.arrive(t0, &arp);
        assert_eq!(link.pop_due(t0), Some(arp), "ARP is neither lost nor delayed");
        let mut link = Link::new(Impairments { loss: 0.0, ..cfg }, 3, t0);
        for i in 0..100u8 {
            link.arrive(t0 + Duration::from_millis(u64::from(i)), &udp_frame(&[i]));
        }
        let order: Vec<u8> = drain(&mut link, t0 + Duration::from_secs(1))
            .iter()
            .map(|(_, b)| b[42])
            .collect();
        assert_eq!(order.len(), 100);
        assert!(order.windows(2).any(|w| w[0] > w[1]), "jitter reorders");
    }
}
