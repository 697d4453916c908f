//! The receiving half of a stream: duplicate removal, a bounded reorder
//! buffer, and the order each delivery mode promises.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{decode_messages, Delivery, StreamConfig};
use crate::wire::DecodeError;

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
}

#[derive(Debug, Clone)]
pub struct RecvStream {
    cfg: StreamConfig,
    /// Ordered: the next sequence number to deliver. Unordered: every
    /// number below it has been delivered.
    next: u64,
    /// Ordered: messages waiting for a gap to fill.
    reorder: BTreeMap<u64, Vec<u8>>,
    /// Unordered: numbers at or above `next` already delivered.
    seen: BTreeSet<u64>,
    /// Sequenced: the highest delivered so far.
    highest: Option<u64>,
    ready: VecDeque<Vec<u8>>,
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
    pub fn reset(&mut self) {
        self.next = 0;
        self.reorder.clear();
        self.seen.clear();
        self.highest = None;
    }

    /// Takes in one courier payload. A malformed payload changes nothing.
    pub fn on_payload(&mut self, payload: &[u8]) -> Result<(), DecodeError> {
        let messages = match decode_messages(payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e);
            }
        };
        for (seq, body) in messages {
            self.accept(seq, body);
        }
        Ok(())
    }

    fn accept(&mut self, seq: u64, body: &[u8]) {
        match self.cfg.delivery {
            Delivery::Unreliable => self.deliver(body.to_vec()),
            Delivery::UnreliableSequenced => {
                if self.highest.is_some_and(|h| seq <= h) {
                    self.stats.stale += 1;
                } else {
                    self.highest = Some(seq);
                    self.deliver(body.to_vec());
                }
            }
            Delivery::ReliableOrdered => {
                if seq < self.next || self.reorder.contains_key(&seq) {
                    self.stats.duplicates += 1;
                } else if seq >= self.next + self.cfg.window {
                    self.stats.over_window += 1;
                } else if seq == self.next {
                    self.deliver(body.to_vec());
                    self.next += 1;
                    while let Some(b) = self.reorder.remove(&self.next) {
                        self.deliver(b);
                        self.next += 1;
                    }
                } else {
                    self.reorder.insert(seq, body.to_vec());
                }
            }
            Delivery::ReliableUnordered => {
                if seq < self.next || self.seen.contains(&seq) {
                    self.stats.duplicates += 1;
                } else if seq >= self.next + self.cfg.window {
                    self.stats.over_window += 1;
                } else {
                    self.seen.insert(seq);
                    self.deliver(body.to_vec());
                    while self.seen.remove(&self.next) {
                        self.next += 1;
                    }
                }
            }
        }
    }

    fn deliver(&mut self, body: Vec<u8>) {
        if self.ready.len() >= self.cfg.max_ready {
            self.stats.overflow += 1;
            return;
        }
        self.stats.delivered += 1;
        self.ready.push_back(body);
    }

    /// The next delivered message.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }
}
