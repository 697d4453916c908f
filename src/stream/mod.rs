//! Delivery modes for courier messages: the reliability layer, built only
//! on the public [`crate::Courier`] hooks (frame tokens and their fates), so
//! a user's courier can embed it exactly as octolink's own couriers do.
//!
//! A courier payload written by a [`SendStream`] is a run of messages, each
//! `seq (varint) ‖ head (varint) ‖ [remaining lifespan µs (varint)] ‖ body`,
//! where `head = body length << 2 | has lifespan << 1 | tombstone`. A
//! tombstone (an expired message that already had a sequence number) has no
//! body: it fills its place in the order and is never delivered. `seq`
//! counts from 0 in each session; both ends reset when a session starts.

mod in_flight;
mod recv;
mod send;

pub use recv::{Received, RecvStream, RecvStreamStats};
pub use send::{PushError, SendStream, SendStreamStats, StreamEvent};

use crate::wire::{DecodeError, Reader};

/// How a stream's messages are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Sent once; may be lost or arrive out of order. When the send queue
    /// is full, the newest message replaces the oldest (latest wins).
    Unreliable,
    /// Like `Unreliable`, but the receiver drops anything older than what
    /// it has already delivered.
    UnreliableSequenced,
    /// Re-sent until acknowledged; delivered exactly once, in order.
    ReliableOrdered,
    /// Re-sent until acknowledged; delivered exactly once, as it arrives.
    ReliableUnordered,
}

impl Delivery {
    pub fn is_reliable(self) -> bool {
        matches!(self, Self::ReliableOrdered | Self::ReliableUnordered)
    }
}

/// Limits for one stream. Both ends must use the same `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    pub delivery: Delivery,
    /// Messages held at most: waiting to be sent, plus (reliable modes)
    /// sent and not yet acknowledged. Beyond it, reliable pushes are refused.
    pub max_queued: usize,
    /// Bytes waiting to be sent, at most.
    pub max_queued_bytes: usize,
    /// Reliable modes: sequence numbers in flight beyond the oldest
    /// unacknowledged one, at most. Bounds the receiver's reorder buffer.
    pub window: u64,
    /// The largest message; it must fit one courier payload.
    pub max_message: usize,
    /// Received messages the application has not taken yet, at most.
    pub max_ready: usize,
}

impl StreamConfig {
    pub fn new(delivery: Delivery) -> Self {
        Self {
            delivery,
            max_queued: 1024,
            max_queued_bytes: 1 << 20,
            window: 256,
            max_message: 400,
            max_ready: 4096,
        }
    }
}

/// Bytes a message adds in front of its body at most (three 4-byte
/// varints: sequence number, head, lifespan).
pub const MESSAGE_OVERHEAD: usize = 12;

/// One message as it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireMessage<'a> {
    pub seq: u64,
    pub tombstone: bool,
    /// Lifespan left when it was sent, if it has one.
    pub remaining: Option<std::time::Duration>,
    pub body: &'a [u8],
}

/// Iterates the messages of one stream payload.
pub fn messages(payload: &[u8]) -> impl Iterator<Item = Result<WireMessage<'_>, DecodeError>> {
    let mut r = Reader::new(payload);
    std::iter::from_fn(move || {
        if r.is_empty() {
            return None;
        }
        Some((|| {
            let seq = r.varint()?;
            let head = r.varint()?;
            let remaining = if head & 2 != 0 {
                Some(std::time::Duration::from_micros(r.varint()?))
            } else {
                None
            };
            let len = usize::try_from(head >> 2).map_err(|_| DecodeError::BadFrame)?;
            let tombstone = head & 1 != 0;
            if tombstone && len != 0 {
                return Err(DecodeError::BadFrame);
            }
            Ok(WireMessage {
                seq,
                tombstone,
                remaining,
                body: r.take(len)?,
            })
        })())
    })
}

#[cfg(test)]
mod tests;
