//! The seed's honeymoon / backoff / celibacy schedule for probing inactive
//! associates. Pure functions of time, so the rules are testable alone.

use std::time::{Duration, Instant};

use crate::config::EndpointConfig;

/// Per-associate liveness state.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    /// The application wants this peer connected.
    pub wanted: bool,
    /// Last authenticated sign of life.
    pub last_activity: Option<Instant>,
    /// No probing before this instant (after an explicit close).
    pub celibate_until: Option<Instant>,
    /// When the last attempt began or ended, whichever is later.
    pub last_probe: Option<Instant>,
}

impl Liveness {
    pub fn is_celibate(&self, now: Instant) -> bool {
        self.celibate_until.is_some_and(|t| now < t)
    }
}

/// How long to wait between probes of an inactive peer.
///
/// * In honeymoon: `honeymoon_interval`.
/// * Otherwise: `probe_min_interval × 2^(age / probe_doubling)`, capped at
///   `probe_max_interval`, where `age` is the time since the peer's last
///   activity (or since `epoch` if it was never active). The most recently
///   active peer's age is capped at `last_active_age_cap`.
pub fn probe_interval(
    cfg: &EndpointConfig,
    now: Instant,
    in_honeymoon: bool,
    last_activity: Option<Instant>,
    epoch: Instant,
    is_last_active: bool,
) -> Duration {
    if in_honeymoon {
        return cfg.honeymoon_interval;
    }
    let mut age = now.saturating_duration_since(last_activity.unwrap_or(epoch));
    if is_last_active {
        age = age.min(cfg.last_active_age_cap);
    }
    let doublings = age.as_secs_f64() / cfg.probe_doubling.as_secs_f64().max(1e-9);
    let factor = 2f64.powf(doublings.min(60.0));
    let secs = (cfg.probe_min_interval.as_secs_f64() * factor).min(cfg.probe_max_interval.as_secs_f64());
    Duration::from_secs_f64(secs).max(cfg.probe_min_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_decays_exponentially_and_is_capped() {
        let cfg = EndpointConfig::default();
        let t0 = Instant::now();
        let at = |age_s: u64, last: bool| {
            probe_interval(&cfg, t0 + Duration::from_secs(age_s), false, Some(t0), t0, last)
        };
        assert_eq!(at(0, false), Duration::from_secs(1));
        assert_eq!(at(600, false), Duration::from_secs(2));
        assert_eq!(at(3600, false), Duration::from_secs(64));
        assert_eq!(at(100_000, false), cfg.probe_max_interval);
        // The last active node never counts as older than one hour.
        assert_eq!(at(100_000, true), Duration::from_secs(64));
    }

    #[test]
    fn honeymoon_overrides_decay() {
        let cfg = EndpointConfig::default();
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10_000);
        assert_eq!(
            probe_interval(&cfg, later, true, Some(t0), t0, false),
            cfg.honeymoon_interval
        );
    }
}
