//! One direction of a simulated link: what it does to each datagram.

use std::time::Duration;

use rand::Rng;

/// Two-state (Gilbert-Elliott) burst loss.
///
/// The state steps once per datagram and once per [`BURST_SLOT`] of time
/// between datagrams, so a burst lasts a few datagrams on a busy link and a
/// few slots on a quiet one (a radio fade ends in time, however little is
/// sent through it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstLoss {
    /// Chance per step of moving from the good to the bad state.
    pub enter_bad: f64,
    /// Chance per step of moving from the bad back to the good state.
    pub leave_bad: f64,
    /// Loss rate while in the bad state.
    pub bad_loss: f64,
}

/// The time step of [`BurstLoss`] between datagrams.
pub const BURST_SLOT: Duration = Duration::from_millis(1);

/// How a link treats datagrams. The default is a perfect 1 ms link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    pub latency: Duration,
    /// Uniform extra delay in `0..=jitter`.
    pub jitter: Duration,
    /// Independent random loss, 0.0..=1.0.
    pub loss: f64,
    pub burst: Option<BurstLoss>,
    pub duplicate: f64,
    /// Chance a datagram is held back by `reorder_delay`, letting later
    /// ones overtake it.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Chance one random bit of a datagram is flipped.
    pub corrupt: f64,
    /// Bottleneck rate in bytes per second, with a queue of `queue_bytes`.
    pub rate: Option<u64>,
    pub queue_bytes: usize,
    /// A partitioned link delivers nothing.
    pub up: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(5),
            corrupt: 0.0,
            rate: None,
            queue_bytes: 64 * 1024,
            up: true,
        }
    }
}

impl LinkConfig {
    /// A link with this one-way latency and random loss.
    pub fn lossy(latency: Duration, loss: f64) -> Self {
        Self {
            latency,
            loss,
            ..Self::default()
        }
    }
}

/// A link's configuration plus its running state.
#[derive(Debug, Clone, Default)]
pub struct Link {
    pub config: LinkConfig,
    in_bad_state: bool,
    last_step: Duration,
    /// Offset from the simulation start at which the bottleneck is free.
    busy_until: Duration,
}

/// What the link decided for one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fate {
    /// Arrival offsets of each copy (empty: lost).
    pub arrivals: Vec<Duration>,
    /// A bit to flip: (byte index, bit).
    pub corrupt: Option<(usize, u8)>,
}

impl Link {
    pub fn new(config: LinkConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    pub fn decide<R: Rng>(&mut self, rng: &mut R, now: Duration, len: usize) -> Fate {
        let c = self.config;
        let mut fate = Fate {
            arrivals: Vec::new(),
            corrupt: None,
        };
        // Draw every random number each time, so one setting does not shift
        // the stream for the others.
        let draws: [f64; 6] = std::array::from_fn(|_| rng.gen());
        let jitter = rng.gen_range(0..=c.jitter.as_micros() as u64);
        let dup_jitter = rng.gen_range(0..=c.jitter.as_micros() as u64 + 100);
        let corrupt_at = (rng.gen_range(0..len.max(1)), rng.gen_range(0..8u8));
        if !c.up {
            return fate;
        }
        if let Some(b) = c.burst {
            let steps = 1 + (now.saturating_sub(self.last_step).as_micros() / BURST_SLOT.as_micros()) as i32;
            self.last_step = now;
            // The chance of leaving the current state within `steps`.
            let p = if self.in_bad_state {
                b.leave_bad
            } else {
                b.enter_bad
            };
            let flip = 1.0 - (1.0 - p).powi(steps.min(1_000_000));
            if draws[0] < flip {
                self.in_bad_state = !self.in_bad_state;
            }
            if self.in_bad_state && draws[1] < b.bad_loss {
                return fate;
            }
        }
        if draws[2] < c.loss {
            return fate;
        }
        let mut depart = now;
        if let Some(rate) = c.rate {
            let start = self.busy_until.max(now);
            let queued = start.saturating_sub(now).as_secs_f64() * rate as f64;
            if queued > c.queue_bytes as f64 {
                return fate;
            }
            depart = start + Duration::from_secs_f64(len as f64 / rate as f64);
            self.busy_until = depart;
        }
        let mut arrival = depart + c.latency + Duration::from_micros(jitter);
        if draws[3] < c.reorder {
            arrival += c.reorder_delay;
        }
        fate.arrivals.push(arrival);
        if draws[4] < c.duplicate {
            fate.arrivals.push(arrival + Duration::from_micros(dup_jitter));
        }
        if draws[5] < c.corrupt {
            fate.corrupt = Some(corrupt_at);
        }
        fate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn run(config: LinkConfig, n: usize, spacing: Duration) -> Vec<Fate> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut link = Link::new(config);
        (0..n)
            .map(|i| link.decide(&mut rng, spacing * i as u32, 500))
            .collect()
    }

    #[test]
    fn burst_loss_comes_in_runs() {
        let burst = BurstLoss {
            enter_bad: 0.01,
            leave_bad: 0.1,
            bad_loss: 1.0,
        };
        let fates = run(
            LinkConfig {
                burst: Some(burst),
                ..LinkConfig::default()
            },
            20_000,
            Duration::ZERO,
        );
        let lost: Vec<bool> = fates.iter().map(|f| f.arrivals.is_empty()).collect();
        let losses = lost.iter().filter(|&&l| l).count();
        // Stationary bad share: 0.01 / (0.01 + 0.1) ≈ 9 %.
        assert!((1200..2400).contains(&losses), "{losses}");
        let runs = lost.windows(2).filter(|w| w[1] && !w[0]).count();
        let mean_run = losses as f64 / runs as f64;
        assert!(mean_run > 5.0, "losses must cluster, mean run {mean_run}");
    }

    #[test]
    fn rate_limit_spaces_arrivals_and_tail_drops_past_the_queue() {
        let config = LinkConfig {
            rate: Some(500_000),
            queue_bytes: 5_000,
            ..LinkConfig::default()
        };
        let fates = run(config, 100, Duration::ZERO);
        let delivered: Vec<Duration> = fates.iter().filter_map(|f| f.arrivals.first().copied()).collect();
        // 500 B at 500 kB/s = 1 ms apart; the queue holds ~10 datagrams.
        assert!(
            delivered.len() >= 10 && delivered.len() <= 12,
            "{}",
            delivered.len()
        );
        for w in delivered.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_millis(1));
        }
    }

    #[test]
    fn a_partitioned_link_delivers_nothing() {
        let fates = run(
            LinkConfig {
                up: false,
                ..LinkConfig::default()
            },
            100,
            Duration::from_millis(1),
        );
        assert!(fates.iter().all(|f| f.arrivals.is_empty()));
    }
}
