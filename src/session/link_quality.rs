//! The seed's two-mode link quality signal: *good* or *bad* by an RTT
//! threshold, with a penalty that keeps a flapping link in bad mode longer.
//!
//! * Good → bad when the RTT exceeds the threshold. If the good spell was
//!   shorter than `spell`, the penalty doubles (up to `max_penalty`).
//! * Bad → good after the RTT has stayed under the threshold for the penalty.
//! * Every `spell` of unbroken good mode halves the penalty (down to
//!   `min_penalty`).

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkQualityConfig {
    pub rtt_threshold: Duration,
    pub min_penalty: Duration,
    pub max_penalty: Duration,
    pub spell: Duration,
}

impl Default for LinkQualityConfig {
    fn default() -> Self {
        Self {
            rtt_threshold: Duration::from_millis(250),
            min_penalty: Duration::from_secs(1),
            max_penalty: Duration::from_secs(60),
            spell: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LinkQuality {
    pub good: bool,
    pub penalty: Duration,
    /// Start of the current good spell, or of the current run of good RTTs
    /// while in bad mode.
    since: Option<Instant>,
    last_halving: Option<Instant>,
}

impl LinkQuality {
    pub fn new(cfg: &LinkQualityConfig) -> Self {
        Self {
            good: true,
            penalty: cfg.min_penalty,
            since: None,
            last_halving: None,
        }
    }

    /// Feeds one RTT sample; returns `Some(good)` when the mode changes.
    pub fn on_rtt(&mut self, cfg: &LinkQualityConfig, now: Instant, rtt: Duration) -> Option<bool> {
        let ok = rtt <= cfg.rtt_threshold;
        if self.good {
            let since = *self.since.get_or_insert(now);
            if !ok {
                if now.saturating_duration_since(since) < cfg.spell {
                    self.penalty = (self.penalty * 2).min(cfg.max_penalty);
                }
                self.good = false;
                self.since = None;
                return Some(false);
            }
            let from = self.last_halving.unwrap_or(since).max(since);
            if now.saturating_duration_since(from) >= cfg.spell {
                self.penalty = (self.penalty / 2).max(cfg.min_penalty);
                self.last_halving = Some(now);
            }
            None
        } else if ok {
            let since = *self.since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.penalty {
                self.good = true;
                self.since = Some(now);
                self.last_halving = Some(now);
                return Some(true);
            }
            None
        } else {
            self.since = None;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flapping_doubles_the_penalty_and_long_good_spells_halve_it() {
        let cfg = LinkQualityConfig::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let (good, bad) = (Duration::from_millis(20), Duration::from_millis(400));
        let mut q = LinkQuality::new(&cfg);
        assert_eq!(q.on_rtt(&cfg, at(0), good), None);
        // Bad after a 1 s good spell: penalty doubles to 2 s.
        assert_eq!(q.on_rtt(&cfg, at(1000), bad), Some(false));
        assert_eq!(q.penalty, Duration::from_secs(2));
        // Good RTTs must last the whole penalty before mode flips back.
        assert_eq!(q.on_rtt(&cfg, at(1100), good), None);
        assert_eq!(q.on_rtt(&cfg, at(2000), good), None);
        assert_eq!(q.on_rtt(&cfg, at(3100), good), Some(true));
        // Ten seconds of good mode halve the penalty again.
        assert_eq!(q.on_rtt(&cfg, at(13_200), good), None);
        assert_eq!(q.penalty, Duration::from_secs(1));
        // A bad sample after a long good spell does not double it.
        assert_eq!(q.on_rtt(&cfg, at(30_000), bad), Some(false));
        assert_eq!(q.penalty, Duration::from_secs(1));
    }
}
