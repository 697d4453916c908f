//! What every library is asked to do.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Work {
    pub warmup: usize,
    pub round_trips: usize,
    pub bulk_bytes: usize,
    pub lossy_bytes: usize,
    pub relay_delay: Duration,
    /// Longest a lossy bulk transfer may take; past it the figure is "n/a".
    pub budget: Duration,
    /// Longest a clean bulk transfer may take (64 MiB at 5 MiB/s: a
    /// library that needs longer has stalled).
    pub clean_budget: Duration,
    /// Clean bulk transfers per library; the median is reported. One 64 MiB
    /// transfer takes well under a second on loopback, so a single one is
    /// mostly slow start and thread placement: runs of one build differed
    /// by 1.5x (527 to 780 MiB/s).
    pub bulk_runs: usize,
}

impl Work {
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                warmup: 200,
                round_trips: 2_000,
                bulk_bytes: 16 << 20,
                lossy_bytes: 2 << 20,
                relay_delay: Duration::from_millis(20),
                budget: Duration::from_secs(20),
                clean_budget: Duration::from_secs(20),
                bulk_runs: 1,
            }
        } else {
            Self {
                warmup: 1_000,
                round_trips: 20_000,
                bulk_bytes: 64 << 20,
                lossy_bytes: 16 << 20,
                relay_delay: Duration::from_millis(20),
                budget: Duration::from_secs(120),
                clean_budget: Duration::from_secs(20),
                bulk_runs: 5,
            }
        }
    }
}
