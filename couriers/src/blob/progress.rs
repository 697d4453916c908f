//! Transfer progress: bytes done of total, a smoothed rate, and an ETA.

use std::time::{Duration, Instant};

/// A snapshot of one transfer's progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    /// Bytes per second, smoothed over about a second.
    pub rate: f64,
    pub eta: Option<Duration>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct Meter {
    started: Instant,
    total: u64,
    done: u64,
    window_start: Instant,
    window_bytes: u64,
    rate: f64,
    last_percent: u64,
}

impl Meter {
    pub fn new(now: Instant, total: u64) -> Self {
        Self {
            started: now,
            total,
            done: 0,
            window_start: now,
            window_bytes: 0,
            rate: 0.0,
            last_percent: 0,
        }
    }

    /// Records progress; returns true when another whole percent is done
    /// (time to report).
    pub fn advance(&mut self, now: Instant, done: u64) -> bool {
        let delta = done.saturating_sub(self.done);
        self.done = done.max(self.done);
        self.window_bytes += delta;
        let dt = now.saturating_duration_since(self.window_start).as_secs_f64();
        if dt >= 0.25 {
            let sample = self.window_bytes as f64 / dt;
            self.rate = if self.rate == 0.0 {
                sample
            } else {
                0.75 * self.rate + 0.25 * sample
            };
            self.window_start = now;
            self.window_bytes = 0;
        }
        let percent = self.done * 100 / self.total.max(1);
        let report = percent > self.last_percent;
        self.last_percent = percent;
        report
    }

    pub fn snapshot(&self, now: Instant) -> Progress {
        let elapsed = now.saturating_duration_since(self.started);
        let rate = if self.rate > 0.0 {
            self.rate
        } else if elapsed.as_secs_f64() > 0.0 {
            self.done as f64 / elapsed.as_secs_f64()
        } else {
            0.0
        };
        let left = self.total.saturating_sub(self.done);
        Progress {
            done: self.done,
            total: self.total,
            rate,
            eta: (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate)),
            elapsed,
        }
    }
}
