//! TelemetryCourier: a latest-value sensor stream, unreliable-sequenced.
//!
//! * **Deadline** (DDS style): if no fresh sample arrives within the
//!   deadline, a [`TelemetryEvent::DeadlineMissed`] fires, once per missed
//!   period.
//! * **Lifespan**: a sample older than its lifespan is never delivered: the
//!   sender drops it unsent, the receiver drops it if it arrives too late,
//!   and [`TelemetryCourier::latest`] stops returning it.

use std::time::{Duration, Instant};

use octolink::stream::{Delivery, StreamConfig};
use octolink::{Courier, CourierContext, Mandate, PayloadWriter};

use crate::MessageCourier;

/// Settings for one telemetry stream. Both ends use the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryConfig {
    pub priority: u8,
    /// Longest a sample may be in use after it was taken.
    pub lifespan: Option<Duration>,
    /// Longest the receiver accepts between fresh samples.
    pub deadline: Option<Duration>,
    /// Largest sample, in bytes.
    pub max_sample: usize,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            priority: 100,
            lifespan: Some(Duration::from_millis(500)),
            deadline: Some(Duration::from_millis(200)),
            max_sample: 400,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelemetryEvent {
    /// A fresh sample arrived.
    Sample,
    /// No fresh sample within the deadline (fires again each period).
    DeadlineMissed { since_last: Duration },
}

/// The latest sample received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub body: Vec<u8>,
    pub received_at: Instant,
    /// When it stops being valid, if it has a lifespan.
    pub valid_until: Option<Instant>,
}

#[derive(Debug)]
pub struct TelemetryCourier {
    inner: MessageCourier,
    cfg: TelemetryConfig,
    latest: Option<Sample>,
    /// Start of the current deadline period (last sample, or session start).
    period_start: Option<Instant>,
    events: std::collections::VecDeque<TelemetryEvent>,
    pub deadline_misses: u64,
}

impl TelemetryCourier {
    pub fn new(cfg: TelemetryConfig) -> Self {
        let mut stream = StreamConfig::new(Delivery::UnreliableSequenced);
        stream.max_queued = 1; // latest value wins
        stream.max_message = cfg.max_sample;
        Self {
            inner: MessageCourier::new(stream, cfg.priority),
            cfg,
            latest: None,
            period_start: None,
            events: Default::default(),
            deadline_misses: 0,
        }
    }

    /// Publishes a sample taken now; it replaces any not yet sent.
    pub fn publish(&mut self, now: Instant, sample: Vec<u8>) -> Result<(), octolink::stream::PushError> {
        self.inner.send(now, sample, self.cfg.lifespan).map(|_| ())
    }

    /// The latest sample, unless its lifespan has passed.
    pub fn latest(&self, now: Instant) -> Option<&Sample> {
        self.latest
            .as_ref()
            .filter(|s| s.valid_until.is_none_or(|t| now < t))
    }

    pub fn poll_event(&mut self) -> Option<TelemetryEvent> {
        self.events.pop_front()
    }

    fn take_samples(&mut self, now: Instant) {
        while let Some(r) = self.inner.recv() {
            self.latest = Some(Sample {
                body: r.body,
                received_at: now,
                valid_until: r.lifespan_left.map(|l| now + l),
            });
            self.period_start = Some(now);
            self.events.push_back(TelemetryEvent::Sample);
        }
        // Sent samples' fates do not matter to a latest-value stream.
        while self.inner.poll_event().is_some() {}
    }
}

impl Courier for TelemetryCourier {
    fn mandate(&self) -> Mandate {
        self.inner.mandate()
    }

    fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
        self.inner.on_send_opportunity(ctx, out);
    }

    fn on_receive(&mut self, ctx: &CourierContext, payload: &[u8]) {
        self.inner.on_receive(ctx, payload);
        self.take_samples(ctx.now);
    }

    fn on_delivered(&mut self, ctx: &CourierContext, token: u64) {
        self.inner.on_delivered(ctx, token);
    }

    fn on_lost(&mut self, ctx: &CourierContext, token: u64) {
        self.inner.on_lost(ctx, token);
    }

    fn on_session_start(&mut self, ctx: &CourierContext) {
        self.inner.on_session_start(ctx);
        self.period_start = Some(ctx.now);
    }

    fn on_session_end(&mut self, ctx: &CourierContext) {
        self.inner.on_session_end(ctx);
        self.period_start = None;
    }

    fn next_timer(&self) -> Option<Instant> {
        let deadline = self.cfg.deadline.and_then(|d| Some(self.period_start? + d));
        [deadline, self.inner.next_timer()].into_iter().flatten().min()
    }

    fn on_timer(&mut self, now: Instant) {
        self.inner.on_timer(now);
        if let (Some(d), Some(start)) = (self.cfg.deadline, self.period_start) {
            if now >= start + d {
                self.deadline_misses += 1;
                let since_last =
                    now.saturating_duration_since(self.latest.as_ref().map_or(start, |s| s.received_at));
                self.events
                    .push_back(TelemetryEvent::DeadlineMissed { since_last });
                self.period_start = Some(now);
            }
        }
    }

    /// All its state changes through the engine's calls (and
    /// `courier_mut`), so the engine need not poll it.
    fn accept_waker(&mut self, _waker: octolink::CourierWaker) -> bool {
        true
    }
}
