//! The sending half of a stream: a bounded queue, sequence numbers, and
//! re-sending of lost messages in new frames.

use std::collections::{BTreeMap, VecDeque};

use super::{StreamConfig, MESSAGE_OVERHEAD};
use crate::courier::PayloadWriter;
use crate::wire::{varint_len, Writer};

/// Why a message was not accepted. Nothing is ever dropped silently: a full
/// reliable queue refuses, and the caller keeps the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("send queue full ({queued} messages queued): back-pressure, try again later")]
    Full { queued: usize },
    #[error("message of {len} bytes exceeds the stream's {max}-byte limit")]
    TooLarge { len: usize, max: usize },
}

/// What happened to a message, by the id [`SendStream::push`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer's endpoint received it.
    Delivered(u64),
    /// Unreliable modes: its packet was lost.
    Lost(u64),
    /// Unreliable modes: a newer message replaced it before it was sent.
    Superseded(u64),
    /// Reliable modes: the session ended before it was acknowledged (it may
    /// or may not have arrived).
    Failed(u64),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStreamStats {
    pub pushed: u64,
    pub refused: u64,
    pub sent: u64,
    pub resent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub superseded: u64,
    pub failed: u64,
}

/// A message in flight: its id, its body (kept only if it may be re-sent).
#[derive(Debug, Clone)]
struct InFlight {
    id: u64,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct SendStream {
    cfg: StreamConfig,
    next_id: u64,
    next_seq: u64,
    queue: VecDeque<(u64, Vec<u8>)>,
    queued_bytes: usize,
    /// Sent, not yet acknowledged, by sequence number.
    unacked: BTreeMap<u64, InFlight>,
    /// Sequence numbers to re-send, lowest first.
    resend: BTreeMap<u64, ()>,
    /// Frame token → sequence numbers it carried.
    frames: BTreeMap<u64, Vec<u64>>,
    events: VecDeque<StreamEvent>,
    stats: SendStreamStats,
}

impl SendStream {
    pub fn new(cfg: StreamConfig) -> Self {
        Self {
            cfg,
            next_id: 0,
            next_seq: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            unacked: BTreeMap::new(),
            resend: BTreeMap::new(),
            frames: BTreeMap::new(),
            events: VecDeque::new(),
            stats: SendStreamStats::default(),
        }
    }

    pub fn config(&self) -> &StreamConfig {
        &self.cfg
    }

    pub fn stats(&self) -> SendStreamStats {
        self.stats
    }

