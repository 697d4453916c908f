//! The three handshake messages (SYN, SYN-ACK, ACK). They travel as signed
//! plaintext: the header and the fields are the signed part, followed by a
//! length-prefixed RSA-PSS signature.

use super::{DecodeError, Header, NoRoom, PacketType, Reader, Writer, HEADER_LEN};

pub const HS_NONCE_LEN: usize = 16;
/// Signatures longer than this (RSA-4096) are refused before any RSA work.
pub const MAX_SIGNATURE_LEN: usize = 512;

type Id = [u8; 32];
type Nonce = [u8; HS_NONCE_LEN];
type PublicEphemeral = [u8; 32];

/// SYN: the initiator's opening message (session id 0 in the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syn {
    pub initiator: Id,
    pub responder: Id,
    /// The session id the initiator wants to be addressed by.
    pub session_id: u32,
    pub nonce: Nonce,
    pub ephemeral: PublicEphemeral,
    pub timestamp_us: u64,
    pub max_datagram: u16,
}

/// SYN-ACK: the responder's answer, addressed to the initiator's session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynAck {
    pub responder: Id,
    pub session_id: u32,
    pub nonce: Nonce,
    pub ephemeral: PublicEphemeral,
    pub timestamp_us: u64,
    pub max_datagram: u16,
}

/// ACK: the initiator's final message, addressed to the responder's session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsAck {
    pub initiator: Id,
    pub nonce: Nonce,
    pub ephemeral: PublicEphemeral,
    pub timestamp_us: u64,
}

/// A decoded handshake message: its fields, the bytes its signature covers
/// (header included) and the signature.
#[derive(Debug, Clone)]
pub struct SignedMessage<'a, T> {
    pub header: Header,
    pub msg: T,
    pub signed: &'a [u8],
    pub signature: &'a [u8],
    /// A SYN's cookie, returned from a RETRY (see `wire::retry`).
    pub cookie: Option<super::Cookie>,
    /// Where the bytes after the signature start.
    pub trailer_at: usize,
}

/// The per-message encoding of the fields between header and signature.
pub trait HandshakeFields: Sized {
    const PACKET_TYPE: PacketType;
    /// Whether zero padding may follow the signature (only SYN, so that the
    /// reply to it is never larger than it).
    const PADDABLE: bool = false;
    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), NoRoom>;
    fn read_fields(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Writes header and fields; returns the length of the signed part.
    fn write_unsigned(&self, session_id: u32, w: &mut Writer<'_>) -> Result<usize, NoRoom> {
        Header {
            packet_type: Self::PACKET_TYPE,
            session_id,
            packet_number: 0,
        }
        .encode(w)?;
        self.write_fields(w)?;
        Ok(w.len())
    }

    /// Decodes a whole datagram holding this message.
    fn decode(datagram: &[u8]) -> Result<SignedMessage<'_, Self>, DecodeError> {
        let header = Header::decode(datagram)?;
        if header.packet_type != Self::PACKET_TYPE {
            return Err(DecodeError::BadPacketType);
        }
        let mut r = Reader::new(datagram);
        r.take(HEADER_LEN)?;
        let msg = Self::read_fields(&mut r)?;
        let signed_len = r.position();
        let sig_len = usize::from(r.u16()?);
        if sig_len == 0 || sig_len > MAX_SIGNATURE_LEN {
            return Err(DecodeError::BadHandshake);
        }
        let signature = r.take(sig_len)?;
        let trailer_at = r.position();
        let rest = r.rest();
        let cookie = if Self::PADDABLE {
            super::trailer_cookie(rest)?
        } else if rest.is_empty() {
            None
        } else {
            return Err(DecodeError::TrailingBytes);
        };
        Ok(SignedMessage {
            header,
            msg,
            signed: &datagram[..signed_len],
            signature,
            cookie,
            trailer_at,
        })
    }
}

/// Appends the signature (and, for a SYN, zero padding up to `pad_to`).
pub fn append_signature(w: &mut Writer<'_>, signature: &[u8], pad_to: usize) -> Result<(), NoRoom> {
    let len = u16::try_from(signature.len()).map_err(|_| NoRoom)?;
    w.u16(len)?;
    w.bytes(signature)?;
    if pad_to > w.len() {
        let n = pad_to - w.len();
        w.reserve(n)?.fill(0);
    }
    Ok(())
}

