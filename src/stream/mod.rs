//! Delivery modes for courier messages: the reliability layer, built only
//! on the public [`crate::Courier`] hooks (frame tokens and their fates), so
//! a user's courier can embed it exactly as octolink's own couriers do.
//!
//! A courier payload written by a [`SendStream`] is a run of messages, each
//! `seq (varint) ‖ length (varint) ‖ bytes`. `seq` counts from 0 in each
//! session; both ends reset their stream state when a session starts.

mod recv;
mod send;

pub use recv::{RecvStream, RecvStreamStats};
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
    /// Messages waiting to be sent, at most.
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

/// Bytes a message adds in front of its body at most (two 4-byte varints
/// cover every sequence number and length we use).
pub const MESSAGE_OVERHEAD: usize = 8;

/// Decodes one stream payload into `(seq, message)` pairs, all or nothing.
pub fn decode_messages(payload: &[u8]) -> Result<Vec<(u64, &[u8])>, DecodeError> {
    let mut r = Reader::new(payload);
    let mut out = Vec::new();
    while !r.is_empty() {
        let seq = r.varint()?;
        let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::BadFrame)?;
        out.push((seq, r.take(len)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
