//! Percentiles and the per-library results.

use std::time::{Duration, Instant};

use crate::work::Work;

/// Goodput of `bytes` moved in `took`, in MiB/s.
pub fn mib_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / (1 << 20) as f64
}

/// A library's clean bulk runs: the median of those that finished (goodput,
/// and whether every one's checksum held), and how many did not.
pub struct BulkRuns {
    pub median: Option<(f64, bool)>,
    pub failed: usize,
    pub runs: usize,
}

impl BulkRuns {
    pub fn mib_s(&self) -> Option<f64> {
        self.median.map(|m| m.0)
    }

    pub fn checksum_ok(&self) -> Option<bool> {
        self.median.map(|m| m.1)
    }

    /// Says how many runs failed, if any: a stall is a finding, shown
    /// beside the median of the runs that finished.
    pub fn note(&self) -> Option<String> {
        (self.failed > 0).then(|| {
            format!(
                "bulk: {} of {} runs did not finish within the budget; the figure is the median of the others",
                self.failed, self.runs
            )
        })
    }
}

/// `w.bulk_runs` runs of a clean bulk transfer (goodput and whether its
/// checksum held, `None` for a run that failed).
pub fn median_bulk(w: &Work, mut run: impl FnMut() -> Option<(f64, bool)>) -> BulkRuns {
    let runs = w.bulk_runs.max(1);
    let mut goodputs = Vec::with_capacity(runs);
    let mut all_ok = true;
    for _ in 0..runs {
        if let Some((mib_s, ok)) = run() {
            goodputs.push(mib_s);
            all_ok &= ok;
        }
    }
    goodputs.sort_by(f64::total_cmp);
    BulkRuns {
        median: goodputs.get(goodputs.len() / 2).map(|&m| (m, all_ok)),
        failed: runs - goodputs.len(),
        runs,
    }
}

/// Times `w.warmup + w.round_trips` round trips on a polled peer, keeping
/// those after the warm-up: `send` starts one, `poll` drives the peer once
/// and says whether the echo is back. `None` if an echo takes over 10 s.
pub fn spin_round_trips<S>(
    w: &Work,
    state: &mut S,
    mut send: impl FnMut(&mut S),
    mut poll: impl FnMut(&mut S) -> bool,
) -> Option<Vec<Duration>> {
    let mut samples = Vec::with_capacity(w.round_trips);
    for i in 0..w.warmup + w.round_trips {
        let t = Instant::now();
        send(state);
        while !poll(state) {
            if t.elapsed() > Duration::from_secs(10) {
                return None;
            }
        }
        if i >= w.warmup {
            samples.push(t.elapsed());
        }
    }
    Some(samples)
}

/// A peer's `rtt(size, work)`: percentiles and the handshake time.
pub type RttRun = fn(usize, &Work) -> (Option<Percentiles>, Option<Duration>);
/// A peer's `bulk(bytes, lossy relay, budget)`: MiB/s and the checksum check.
pub type BulkRun = fn(usize, Option<(Duration, f64)>, Duration) -> Option<(f64, bool)>;

/// The figures a reliable peer reports, from its own `rtt` and `bulk`:
/// 64- and 512-byte round trips, a clean bulk run and two lossy ones.
pub fn reliable_results(library: &str, mode: &str, w: &Work, rtt: RttRun, bulk: BulkRun) -> Results {
    let (rtt64, handshake) = rtt(64, w);
    let b = median_bulk(w, || bulk(w.bulk_bytes, None, w.clean_budget));
    let lossy = |loss| bulk(w.lossy_bytes, Some((w.relay_delay, loss)), w.budget).map(|x| x.0);
    Results {
        library: library.into(),
        mode: mode.into(),
        rtt64,
        rtt512: rtt(512, w).0,
        bulk_mib_s: b.mib_s(),
        bulk_checksum_ok: b.checksum_ok(),
        lossy1_mib_s: lossy(0.01),
        lossy5_mib_s: lossy(0.05),
        handshake,
        notes: b.note().into_iter().collect(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct Results {
    pub library: String,
    /// How it was driven, for docs/benchmarks.md.
    pub mode: String,
    pub rtt64: Option<Percentiles>,
    pub rtt512: Option<Percentiles>,
    pub bulk_mib_s: Option<f64>,
    pub bulk_checksum_ok: Option<bool>,
    pub lossy1_mib_s: Option<f64>,
    pub lossy5_mib_s: Option<f64>,
    pub handshake: Option<Duration>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Percentiles {
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort();
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
        Some(Self {
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: *samples.last().unwrap_or(&Duration::ZERO),
        })
    }
}

/// A cheap checksum of a byte stream (FNV-1a, 64 bit).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The bulk payload: deterministic bytes, the same for every library.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

pub fn checksum(bytes: &[u8]) -> u64 {
    let mut f = Fnv::default();
    f.update(bytes);
    f.0
}
