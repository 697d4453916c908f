//! The receiving half of a stream: duplicate removal, a bounded reorder
//! buffer, and the order each delivery mode promises.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::{messages, Delivery, StreamConfig, WireMessage};
use crate::wire::DecodeError;

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub body: Vec<u8>,
    /// Lifespan left on arrival (after the estimated one-way delay), if the
    /// message had one.
    pub lifespan_left: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvStreamStats {
    pub delivered: u64,
    pub duplicates: u64,
    /// Sequenced mode: older than what was already delivered.
    pub stale: u64,
    /// Beyond the window (a misbehaving sender); dropped.
    pub over_window: u64,
    /// The application did not take messages fast enough; dropped.
    pub overflow: u64,
    pub malformed: u64,
    /// Arrived past their lifespan (or as tombstones); never delivered.
    pub expired: u64,
}

#[derive(Debug, Clone)]
pub struct RecvStream {
    cfg: StreamConfig,
    /// Ordered: the next sequence number to deliver. Unordered: every
    /// number below it has been delivered.
    next: u64,
    /// Ordered: messages waiting for a gap to fill (`None`: expired).
    reorder: BTreeMap<u64, Option<Received>>,
    /// Unordered: numbers at or above `next` already delivered.
    seen: BTreeSet<u64>,
    /// Sequenced: the highest delivered so far.
    highest: Option<u64>,
    ready: VecDeque<Received>,
    stats: RecvStreamStats,
}

impl RecvStream {
    pub fn new(cfg: StreamConfig) -> Self {
        Self {
            cfg,
            next: 0,
            reorder: BTreeMap::new(),
            seen: BTreeSet::new(),
            highest: None,
            ready: VecDeque::new(),
            stats: RecvStreamStats::default(),
        }
    }

    pub fn stats(&self) -> RecvStreamStats {
        self.stats
    }

    /// Messages held for reordering.
    pub fn buffered(&self) -> usize {
        self.reorder.len()
    }

    /// A new session: expect sequence number 0 again.
    ///
    /// Messages held for reordering were acknowledged to the sender, so they
    /// must reach the application: they are delivered now, in order. The
    /// gaps before them are messages the sender never had acknowledged; it
    /// reports those as failed and does not re-send them, so skipping them
    /// keeps every message delivered exactly once or reported failed.
    pub fn reset(&mut self) {
        for (_, item) in std::mem::take(&mut self.reorder) {
            self.deliver(item);
        }
        self.next = 0;
        self.reorder.clear();
        self.seen.clear();
        self.highest = None;
    }

    /// Takes in one courier payload. A malformed payload changes nothing.
    /// `one_way` is the estimated one-way delay (half the RTT): a message
    /// whose lifespan is shorter than that has expired in transit.
    pub fn on_payload(&mut self, payload: &[u8], one_way: Duration) -> Result<(), DecodeError> {
        if let Some(Err(e)) = messages(payload).find(Result::is_err) {
            self.stats.malformed += 1;
            return Err(e);
        }
        for m in messages(payload).flatten() {
            self.accept(m, one_way);
        }
        Ok(())
    }

    fn accept(&mut self, m: WireMessage<'_>, one_way: Duration) {
        let live = !m.tombstone && m.remaining.is_none_or(|r| r > one_way);
        let item = live.then(|| Received {
            body: m.body.to_vec(),
            lifespan_left: m.remaining.map(|r| r - one_way),
        });
        let seq = m.seq;
        match self.cfg.delivery {
            Delivery::Unreliable => self.deliver(item),
            Delivery::UnreliableSequenced => {
                if self.highest.is_some_and(|h| seq <= h) {
                    self.stats.stale += 1;
                } else {
                    self.highest = Some(seq);
                    self.deliver(item);
                }
            }
            Delivery::ReliableOrdered => {
                if seq < self.next || self.reorder.contains_key(&seq) {
                    self.stats.duplicates += 1;
                } else if seq >= self.next + self.cfg.window {
                    self.stats.over_window += 1;
                } else if seq == self.next {
                    self.deliver(item);
                    self.next += 1;
                    while let Some(b) = self.reorder.remove(&self.next) {
                        self.deliver(b);
                        self.next += 1;
                    }
                } else {
                    self.reorder.insert(seq, item);
                }
            }
            Delivery::ReliableUnordered => {
                if seq < self.next || self.seen.contains(&seq) {
                    self.stats.duplicates += 1;
                } else if seq >= self.next + self.cfg.window {
                    self.stats.over_window += 1;
                } else {
                    self.seen.insert(seq);
                    self.deliver(item);
                    while self.seen.remove(&self.next) {
                        self.next += 1;
                    }
                }
            }
        }
    }

    fn deliver(&mut self, item: Option<Received>) {
        let Some(item) = item else {
            self.stats.expired += 1;
            return;
        };
        if self.ready.len() >= self.cfg.max_ready {
            self.stats.overflow += 1;
            return;
        }
        self.stats.delivered += 1;
        self.ready.push_back(item);
    }

    /// The next delivered message's body.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front().map(|r| r.body)
    }

    /// The next delivered message, with its remaining lifespan.
    pub fn pop_received(&mut self) -> Option<Received> {
        self.ready.pop_front()
    }

    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }
}
