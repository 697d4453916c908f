//! NewReno congestion control (RFC 9002 §7), which sets the pacing rate,
//! with one change for radio links: random loss is not congestion.
//!
//! Why NewReno and not Cubic: robot links are short-RTT LANs and Wi-Fi,
//! where Cubic's gain (fast regrowth on high bandwidth-delay paths) does not
//! apply, while NewReno's behaviour is simple to predict and to test. Most
//! sessions are application-limited (state at 20-100 Hz), and the window
//! does not grow while it is not the limit.
//!
//! Plain NewReno halves its window on every loss, so a Wi-Fi link that
//! loses 1 % of frames to interference runs at a fraction of its capacity.
//! Here a loss only counts as congestion when the path shows it: the RTT has
//! risen above its minimum (a queue is building), or losses are heavy
//! (over [`HEAVY_LOSS`] smoothed, or [`BURST_LOSS`] of one window at once).
//! A loss with neither is random: the frame is re-sent and the window stays.
//!
//! Why 20 %: Wi-Fi at the edge of range loses 10 % of frames and more with
//! a flat RTT; halving there would run such a link at a few hundred KB/s.
//! A policer that drops without queueing still caps the overshoot at
//! 1 / (1 - 0.2) = 1.25 times its rate (the design point of BBR, too).

use std::time::{Duration, Instant};

use crate::stats::RttStats;

/// A loss rate, smoothed over windows, that counts as congestion whatever
/// the RTT.
pub const HEAVY_LOSS: f64 = 0.2;
/// A share of one window lost (at least three packets) that counts as
/// congestion at once. The share is of the whole window, not of what has
/// been decided so far: losses are declared in batches, and three early
/// ones in a fresh count would otherwise look like a burst.
pub const BURST_LOSS: f64 = 0.25;

/// Whether the RTT shows a queue: smoothed above min by a quarter of min,
/// and by at least 2 ms (loopback and LAN jitter is below that).
pub fn queue_building(rtt: &RttStats) -> bool {
    match (rtt.smoothed, rtt.min) {
        (Some(s), Some(m)) => s > m + (m / 4).max(Duration::from_millis(2)),
        _ => true,
    }
}

#[derive(Debug, Clone)]
pub struct NewReno {
    max_datagram: u64,
    pub window: u64,
    ssthresh: u64,
    recovery_start: Option<Instant>,
    /// Bytes acknowledged towards the next congestion-avoidance increase.
    acked_since_increase: u64,
    pub congestion_events: u64,
    /// Losses not taken as congestion.
    pub random_losses: u64,
    /// Bytes lost and acknowledged since the last loss decision, for the
    /// heavy-loss test.
    window_lost: u64,
    window_acked: u64,
    /// Loss rate smoothed over windows (weight 1/4 per window).
    pub loss_rate: f64,
}

impl NewReno {
    pub fn new(max_datagram: usize) -> Self {
        let mds = max_datagram as u64;
        Self {
            max_datagram: mds,
            window: (10 * mds).min(14_720.max(2 * mds)),
            ssthresh: u64::MAX,
            recovery_start: None,
            acked_since_increase: 0,
            congestion_events: 0,
            random_losses: 0,
            window_lost: 0,
            window_acked: 0,
            loss_rate: 0.0,
        }
    }

    fn min_window(&self) -> u64 {
        2 * self.max_datagram
    }

    /// Acknowledged bytes grow the window, unless they were sent during the
    /// current recovery period, or the sender was not using the window.
    pub fn on_ack(&mut self, acked_bytes: u64, newest_sent: Instant, was_window_limited: bool) {
        self.window_acked += acked_bytes;
        self.close_loss_window();
        if self.recovery_start.is_some_and(|r| newest_sent <= r) || !was_window_limited {
            return;
        }
        if self.window < self.ssthresh {
            self.window += acked_bytes;
        } else {
            self.acked_since_increase += acked_bytes;
            if self.acked_since_increase >= self.window {
                self.acked_since_increase -= self.window;
                self.window += self.max_datagram;
            }
        }
    }

    /// Whether `in_flight` bytes use the window, so acks may grow it. In
    /// slow start, half the window counts (as Linux does): the pacer
    /// spreads a window over the round trip, so in flight trails it while
    /// the sender is still short of the window, not of data.
    pub fn is_window_limited(&self, in_flight: u64) -> bool {
        if self.window < self.ssthresh {
            2 * in_flight >= self.window
        } else {
            in_flight + self.max_datagram > self.window
        }
    }

    /// Losses: random ones are counted and ignored; congestion (see the
    /// module docs) halves the window, once per round trip.
    pub fn on_loss(&mut self, now: Instant, newest_lost_sent: Instant, lost_bytes: u64, rtt: &RttStats) {
        self.window_lost += lost_bytes;
        let seen = (self.window_lost + self.window_acked).max(self.window);
        let burst =
            self.window_lost >= 3 * self.max_datagram && self.window_lost as f64 > BURST_LOSS * seen as f64;
        let heavy = burst || self.loss_rate > HEAVY_LOSS;
        self.close_loss_window();
        if !heavy && !queue_building(rtt) {
            self.random_losses += 1;
            return;
        }
        self.on_congestion(now, newest_lost_sent);
    }

