//! The return-routability check: a RETRY carries a cookie to the address a
//! SYN came from, and the SYN comes back carrying it in a trailer after its
//! signature (outside the signed part, so the SYN need not be re-signed).
//! Only a sender that receives at its claimed address can return a cookie,
//! so a spoofed SYN never costs the responder an RSA verification once
//! cookies are required.

use super::{DecodeError, Header, NoRoom, PacketType, Reader, Writer, HEADER_LEN};

pub const COOKIE_LEN: usize = 16;
/// Marks a cookie trailer after a SYN's signature.
pub const COOKIE_TAG: u8 = 0xc0;
/// A RETRY: header, then the cookie.
pub const RETRY_LEN: usize = HEADER_LEN + COOKIE_LEN;

pub type Cookie = [u8; COOKIE_LEN];

/// Writes a RETRY answering the SYN that asked to be addressed by
/// `initiator_session`.
pub fn encode_retry(initiator_session: u32, cookie: &Cookie, buf: &mut [u8]) -> Result<usize, NoRoom> {
    let mut w = Writer::new(buf);
    Header {
        packet_type: PacketType::Retry,
        session_id: initiator_session,
        packet_number: 0,
    }
    .encode(&mut w)?;
    w.bytes(cookie)?;
    Ok(w.len())
}

/// Reads a RETRY: the session id it answers, and the cookie.
pub fn decode_retry(datagram: &[u8]) -> Result<(u32, Cookie), DecodeError> {
    let header = Header::decode(datagram)?;
    if header.packet_type != PacketType::Retry {
        return Err(DecodeError::BadPacketType);
    }
    let mut r = Reader::new(datagram);
    r.take(HEADER_LEN)?;
    let cookie = r.array()?;
    if !r.rest().is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok((header.session_id, cookie))
}

/// The cookie in a SYN's trailer (the bytes after its signature): all
/// zeros is none; `COOKIE_TAG ‖ cookie` then zeros is one; anything else is
/// `TrailingBytes`.
pub fn trailer_cookie(trailer: &[u8]) -> Result<Option<Cookie>, DecodeError> {
    match trailer.first() {
        None => Ok(None),
        Some(&COOKIE_TAG) => {
            let mut r = Reader::new(&trailer[1..]);
            let cookie = r.array().map_err(|_| DecodeError::TrailingBytes)?;
            if r.rest().iter().any(|&b| b != 0) {
                return Err(DecodeError::TrailingBytes);
            }
            Ok(Some(cookie))
        }
        Some(_) if trailer.iter().all(|&b| b == 0) => Ok(None),
        Some(_) => Err(DecodeError::TrailingBytes),
    }
}

/// `syn` (a whole SYN datagram whose trailer starts at `trailer_at`) with
/// its trailer replaced by `cookie`, padded to no shorter than before.
pub fn with_cookie(syn: &[u8], trailer_at: usize, cookie: &Cookie) -> Vec<u8> {
    let mut out = Vec::with_capacity(syn.len().max(trailer_at + 1 + COOKIE_LEN));
    out.extend_from_slice(&syn[..trailer_at.min(syn.len())]);
    out.push(COOKIE_TAG);
    out.extend_from_slice(cookie);
    if out.len() < syn.len() {
        out.resize(syn.len(), 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_round_trips_and_rejects_extra_bytes() {
        let mut buf = [0u8; 64];
        let n = encode_retry(7, &[9; COOKIE_LEN], &mut buf).unwrap();
        assert_eq!(n, RETRY_LEN);
        assert_eq!(decode_retry(&buf[..n]), Ok((7, [9; COOKIE_LEN])));
        assert_eq!(decode_retry(&buf[..n + 1]), Err(DecodeError::TrailingBytes));
        assert_eq!(decode_retry(&buf[..n - 1]), Err(DecodeError::Truncated));
        let mut zero_session = buf;
        zero_session[4..8].copy_from_slice(&[0; 4]);
        assert_eq!(decode_retry(&zero_session[..n]), Err(DecodeError::BadSessionId));
    }

    #[test]
    fn trailers_hold_padding_or_one_cookie() {
        assert_eq!(trailer_cookie(&[]), Ok(None));
        assert_eq!(trailer_cookie(&[0; 30]), Ok(None));
        let mut t = vec![COOKIE_TAG];
        t.extend_from_slice(&[5; COOKIE_LEN]);
        assert_eq!(trailer_cookie(&t), Ok(Some([5; COOKIE_LEN])));
        t.extend_from_slice(&[0; 8]);
        assert_eq!(trailer_cookie(&t), Ok(Some([5; COOKIE_LEN])));
        t.push(1);
        assert_eq!(trailer_cookie(&t), Err(DecodeError::TrailingBytes));
        assert_eq!(
            trailer_cookie(&[COOKIE_TAG, 1, 2]),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(trailer_cookie(&[0, 0, 3]), Err(DecodeError::TrailingBytes));
        let syn = [1u8, 2, 3, 0, 0];
        let with = with_cookie(&syn, 3, &[8; COOKIE_LEN]);
        assert_eq!(&with[..4], &[1, 2, 3, COOKIE_TAG]);
        assert_eq!(trailer_cookie(&with[3..]), Ok(Some([8; COOKIE_LEN])));
        // Replacing a cookie keeps one.
        let again = with_cookie(&with, 3, &[6; COOKIE_LEN]);
        assert_eq!(again.len(), with.len());
        assert_eq!(trailer_cookie(&again[3..]), Ok(Some([6; COOKIE_LEN])));
    }
}