impl HandshakeFields for Syn {
    const PACKET_TYPE: PacketType = PacketType::Syn;
    const PADDABLE: bool = true;
    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        w.bytes(&self.initiator)?;
        w.bytes(&self.responder)?;
        w.u32(self.session_id)?;
        w.bytes(&self.nonce)?;
        w.bytes(&self.ephemeral)?;
        w.u64(self.timestamp_us)?;
        w.u16(self.max_datagram)
    }
    fn read_fields(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let msg = Self {
            initiator: r.array()?,
            responder: r.array()?,
            session_id: r.u32()?,
            nonce: r.array()?,
            ephemeral: r.array()?,
            timestamp_us: r.u64()?,
            max_datagram: r.u16()?,
        };
        if msg.session_id == 0 {
            return Err(DecodeError::BadSessionId);
        }
        Ok(msg)
    }
}

impl HandshakeFields for SynAck {
    const PACKET_TYPE: PacketType = PacketType::SynAck;
    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        w.bytes(&self.responder)?;
        w.u32(self.session_id)?;
        w.bytes(&self.nonce)?;
        w.bytes(&self.ephemeral)?;
        w.u64(self.timestamp_us)?;
        w.u16(self.max_datagram)
    }
    fn read_fields(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let msg = Self {
            responder: r.array()?,
            session_id: r.u32()?,
            nonce: r.array()?,
            ephemeral: r.array()?,
            timestamp_us: r.u64()?,
            max_datagram: r.u16()?,
        };
        if msg.session_id == 0 {
            return Err(DecodeError::BadSessionId);
        }
        Ok(msg)
    }
}

impl HandshakeFields for HsAck {
    const PACKET_TYPE: PacketType = PacketType::Ack;
    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        w.bytes(&self.initiator)?;
        w.bytes(&self.nonce)?;
        w.bytes(&self.ephemeral)?;
        w.u64(self.timestamp_us)
    }
    fn read_fields(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            initiator: r.array()?,
            nonce: r.array()?,
            ephemeral: r.array()?,
            timestamp_us: r.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn() -> Syn {
        Syn {
            initiator: [1; 32],
            responder: [2; 32],
            session_id: 42,
            nonce: [3; 16],
            ephemeral: [4; 32],
            timestamp_us: 5,
            max_datagram: 512,
        }
    }

    #[test]
    fn syn_round_trips_with_padding_and_exposes_signed_part() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        let signed_len = syn().write_unsigned(0, &mut w).unwrap();
        append_signature(&mut w, &[9u8; 256], 480).unwrap();
        assert_eq!(w.len(), 480);
        let n = w.len();
        let m = Syn::decode(&buf[..n]).unwrap();
        assert_eq!(m.msg, syn());
        assert_eq!(m.signed.len(), signed_len);
        assert_eq!(m.signature, &[9u8; 256][..]);
    }

    #[test]
    fn non_zero_padding_and_oversized_signatures_are_rejected() {
        let mut buf = [0u8; 600];
        let mut w = Writer::new(&mut buf);
        syn().write_unsigned(0, &mut w).unwrap();
        append_signature(&mut w, &[9u8; 256], 420).unwrap();
        let n = w.len();
        buf[n - 1] = 1;
        assert_eq!(Syn::decode(&buf[..n]).unwrap_err(), DecodeError::TrailingBytes);

        let mut w = Writer::new(&mut buf);
        syn().write_unsigned(0, &mut w).unwrap();
        w.u16(513).unwrap();
        let n = w.len();
        assert_eq!(Syn::decode(&buf[..n]).unwrap_err(), DecodeError::BadHandshake);
    }

    #[test]
    fn syn_ack_may_not_carry_padding() {
        let msg = SynAck {
            responder: [1; 32],
            session_id: 7,
            nonce: [0; 16],
            ephemeral: [0; 32],
            timestamp_us: 0,
            max_datagram: 512,
        };
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        msg.write_unsigned(42, &mut w).unwrap();
        append_signature(&mut w, &[1u8; 256], 0).unwrap();
        let n = w.len();
        assert_eq!(SynAck::decode(&buf[..n]).unwrap().msg, msg);
        assert_eq!(
            SynAck::decode(&buf[..n + 1]).unwrap_err(),
            DecodeError::TrailingBytes
        );
    }
}
