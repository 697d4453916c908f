//! The sending half of a stream: a bounded queue, sequence numbers, and
//! re-sending of lost messages in new frames.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use super::in_flight::{Carried, FrameLog, SeqWindow};
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
    /// or may not have arrived). Any mode: it is larger than any packet of
    /// this session can carry (`max_message` above the datagram's room), so
    /// it was dropped unsent rather than stall the stream behind it.
    Failed(u64),
    /// Its lifespan ended before it was delivered; it will not be.
    Expired(u64),
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
    pub expired: u64,
    /// Of `failed`: messages no packet of the session could carry.
    pub oversized: u64,
}

#[derive(Debug, Clone)]
struct Message {
    id: u64,
    body: Vec<u8>,
    deadline: Option<Instant>,
    /// Expired after it got a sequence number: travels as a tombstone.
    tombstone: bool,
}

#[derive(Debug, Clone)]
pub struct SendStream {
    cfg: StreamConfig,
    next_id: u64,
    queue: VecDeque<Message>,
    queued_bytes: usize,
    /// Queued messages with a lifespan (none: nothing to expire).
    queued_with_deadline: usize,
    /// Sent, not yet acknowledged, by sequence number; its next number is
    /// the next message's.
    unacked: SeqWindow<Message>,
    /// Sequence numbers to re-send, lowest first.
    resend: BTreeSet<u64>,
    /// Frame token → sequence numbers it carried.
    frames: FrameLog,
    events: VecDeque<StreamEvent>,
    stats: SendStreamStats,
}

impl SendStream {
    pub fn new(cfg: StreamConfig) -> Self {
        Self {
            cfg,
            next_id: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            queued_with_deadline: 0,
            unacked: SeqWindow::new(),
            resend: BTreeSet::new(),
            frames: FrameLog::default(),
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
        self.push_until(msg, None)
    }

    /// Queues a message that must not be delivered after `deadline`.
    pub fn push_until(&mut self, msg: Vec<u8>, deadline: Option<Instant>) -> Result<u64, PushError> {
        if msg.len() > self.cfg.max_message {
            self.stats.refused += 1;
            return Err(PushError::TooLarge {
                len: msg.len(),
                max: self.cfg.max_message,
            });
        }
        // Reliable streams count what they still hold for re-sending too:
        // that is what the bound is for.
        let full = |s: &Self| {
            let held = if s.cfg.delivery.is_reliable() {
                s.unacked.len()
            } else {
                0
            };
            s.queue.len() + held >= s.cfg.max_queued || s.queued_bytes + msg.len() > s.cfg.max_queued_bytes
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
                let Some(old) = self.pop_queued() else { break };
                self.stats.superseded += 1;
                self.events.push_back(StreamEvent::Superseded(old.id));
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.queued_bytes += msg.len();
        self.queued_with_deadline += usize::from(deadline.is_some());
        self.queue.push_back(Message {
            id,
            body: msg,
            deadline,
            tombstone: false,
        });
        self.stats.pushed += 1;
        Ok(id)
    }

    /// Takes the queue's head, keeping the queue's tallies.
    fn pop_queued(&mut self) -> Option<Message> {
        let m = self.queue.pop_front()?;
        self.queued_bytes -= m.body.len();
        self.queued_with_deadline -= usize::from(m.deadline.is_some());
        Some(m)
    }

    /// Messages queued or waiting to be re-sent.
    pub fn queue_depth(&self) -> usize {
        self.queue.len() + self.resend.len()
    }

    /// Messages held: queued, plus (reliable) sent but unacknowledged. This
    /// is what `max_queued` bounds.
    pub fn held(&self) -> usize {
        self.queue.len()
            + if self.cfg.delivery.is_reliable() {
                self.unacked.len()
            } else {
                0
            }
    }

    /// Messages queued, waiting to be re-sent, or sent and not yet
    /// acknowledged: zero once everything pushed is settled.
    pub fn unsettled(&self) -> usize {
        self.queue_depth() + self.unacked()
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
        let next = self.unacked.next_seq();
        let base = self.unacked.first_seq().unwrap_or(next);
        next < base + self.cfg.window
    }

    /// Whether there is anything to write now.
    pub fn wants_to_send(&self) -> bool {
        !self.resend.is_empty() || (!self.queue.is_empty() && self.window_open())
    }

    /// The earliest deadline among queued messages (to expire them on time).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.queued_with_deadline == 0 {
            return None;
        }
        self.queue.iter().filter_map(|m| m.deadline).min()
    }

    /// Reports and drops queued (never sent) messages whose lifespan ended.
    pub fn expire(&mut self, now: Instant) {
        if self.queued_with_deadline == 0 {
            return;
        }
        let (bytes, with_deadline, stats, events) = (
            &mut self.queued_bytes,
            &mut self.queued_with_deadline,
            &mut self.stats,
            &mut self.events,
        );
        self.queue.retain(|m| {
            if m.deadline.is_none_or(|d| d > now) {
                return true;
            }
            *bytes -= m.body.len();
            *with_deadline -= 1;
            stats.expired += 1;
            events.push_back(StreamEvent::Expired(m.id));
            false
        });
    }

