//! The BlobCourier's payload is one of:
//!
//! * control: `0x00 ‖ stream payload` to the end; the stream is
//!   reliable-ordered and carries postcard-encoded [`Control`] messages.
//! * chunk: `0x01 ‖ blob id (varint) ‖ offset (varint) ‖ data` to the end.

use octolink::wire::{DecodeError, Reader};
use serde::{Deserialize, Serialize};

pub const CONTROL: u8 = 0x00;
pub const CHUNK: u8 = 0x01;

/// Control messages. `id` is always the sender's blob id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Sender → receiver: a blob is coming.
    Offer {
        id: u64,
        size: u64,
        priority: u8,
        name: String,
    },
    /// Receiver → sender: go ahead.
    Accept { id: u64 },
    /// Receiver → sender: no (too large, no room, ...).
    Reject { id: u64, reason: String },
    /// Sender → receiver: every byte has been sent; this is its BLAKE3
    /// digest.
    Sent { id: u64, digest: [u8; 32] },
    /// Receiver → sender: arrived whole and verified.
    Done { id: u64 },
    /// Either way: stop. `from_sender` says whose transfer is meant.
    Cancel {
        id: u64,
        from_sender: bool,
        reason: String,
    },
}

/// One decoded payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Control(&'a [u8]),
    Chunk { id: u64, offset: u64, data: &'a [u8] },
}

pub fn parse(payload: &[u8]) -> Result<Parsed<'_>, DecodeError> {
    let mut r = Reader::new(payload);
    match r.u8()? {
        CONTROL => Ok(Parsed::Control(r.rest())),
        CHUNK => {
            let id = r.varint()?;
            let offset = r.varint()?;
            Ok(Parsed::Chunk {
                id,
                offset,
                data: r.rest(),
            })
        }
        _ => Err(DecodeError::UnknownFrame),
    }
}