    /// Folds a window's worth of losses and acks into the smoothed rate.
    fn close_loss_window(&mut self) {
        let seen = self.window_lost + self.window_acked;
        if seen >= self.window {
            let sample = self.window_lost as f64 / seen as f64;
            self.loss_rate = 0.75 * self.loss_rate + 0.25 * sample;
            self.window_lost = 0;
            self.window_acked = 0;
        }
    }

    /// A congestion signal: halve the window, once per round trip.
    pub fn on_congestion(&mut self, now: Instant, newest_lost_sent: Instant) {
        if self.recovery_start.is_some_and(|r| newest_lost_sent <= r) {
            return;
        }
        self.recovery_start = Some(now);
        self.congestion_events += 1;
        self.window = (self.window / 2).max(self.min_window());
        self.ssthresh = self.window;
        self.acked_since_increase = 0;
    }

    /// The pacing rate in bytes per second: two windows per smoothed RTT
    /// in slow start (the window doubles each round trip, and a pacer at
    /// less would cap the doubling), 1.25 in congestion avoidance (as
    /// Linux TCP paces).
    pub fn pacing_rate(&self, srtt: Option<Duration>) -> Option<u64> {
        let srtt = srtt?.max(Duration::from_micros(100));
        let gain = if self.window < self.ssthresh { 2.0 } else { 1.25 };
        Some((self.window as f64 * gain / srtt.as_secs_f64()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_then_halving_once_per_recovery_then_linear_growth() {
        let t0 = Instant::now();
        let t = |ms| t0 + Duration::from_millis(ms);
        let mut cc = NewReno::new(1000);
        assert_eq!(cc.window, 10_000);
        cc.on_ack(5000, t(1), true);
        assert_eq!(cc.window, 15_000);
        cc.on_ack(5000, t(1), false);
        assert_eq!(cc.window, 15_000, "no growth while application-limited");
        cc.on_congestion(t(10), t(5));
        assert_eq!(cc.window, 7_500);
        cc.on_congestion(t(11), t(6));
        assert_eq!(cc.window, 7_500, "one reduction per recovery period");
        cc.on_ack(7_500, t(20), true);
        assert_eq!(cc.window, 8_500, "one datagram per window acknowledged");
    }

    #[test]
    fn random_loss_with_a_flat_rtt_keeps_the_window_but_a_queue_or_heavy_loss_cuts_it() {
        let t0 = Instant::now();
        let flat = RttStats {
            smoothed: Some(Duration::from_millis(20)),
            min: Some(Duration::from_millis(20)),
            ..RttStats::default()
        };
        let queued = RttStats {
            smoothed: Some(Duration::from_millis(40)),
            ..flat
        };
        let mut cc = NewReno::new(1000);
        cc.on_ack(20_000, t0, true);
        let w = cc.window;
        cc.on_loss(t0 + Duration::from_millis(1), t0, 1000, &flat);
        assert_eq!(cc.window, w, "one loss in 21 packets, RTT at its minimum: random");
        assert_eq!(cc.random_losses, 1);
        cc.on_loss(
            t0 + Duration::from_millis(2),
            t0 + Duration::from_millis(1),
            1000,
            &queued,
        );
        assert_eq!(cc.window, w / 2, "RTT doubled: a queue is building");
        let mut cc = NewReno::new(1000);
        cc.on_ack(5_000, t0, true);
        cc.on_loss(t0 + Duration::from_millis(1), t0, 4_000, &flat);
        assert!(
            cc.window < 15_000,
            "almost half a window lost at once: congestion whatever the RTT"
        );
        // A steady 10 % loss rate, in small doses: random.
        let mut cc = NewReno::new(1000);
        let mut t = t0;
        for _ in 0..40 {
            t += Duration::from_millis(1);
            cc.on_ack(9_000, t, false);
            cc.on_loss(t, t, 1_000, &flat);
        }
        assert_eq!(cc.congestion_events, 0, "{}", cc.loss_rate);
        // A steady 33 % loss rate, in small doses: congestion once smoothed.
        let mut cc = NewReno::new(1000);
        let mut t = t0;
        for _ in 0..40 {
            t += Duration::from_millis(1);
            cc.on_ack(2_000, t, false);
            cc.on_loss(t, t, 1_000, &flat);
        }
        assert!(
            cc.loss_rate > HEAVY_LOSS && cc.congestion_events > 0,
            "{}",
            cc.loss_rate
        );
    }

    #[test]
    fn a_paced_sender_with_half_the_window_in_flight_still_grows_it_in_slow_start() {
        let t0 = Instant::now();
        let mut cc = NewReno::new(1000);
        assert!(
            cc.is_window_limited(5_000),
            "slow start: half the window in flight"
        );
        assert!(
            !cc.is_window_limited(4_000),
            "less than half: application-limited"
        );
        cc.on_congestion(t0, t0);
        assert_eq!(cc.window, 5_000);
        assert!(
            !cc.is_window_limited(3_000),
            "avoidance: only a full window counts"
        );
        assert!(cc.is_window_limited(4_500));
        assert_eq!(cc.pacing_rate(Some(Duration::from_secs(1))), Some(6_250));
    }

    #[test]
    fn window_never_falls_below_two_datagrams() {
        let t0 = Instant::now();
        let mut cc = NewReno::new(1000);
        for i in 0..20u64 {
            cc.on_congestion(
                t0 + Duration::from_millis(i + 1),
                t0 + Duration::from_millis(i + 1),
            );
        }
        assert_eq!(cc.window, 2000);
    }
}