    /// The largest payload the next write could use (for the mandate).
    pub fn next_payload_len(&self) -> usize {
        let first = self
            .resend
            .first()
            .and_then(|&s| self.unacked.get(s))
            .map(|m| m.body.len())
            .or_else(|| self.queue.front().map(|m| m.body.len()))
            .unwrap_or(0);
        first + MESSAGE_OVERHEAD
    }

    /// Writes re-sends first, then new messages, as many as fit.
    pub fn write(&mut self, now: Instant, out: &mut PayloadWriter<'_>) -> usize {
        self.expire(now);
        let token = out.token();
        let mut carried = Carried::new();
        // Re-sends, oldest first.
        while let Some(&seq) = self.resend.first() {
            let Some(m) = self.unacked.get_mut(seq) else {
                self.resend.remove(&seq);
                continue;
            };
            if !m.tombstone && m.deadline.is_some_and(|d| d <= now) {
                // Too late to deliver: its place in the order still needs
                // filling, so it goes as a tombstone.
                m.tombstone = true;
                m.body = Vec::new();
                self.stats.expired += 1;
                self.events.push_back(StreamEvent::Expired(m.id));
            }
            if !write_message(out, seq, m, now, message_len(seq, m, now)) {
                break;
            }
            self.resend.remove(&seq);
            self.stats.resent += 1;
            carried.push(seq);
        }
        while self.resend.is_empty() && self.window_open() {
            let Some(m) = self.queue.front() else { break };
            let seq = self.unacked.next_seq();
            let need = message_len(seq, m, now);
            if need > out.largest_offer() {
                self.drop_oversized();
                continue;
            }
            if !write_message(out, seq, m, now, need) {
                break;
            }
            let Some(mut m) = self.pop_queued() else {
                break;
            };
            self.stats.sent += 1;
            carried.push(seq);
            if !self.cfg.delivery.is_reliable() {
                m.body = Vec::new();
            }
            self.unacked.push(m);
        }
        let n = carried.len();
        if n > 0 {
            self.frames.insert(token, carried);
        }
        n
    }

    /// Drops the queue's head, which no packet of the session can carry.
    fn drop_oversized(&mut self) {
        if let Some(m) = self.pop_queued() {
            self.stats.failed += 1;
            self.stats.oversized += 1;
            self.events.push_back(StreamEvent::Failed(m.id));
            tracing::warn!(
                len = m.body.len(),
                "stream message larger than any packet of the session: dropped"
            );
        }
    }

    /// The frame `token` was acknowledged.
    pub fn on_delivered(&mut self, token: u64) {
        for seq in self.frames.take(token).into_iter().flat_map(Carried::into_seqs) {
            if let Some(m) = self.unacked.remove(seq) {
                self.resend.remove(&seq);
                if !m.tombstone {
                    self.stats.delivered += 1;
                    self.events.push_back(StreamEvent::Delivered(m.id));
                }
            }
        }
    }

    /// The frame `token` was lost: reliable messages go back for re-sending.
    pub fn on_lost(&mut self, token: u64) {
        for seq in self.frames.take(token).into_iter().flat_map(Carried::into_seqs) {
            if self.cfg.delivery.is_reliable() {
                if self.unacked.contains(seq) {
                    self.resend.insert(seq);
                }
            } else if let Some(m) = self.unacked.remove(seq) {
                self.stats.lost += 1;
                self.events.push_back(StreamEvent::Lost(m.id));
            }
        }
    }

    /// The session ended: what was in flight is reported failed (reliable)
    /// or lost; messages never sent stay queued for the next session.
    pub fn on_session_end(&mut self) {
        for m in self.unacked.drain_and_restart(0) {
            if m.tombstone {
                continue;
            }
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
/// The message's encoding: its head word and remaining lifespan.
fn message_head(m: &Message, now: Instant) -> (u64, Option<u64>) {
    let remaining = m
        .deadline
        .filter(|_| !m.tombstone)
        .map(|d| d.saturating_duration_since(now).as_micros() as u64);
    let head = (m.body.len() as u64) << 2 | u64::from(remaining.is_some()) << 1 | u64::from(m.tombstone);
    (head, remaining)
}

/// Bytes the message takes on the wire as sequence number `seq`.
fn message_len(seq: u64, m: &Message, now: Instant) -> usize {
    let (head, remaining) = message_head(m, now);
    varint_len(seq) + varint_len(head) + remaining.map_or(0, varint_len) + m.body.len()
}

/// Writes the message as `seq`, `need` bytes ([`message_len`]), if it fits.
fn write_message(out: &mut PayloadWriter<'_>, seq: u64, m: &Message, now: Instant, need: usize) -> bool {
    let (head, remaining) = message_head(m, now);
    if need > out.remaining() {
        return false;
    }
    let spare = out.spare();
    let mut w = Writer::new(&mut spare[..need]);
    let ok = w.varint(seq).is_ok()
        && w.varint(head).is_ok()
        && remaining.is_none_or(|r| w.varint(r).is_ok())
        && w.bytes(&m.body).is_ok();
    ok && out.advance(need).is_ok()
}
