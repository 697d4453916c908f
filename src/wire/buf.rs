//! Bounds-checked cursors over byte slices. Every read of untrusted bytes in
//! the codec goes through [`Reader`], so a short or malformed datagram becomes
//! a [`DecodeError`] rather than a panic.

use super::DecodeError;

/// A read cursor that never reads past the end of its slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.bytes.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u48(&mut self) -> Result<u64, DecodeError> {
        let b: [u8; 6] = self.array()?;
        let mut full = [0u8; 8];
        full[2..].copy_from_slice(&b);
        Ok(u64::from_be_bytes(full))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A QUIC-style variable-length integer (RFC 9000 §16): the two top bits
    /// of the first byte give the length (1, 2, 4 or 8 bytes).
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let first = self.u8()?;
        let len = 1usize << (first >> 6);
        let mut value = u64::from(first & 0x3f);
        for &b in self.take(len - 1)? {
            value = (value << 8) | u64::from(b);
        }
        Ok(value)
    }

    /// The rest of the slice.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        out
    }
}

/// A write cursor with a hard capacity: writes that do not fit fail and leave
/// the buffer unchanged, so a packet can never grow past its size limit.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

/// Returned when a write does not fit in the remaining capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no room left in the packet")]
pub struct NoRoom;

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }

    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn into_written(self) -> &'a mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Gives back `n` bytes of writable space and advances past them.
    pub fn reserve(&mut self, n: usize) -> Result<&mut [u8], NoRoom> {
        if n > self.remaining() {
            return Err(NoRoom);
        }
        let start = self.len;
        self.len += n;
        Ok(&mut self.buf[start..start + n])
    }

    /// Drops everything written after `len`.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn bytes(&mut self, b: &[u8]) -> Result<(), NoRoom> {
        self.reserve(b.len())?.copy_from_slice(b);
        Ok(())
    }

    pub fn u8(&mut self, v: u8) -> Result<(), NoRoom> {
        self.bytes(&[v])
    }

    pub fn u16(&mut self, v: u16) -> Result<(), NoRoom> {
        self.bytes(&v.to_be_bytes())
    }

    pub fn u32(&mut self, v: u32) -> Result<(), NoRoom> {
        self.bytes(&v.to_be_bytes())
    }

    pub fn u48(&mut self, v: u64) -> Result<(), NoRoom> {
        self.bytes(&v.to_be_bytes()[2..])
    }

    pub fn u64(&mut self, v: u64) -> Result<(), NoRoom> {
        self.bytes(&v.to_be_bytes())
    }

    pub fn varint(&mut self, v: u64) -> Result<(), NoRoom> {
        let len = varint_len(v);
        let out = self.reserve(len)?;
        // Fixed-size copies per length: a slice copy of variable length is
        // a call to memcpy, and varints are written several per packet.
        match out {
            [b] => *b = v as u8,
            [_, _] => out.copy_from_slice(&(v as u16 | 0x4000).to_be_bytes()),
            [_, _, _, _] => out.copy_from_slice(&(v as u32 | 0x8000_0000).to_be_bytes()),
            _ => out.copy_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes()),
        }
        Ok(())
    }
}

/// The largest value a varint can carry.
pub const VARINT_MAX: u64 = (1 << 62) - 1;

/// How many bytes [`Writer::varint`] uses for `v` (values above
/// [`VARINT_MAX`] are clamped by the caller; they never occur on our wire).
pub fn varint_len(v: u64) -> usize {
    if v < 1 << 6 {
        1
    } else if v < 1 << 14 {
        2
    } else if v < 1 << 30 {
        4
    } else {
        8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_at_every_length_boundary() {
        for v in [0, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, VARINT_MAX] {
            let mut buf = [0u8; 8];
            let mut w = Writer::new(&mut buf);
            w.varint(v).unwrap();
            assert_eq!(w.len(), varint_len(v));
            let n = w.len();
            let mut r = Reader::new(&buf[..n]);
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn reads_past_the_end_are_errors_not_panics() {
        let mut r = Reader::new(&[0x40]);
        assert_eq!(r.varint(), Err(DecodeError::Truncated));
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), Err(DecodeError::Truncated));
        assert_eq!(r.take(usize::MAX), Err(DecodeError::Truncated));
    }

    #[test]
    fn writes_past_capacity_fail_and_change_nothing() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.u16(7).unwrap();
        assert_eq!(w.u16(9), Err(NoRoom));
        assert_eq!(w.len(), 2);
    }
}
