//! NewReno congestion control (RFC 9002 §7), which sets the pacing rate.
//!
//! Why NewReno and not Cubic: robot links are short-RTT LANs and Wi-Fi,
//! where Cubic's gain (fast regrowth on high bandwidth-delay paths) does not
//! apply, while NewReno's behaviour is simple to predict and to test. Most
//! sessions are application-limited (state at 20-100 Hz), and the window
//! does not grow while it is not the limit.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct NewReno {
    max_datagram: u64,
    pub window: u64,
    ssthresh: u64,
    recovery_start: Option<Instant>,
    /// Bytes acknowledged towards the next congestion-avoidance increase.
    acked_since_increase: u64,
    pub congestion_events: u64,
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
        }
    }

    fn min_window(&self) -> u64 {
        2 * self.max_datagram
    }

    /// Acknowledged bytes grow the window, unless they were sent during the
    /// current recovery period, or the sender was not using the window.
    pub fn on_ack(&mut self, acked_bytes: u64, newest_sent: Instant, was_window_limited: bool) {
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

    /// A loss of a packet sent after the current recovery began halves the
    /// window, once per round trip.
    pub fn on_loss(&mut self, now: Instant, newest_lost_sent: Instant) {
        if self.recovery_start.is_some_and(|r| newest_lost_sent <= r) {
            return;
        }
        self.recovery_start = Some(now);
        self.congestion_events += 1;
        self.window = (self.window / 2).max(self.min_window());
        self.ssthresh = self.window;
        self.acked_since_increase = 0;
    }

    /// The pacing rate in bytes per second: 1.25 windows per smoothed RTT.
    pub fn pacing_rate(&self, srtt: Option<Duration>) -> Option<u64> {
        let srtt = srtt?.max(Duration::from_micros(100));
        Some((self.window as f64 * 1.25 / srtt.as_secs_f64()) as u64)
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
        cc.on_loss(t(10), t(5));
        assert_eq!(cc.window, 7_500);
        cc.on_loss(t(11), t(6));
        assert_eq!(cc.window, 7_500, "one reduction per recovery period");
        cc.on_ack(7_500, t(20), true);
        assert_eq!(cc.window, 8_500, "one datagram per window acknowledged");
    }

    #[test]
    fn window_never_falls_below_two_datagrams() {
        let t0 = Instant::now();
        let mut cc = NewReno::new(1000);
        for i in 0..20u64 {
            cc.on_loss(
                t0 + Duration::from_millis(i + 1),
                t0 + Duration::from_millis(i + 1),
            );
        }
        assert_eq!(cc.window, 2000);
    }
}
