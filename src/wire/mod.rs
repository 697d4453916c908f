//! Wire format v1: the packet header, the frames inside sealed packets and
//! the three handshake messages. `docs/protocol.md` specifies every byte; the
//! two must change together.
//!
//! Everything here is hand-written and bounds-checked: decoding never panics
//! and never allocates.

mod buf;
mod frame;
mod handshake;
mod retry;

pub use buf::{varint_len, NoRoom, Reader, Writer, VARINT_MAX};
pub use frame::{
    write_ack, write_ack_delay, write_close, write_courier, write_padding, write_ping, write_pong,
    COURIER_FRAME_OVERHEAD, MAX_ANNOUNCED_ACK_DELAY_US,
};
pub use frame::{AckFrame, AckRanges, CloseFrame, Frame, FrameIter, FrameType};
pub use handshake::{
    append_signature as append_signature_to, HandshakeFields, HsAck, SignedMessage, Syn, SynAck,
    HS_NONCE_LEN, MAX_SIGNATURE_LEN,
};
pub use retry::{decode_retry, encode_retry, trailer_cookie, with_cookie, Cookie, COOKIE_LEN, RETRY_LEN};

/// The first two bytes of every octolink datagram ("ol").
pub const MAGIC: [u8; 2] = [0x6f, 0x6c];
/// The wire format version this code speaks.
pub const VERSION: u8 = 1;
/// Length of the plaintext header that starts every datagram.
pub const HEADER_LEN: usize = 14;
/// Length of the AES-256-GCM authentication tag that ends every sealed packet.
pub const TAG_LEN: usize = 16;
/// The default, and smallest, datagram size limit.
pub const MIN_DATAGRAM: usize = 512;
/// The largest datagram that crosses a 1500-byte Ethernet MTU without
/// fragmentation (less IPv6 and UDP headers): the usual limit on real links.
pub const ETHERNET_DATAGRAM: usize = 1452;
/// The largest datagram size limit that may be configured: a 9000-byte
/// jumbo frame less IPv6 and UDP headers. Worth it on loopback (one robot's
/// processes) and on jumbo-frame links; elsewhere the IP layer fragments.
pub const MAX_DATAGRAM: usize = 8952;
/// Packet numbers are 48 bits on the wire.
pub const MAX_PACKET_NUMBER: u64 = (1 << 48) - 1;

/// Why a datagram could not be decoded. Each reason has its own counter in
/// [`crate::Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    #[error("datagram shorter than its structure requires")]
    Truncated,
    #[error("not an octolink datagram (bad magic)")]
    BadMagic,
    #[error("unsupported protocol version")]
    BadVersion,
    #[error("unknown packet type")]
    BadPacketType,
    #[error("session id is zero where it must not be, or non-zero where it must be")]
    BadSessionId,
    #[error("datagram larger than the protocol allows")]
    Oversized,
    #[error("unknown frame type")]
    UnknownFrame,
    #[error("malformed frame")]
    BadFrame,
    #[error("bytes left over after the last field")]
    TrailingBytes,
    #[error("malformed handshake message")]
    BadHandshake,
}

/// The packet types of the header's fourth byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Syn = 1,
    SynAck = 2,
    Ack = 3,
    Data = 4,
    Close = 5,
    Retry = 6,
}

impl PacketType {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            1 => Self::Syn,
            2 => Self::SynAck,
            3 => Self::Ack,
            4 => Self::Data,
            5 => Self::Close,
            6 => Self::Retry,
            _ => return Err(DecodeError::BadPacketType),
        })
    }

    /// Data and Close packets are sealed with the session keys; the
    /// handshake messages are signed plaintext.
    pub fn is_sealed(self) -> bool {
        matches!(self, Self::Data | Self::Close)
    }
}

/// The 14-byte plaintext header. It is authenticated: signed as part of a
/// handshake message, or fed to AES-GCM as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub packet_type: PacketType,
    /// The *receiver's* session id; zero only in a SYN.
    pub session_id: u32,
    /// Zero in handshake messages; unique per key in sealed packets.
    pub packet_number: u64,
}

impl Header {
    /// Decodes the header and checks the rules that need no state.
    pub fn decode(datagram: &[u8]) -> Result<Self, DecodeError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(DecodeError::Oversized);
        }
        let mut r = Reader::new(datagram);
        if r.array::<2>()? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if r.u8()? != VERSION {
            return Err(DecodeError::BadVersion);
        }
        let packet_type = PacketType::from_u8(r.u8()?)?;
        let session_id = r.u32()?;
        let packet_number = r.u48()?;
        if (packet_type == PacketType::Syn) != (session_id == 0) {
            return Err(DecodeError::BadSessionId);
        }
        Ok(Self {
            packet_type,
            session_id,
            packet_number,
        })
    }

    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        w.bytes(&MAGIC)?;
        w.u8(VERSION)?;
        w.u8(self.packet_type as u8)?;
        w.u32(self.session_id)?;
        w.u48(self.packet_number)
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer::new(&mut out);
        // A 14-byte header always fits its 14-byte array.
        let _ = self.encode(&mut w);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            packet_type: PacketType::Data,
            session_id: 0xdead_beef,
            packet_number: MAX_PACKET_NUMBER,
        };
        let bytes = h.to_bytes();
        assert_eq!(&bytes[..4], &[0x6f, 0x6c, 1, 4]);
        assert_eq!(Header::decode(&bytes).unwrap(), h);
    }

    #[test]
    fn header_rejects_foreign_and_inconsistent_datagrams() {
        let good = Header {
            packet_type: PacketType::Syn,
            session_id: 0,
            packet_number: 0,
        }
        .to_bytes();
        let mut bad = good;
        bad[0] = b'x';
        assert_eq!(Header::decode(&bad), Err(DecodeError::BadMagic));
        let mut bad = good;
        bad[2] = 9;
        assert_eq!(Header::decode(&bad), Err(DecodeError::BadVersion));
        let mut bad = good;
        bad[3] = 0;
        assert_eq!(Header::decode(&bad), Err(DecodeError::BadPacketType));
        let mut bad = good;
        bad[7] = 1;
        assert_eq!(Header::decode(&bad), Err(DecodeError::BadSessionId));
        assert_eq!(Header::decode(&good[..13]), Err(DecodeError::Truncated));
        assert_eq!(
            Header::decode(&[0u8; MAX_DATAGRAM + 1]),
            Err(DecodeError::Oversized)
        );
    }
}