    /// Queues a message; returns its id for [`StreamEvent`]s.
    pub fn push(&mut self, msg: Vec<u8>) -> Result<u64, PushError> {
        if msg.len() > self.cfg.max_message {
            self.stats.refused += 1;
            return Err(PushError::TooLarge {
                len: msg.len(),
                max: self.cfg.max_message,
            });
        }
        let full = |s: &Self| {
            s.queue.len() >= s.cfg.max_queued || s.queued_bytes + msg.len() > s.cfg.max_queued_bytes
        };
        if full(self) {
            if self.cfg.delivery.is_reliable() {
                self.stats.refused += 1;
                return Err(PushError::Full {
                    queued: self.queue.len(),
                });
            }
            // Latest wins: make room by superseding the oldest.
            while full(self) {
                let Some((id, old)) = self.queue.pop_front() else {
                    break;
                };
                self.queued_bytes -= old.len();
                self.stats.superseded += 1;
                self.events.push_back(StreamEvent::Superseded(id));
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.queued_bytes += msg.len();
        self.queue.push_back((id, msg));
        self.stats.pushed += 1;
        Ok(id)
    }

    /// Messages queued or waiting to be re-sent.
    pub fn queue_depth(&self) -> usize {
        self.queue.len() + self.resend.len()
    }

    /// Messages sent and not yet acknowledged (reliable modes).
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// Whether the sending window has room for a new sequence number.
    fn window_open(&self) -> bool {
        if !self.cfg.delivery.is_reliable() {
            return true;
        }
        let base = self.unacked.keys().next().copied().unwrap_or(self.next_seq);
        self.next_seq < base + self.cfg.window
    }

    /// Whether there is anything to write now.
    pub fn wants_to_send(&self) -> bool {
        !self.resend.is_empty() || (!self.queue.is_empty() && self.window_open())
    }

    /// The largest payload the next write could use (for the mandate).
    pub fn next_payload_len(&self) -> usize {
        let first = self
            .resend
            .keys()
            .next()
            .and_then(|s| self.unacked.get(s))
            .map(|m| m.body.len())
            .or_else(|| self.queue.front().map(|(_, m)| m.len()))
            .unwrap_or(0);
        first + MESSAGE_OVERHEAD
    }

    /// Writes re-sends first, then new messages, as many as fit.
    pub fn write(&mut self, out: &mut PayloadWriter<'_>) -> usize {
        let token = out.token();
        let mut carried = Vec::new();
        // Re-sends, oldest first.
        while let Some((&seq, _)) = self.resend.iter().next() {
            let Some(m) = self.unacked.get(&seq) else {
                self.resend.remove(&seq);
                continue;
            };
            if !write_message(out, seq, &m.body) {
                break;
            }
            self.resend.remove(&seq);
            self.stats.resent += 1;
            carried.push(seq);
        }
        while self.resend.is_empty() && self.window_open() {
            let Some((_, body)) = self.queue.front() else {
                break;
            };
            if !write_message(out, self.next_seq, body) {
                break;
            }
            let Some((id, body)) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= body.len();
            let seq = self.next_seq;
            self.next_seq += 1;
            self.stats.sent += 1;
            carried.push(seq);
            let keep = if self.cfg.delivery.is_reliable() {
                body
            } else {
                Vec::new()
            };
            self.unacked.insert(seq, InFlight { id, body: keep });
        }
        let n = carried.len();
        if n > 0 {
            self.frames.insert(token, carried);
        }
        n
    }

    /// The frame `token` was acknowledged.
    pub fn on_delivered(&mut self, token: u64) {
        for seq in self.frames.remove(&token).unwrap_or_default() {
            if let Some(m) = self.unacked.remove(&seq) {
                self.resend.remove(&seq);
                self.stats.delivered += 1;
                self.events.push_back(StreamEvent::Delivered(m.id));
            }
        }
    }

    /// The frame `token` was lost: reliable messages go back for re-sending.
    pub fn on_lost(&mut self, token: u64) {
        for seq in self.frames.remove(&token).unwrap_or_default() {
            if self.cfg.delivery.is_reliable() {
                if self.unacked.contains_key(&seq) {
                    self.resend.insert(seq, ());
                }
            } else if let Some(m) = self.unacked.remove(&seq) {
                self.stats.lost += 1;
                self.events.push_back(StreamEvent::Lost(m.id));
            }
        }
    }

    /// The session ended: what was in flight is reported failed (reliable)
    /// or lost; messages never sent stay queued for the next session.
    pub fn on_session_end(&mut self) {
        for (_, m) in std::mem::take(&mut self.unacked) {
            if self.cfg.delivery.is_reliable() {
                self.stats.failed += 1;
                self.events.push_back(StreamEvent::Failed(m.id));
            } else {
                self.stats.lost += 1;
                self.events.push_back(StreamEvent::Lost(m.id));
            }
        }
        self.resend.clear();
        self.frames.clear();
        self.next_seq = 0;
    }

    /// A new session: sequence numbers start again at 0.
    pub fn on_session_start(&mut self) {
        self.on_session_end();
    }

    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.events.pop_front()
    }
}

/// Writes one message if it fits whole.
fn write_message(out: &mut PayloadWriter<'_>, seq: u64, body: &[u8]) -> bool {
    let need = varint_len(seq) + varint_len(body.len() as u64) + body.len();
    if need > out.remaining() {
        return false;
    }
    let spare = out.spare();
    let mut w = Writer::new(&mut spare[..need]);
    let ok = w.varint(seq).is_ok() && w.varint(body.len() as u64).is_ok() && w.bytes(body).is_ok();
    ok && out.advance(need).is_ok()
}
