//! Frames: the units inside a sealed packet body.
//!
//! Parsing is zero-copy and allocation-free. A body is validated in full
//! before any frame is acted on, so a packet with one bad frame changes
//! nothing.

use super::{DecodeError, NoRoom, Reader, Writer};

/// Frame type bytes. Types `0x40..=0x7f` are extension frames that carry a
/// varint length; a receiver skips the ones it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    Padding = 0x00,
    Ping = 0x01,
    Pong = 0x02,
    Ack = 0x03,
    Close = 0x04,
    /// How long the sender may hold an acknowledgement (its `max_ack_delay`).
    AckDelay = 0x05,
    Courier = 0x10,
    /// A courier payload that needs no acknowledgement.
    CourierUnacked = 0x11,
}

const EXTENSION_FIRST: u8 = 0x40;
const EXTENSION_LAST: u8 = 0x7f;

/// The longest acknowledgement delay a node may announce. Larger values
/// are malformed: a peer could otherwise stretch our probe timeout without
/// bound.
pub const MAX_ANNOUNCED_ACK_DELAY_US: u64 = 1_000_000;

/// Bytes a courier frame adds in front of its payload: type, id, length.
pub const COURIER_FRAME_OVERHEAD: usize = 5;

/// One decoded frame, borrowing from the packet body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A run of padding bytes (all zero).
    Padding(usize),
    Ping(u64),
    Pong(u64),
    Ack(AckFrame<'a>),
    Close(CloseFrame<'a>),
    /// The sender holds acknowledgements up to this long (microseconds).
    AckDelay(u64),
    Courier {
        id: u16,
        payload: &'a [u8],
        /// Whether it obliges the receiver to acknowledge (type 0x10) or
        /// not (0x11).
        eliciting: bool,
    },
    /// An extension frame this version does not know; skipped.
    Unknown {
        frame_type: u8,
        len: usize,
    },
}

impl Frame<'_> {
    /// Whether receiving this frame obliges the receiver to acknowledge the
    /// packet promptly. Only pings, ack-delay announcements (the sender
    /// waits to hear that it arrived) and courier data do (unless the
    /// courier said its payload needs no acknowledgement): acks, pongs,
    /// padding and close frames never cause a packet of their own.
    pub fn is_ack_eliciting(&self) -> bool {
        matches!(
            self,
            Frame::Ping(_) | Frame::AckDelay(_) | Frame::Courier { eliciting: true, .. }
        )
    }
}

/// Why the peer closed, with a short human reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    pub code: u16,
    pub reason: &'a [u8],
}

/// An acknowledgement: the largest packet number received, how long the
/// sender held the ack, and ranges of received packet numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFrame<'a> {
    pub largest: u64,
    pub delay_us: u64,
    pub ranges: AckRanges<'a>,
}

/// The ranges of an [`AckFrame`], decoded lazily. Validated when the frame
/// was parsed, so iteration cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRanges<'a> {
    largest: u64,
    first_range: u64,
    count: u64,
    encoded: &'a [u8],
}

impl<'a> AckRanges<'a> {
    fn validate(&self) -> Result<(), DecodeError> {
        let mut it = self.clone().into_iter();
        while it.next_checked()?.is_some() {}
        Ok(())
    }
}

impl<'a> IntoIterator for AckRanges<'a> {
    type Item = (u64, u64);
    type IntoIter = AckRangeIter<'a>;
    fn into_iter(self) -> AckRangeIter<'a> {
        AckRangeIter {
            reader: Reader::new(self.encoded),
            next_largest: Some(self.largest),
            first_len: Some(self.first_range),
            left: self.count,
        }
    }
}

/// Yields inclusive `(smallest, largest)` ranges, highest first.
#[derive(Debug, Clone)]
pub struct AckRangeIter<'a> {
    reader: Reader<'a>,
    next_largest: Option<u64>,
    first_len: Option<u64>,
    left: u64,
}

impl AckRangeIter<'_> {
    fn next_checked(&mut self) -> Result<Option<(u64, u64)>, DecodeError> {
        let Some(largest) = self.next_largest else {
            return Ok(None);
        };
        let len = match self.first_len.take() {
            Some(len) => len,
            None => {
                if self.left == 0 {
                    return Ok(None);
                }
                self.left -= 1;
                let gap = self.reader.varint()?;
                let len = self.reader.varint()?;
                // `largest` here is the previous range's smallest.
                let next = largest
                    .checked_sub(gap)
                    .and_then(|v| v.checked_sub(2))
                    .ok_or(DecodeError::BadFrame)?;
                self.next_largest = Some(next);
                return self.finish(next, len);
            }
        };
        self.finish(largest, len)
    }

    fn finish(&mut self, largest: u64, len: u64) -> Result<Option<(u64, u64)>, DecodeError> {
        let smallest = largest.checked_sub(len).ok_or(DecodeError::BadFrame)?;
        self.next_largest = Some(smallest);
        Ok(Some((smallest, largest)))
    }
}

impl Iterator for AckRangeIter<'_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        self.next_checked().ok().flatten()
    }
}

/// Iterates the frames of a packet body.
#[derive(Debug, Clone)]
pub struct FrameIter<'a> {
    reader: Reader<'a>,
}

impl<'a> FrameIter<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Self {
            reader: Reader::new(body),
        }
    }

    /// Checks that the whole body parses, without acting on it.
    pub fn validate(body: &'a [u8]) -> Result<(), DecodeError> {
        let mut it = Self::new(body);
        while it.next_frame()?.is_some() {}
        Ok(())
    }

    pub fn next_frame(&mut self) -> Result<Option<Frame<'a>>, DecodeError> {
        let r = &mut self.reader;
        if r.is_empty() {
            return Ok(None);
        }
        let frame_type = r.u8()?;
        let frame = match frame_type {
            0x00 => {
                let mut n = 1;
                while r.remaining() > 0 && r.clone().u8()? == 0 {
                    r.u8()?;
                    n += 1;
                }
                Frame::Padding(n)
            }
            0x01 => Frame::Ping(r.varint()?),
            0x02 => Frame::Pong(r.varint()?),
            0x03 => {
                let largest = r.varint()?;
                let delay_us = r.varint()?;
                let count = r.varint()?;
                let first_range = r.varint()?;
                let start = r.position();
                let mut probe = r.clone();
                for _ in 0..count {
                    probe.varint()?;
                    probe.varint()?;
                }
                let encoded = r.take(probe.position() - start)?;
                let ranges = AckRanges {
                    largest,
                    first_range,
                    count,
                    encoded,
                };
                ranges.validate()?;
                Frame::Ack(AckFrame {
                    largest,
                    delay_us,
                    ranges,
                })
            }
            0x04 => {
                let code = r.u16()?;
                let len = usize::from(r.u8()?);
                Frame::Close(CloseFrame {
                    code,
                    reason: r.take(len)?,
                })
            }
            0x05 => {
                let us = r.varint()?;
                if us > MAX_ANNOUNCED_ACK_DELAY_US {
                    return Err(DecodeError::BadFrame);
                }
                Frame::AckDelay(us)
            }
            0x10 | 0x11 => {
                let id = r.u16()?;
                let len = usize::from(r.u16()?);
                Frame::Courier {
                    id,
                    payload: r.take(len)?,
                    eliciting: frame_type == 0x10,
                }
            }
            EXTENSION_FIRST..=EXTENSION_LAST => {
                let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::Truncated)?;
                r.take(len)?;
                Frame::Unknown { frame_type, len }
            }
            _ => return Err(DecodeError::UnknownFrame),
        };
        Ok(Some(frame))
    }
}

impl<'a> Iterator for FrameIter<'a> {
    type Item = Result<Frame<'a>, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

// ---- encoding ----

pub fn write_ping(w: &mut Writer<'_>, token: u64) -> Result<(), NoRoom> {
    atomic(w, |w| {
        w.u8(FrameType::Ping as u8)?;
        w.varint(token)
    })
}

pub fn write_pong(w: &mut Writer<'_>, token: u64) -> Result<(), NoRoom> {
    atomic(w, |w| {
        w.u8(FrameType::Pong as u8)?;
        w.varint(token)
    })
}

pub fn write_ack_delay(w: &mut Writer<'_>, us: u64) -> Result<(), NoRoom> {
    atomic(w, |w| {
        w.u8(FrameType::AckDelay as u8)?;
        w.varint(us.min(MAX_ANNOUNCED_ACK_DELAY_US))
    })
}

pub fn write_close(w: &mut Writer<'_>, code: u16, reason: &[u8]) -> Result<(), NoRoom> {
    let reason = &reason[..reason.len().min(usize::from(u8::MAX))];
    atomic(w, |w| {
        w.u8(FrameType::Close as u8)?;
        w.u16(code)?;
        w.u8(reason.len() as u8)?;
        w.bytes(reason)
    })
}

pub fn write_padding(w: &mut Writer<'_>, n: usize) -> Result<(), NoRoom> {
    w.reserve(n)?.fill(0);
    Ok(())
}

/// Writes an ack frame from inclusive ranges given highest first, as many as
/// fit (at least the first). Returns how many ranges were written.
pub fn write_ack(
    w: &mut Writer<'_>,
    delay_us: u64,
    ranges: impl Iterator<Item = (u64, u64)>,
    max_ranges: usize,
) -> Result<usize, NoRoom> {
    let mut ranges = ranges.peekable();
    let Some(&(first_lo, first_hi)) = ranges.peek() else {
        return Ok(0);
    };
    ranges.next();
    let start = w.len();
    let mut extra = 0usize;
    // The range count precedes the ranges, so measure what fits first.
    let mut scratch = [0u8; 16];
    let budget_after_header = {
        let head = 1
            + super::varint_len(first_hi)
            + super::varint_len(delay_us.min(super::VARINT_MAX))
            + 1 // count, assumed small; re-checked below
            + super::varint_len(first_hi - first_lo);
        w.remaining().checked_sub(head).ok_or(NoRoom)?
    };
    let mut used = 0usize;
    let mut prev_lo = first_lo;
    // Room for as many ranges as a packet ever carries (the send path asks
    // for 16): a larger array is zeroed on every call for nothing.
    let mut pairs: [(u64, u64); 32] = [(0, 0); 32];
    for (lo, hi) in ranges {
        if extra >= max_ranges.min(pairs.len()) || hi + 2 > prev_lo {
            break;
        }
        let gap = prev_lo - hi - 2;
        let len = hi - lo;
        let mut sw = Writer::new(&mut scratch);
        sw.varint(gap).map_err(|_| NoRoom)?;
        sw.varint(len).map_err(|_| NoRoom)?;
        if used + sw.len() > budget_after_header {
            break;
        }
        used += sw.len();
        pairs[extra] = (gap, len);
        extra += 1;
        prev_lo = lo;
    }
    let res = (|| {
        w.u8(FrameType::Ack as u8)?;
        w.varint(first_hi)?;
        w.varint(delay_us.min(super::VARINT_MAX))?;
        w.varint(extra as u64)?;
        w.varint(first_hi - first_lo)?;
        for &(gap, len) in &pairs[..extra] {
            w.varint(gap)?;
            w.varint(len)?;
        }
        Ok(extra + 1)
    })();
    if res.is_err() {
        w.truncate(start);
    }
    res
}

/// Writes a courier frame and lets `fill` write the payload into at most
/// `max_payload` bytes; `fill` returns the payload's length and whether the
/// peer must acknowledge it (type 0x10) or not (0x11). Returns the payload
/// length; a zero-length payload writes nothing at all.
pub fn write_courier(
    w: &mut Writer<'_>,
    id: u16,
    max_payload: usize,
    fill: impl FnOnce(&mut [u8]) -> (usize, bool),
) -> Result<usize, NoRoom> {
    let cap = max_payload
        .min(w.remaining().saturating_sub(COURIER_FRAME_OVERHEAD))
        .min(usize::from(u16::MAX));
    if cap == 0 {
        return Err(NoRoom);
    }
    let start = w.len();
    let region = w.reserve(COURIER_FRAME_OVERHEAD + cap)?;
    let (n, eliciting) = fill(&mut region[COURIER_FRAME_OVERHEAD..]);
    let n = n.min(cap);
    region[0] = if eliciting {
        FrameType::Courier
    } else {
        FrameType::CourierUnacked
    } as u8;
    region[1..3].copy_from_slice(&id.to_be_bytes());
    region[3..5].copy_from_slice(&(n as u16).to_be_bytes());
    w.truncate(if n == 0 {
        start
    } else {
        start + COURIER_FRAME_OVERHEAD + n
    });
    Ok(n)
}

fn atomic<T>(w: &mut Writer<'_>, f: impl FnOnce(&mut Writer<'_>) -> Result<T, NoRoom>) -> Result<T, NoRoom> {
    let start = w.len();
    let res = f(w);
    if res.is_err() {
        w.truncate(start);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(body: &[u8]) -> Vec<Frame<'_>> {
        FrameIter::new(body).collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn every_frame_round_trips() {
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        write_ping(&mut w, 77).unwrap();
        write_pong(&mut w, 1 << 40).unwrap();
        write_close(&mut w, 3, b"bye").unwrap();
        write_courier(&mut w, 9, 100, |b| {
            b[..4].copy_from_slice(b"abcd");
            (4, true)
        })
        .unwrap();
        write_ack(&mut w, 250, [(90, 100), (50, 80), (10, 10)].into_iter(), 8).unwrap();
        write_padding(&mut w, 5).unwrap();
        let n = w.len();
        let frames = parse_all(&buf[..n]);
        assert_eq!(frames[0], Frame::Ping(77));
        assert_eq!(frames[1], Frame::Pong(1 << 40));
        assert!(matches!(&frames[2], Frame::Close(c) if c.code == 3 && c.reason == b"bye"));
        assert_eq!(
            frames[3],
            Frame::Courier {
                id: 9,
                payload: b"abcd",
                eliciting: true
            }
        );
        let Frame::Ack(ack) = &frames[4] else {
            panic!("expected ack, got {:?}", frames[4])
        };
        assert_eq!(ack.largest, 100);
        assert_eq!(ack.delay_us, 250);
        let ranges: Vec<_> = ack.ranges.clone().into_iter().collect();
        assert_eq!(ranges, vec![(90, 100), (50, 80), (10, 10)]);
        assert_eq!(frames[5], Frame::Padding(5));
    }

    #[test]
    fn an_unacknowledged_courier_frame_is_type_0x11_and_elicits_nothing() {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        write_courier(&mut w, 9, 100, |b| {
            b[..2].copy_from_slice(b"ok");
            (2, false)
        })
        .unwrap();
        let n = w.len();
        assert_eq!(buf[0], 0x11);
        let frames = parse_all(&buf[..n]);
        assert_eq!(
            frames[0],
            Frame::Courier {
                id: 9,
                payload: b"ok",
                eliciting: false
            }
        );
        assert!(!frames[0].is_ack_eliciting());
    }

    #[test]
    fn an_ack_delay_round_trips_elicits_an_ack_and_is_bounded() {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf);
        write_ack_delay(&mut w, 100_000).unwrap();
        let n = w.len();
        assert_eq!(buf[0], 0x05);
        let frames = parse_all(&buf[..n]);
        assert_eq!(frames[0], Frame::AckDelay(100_000));
        assert!(frames[0].is_ack_eliciting());
        // Over a second is malformed, not clamped.
        let mut w = Writer::new(&mut buf);
        w.u8(0x05).unwrap();
        w.varint(MAX_ANNOUNCED_ACK_DELAY_US + 1).unwrap();
        let n = w.len();
        assert_eq!(FrameIter::validate(&buf[..n]), Err(DecodeError::BadFrame));
    }

    #[test]
    fn unknown_extension_frames_are_skipped_but_unknown_core_frames_are_errors() {
        let body = [0x41, 0x02, 0xaa, 0xbb, 0x01, 0x05];
        let frames = parse_all(&body);
        assert_eq!(
            frames[0],
            Frame::Unknown {
                frame_type: 0x41,
                len: 2
            }
        );
        assert_eq!(frames[1], Frame::Ping(5));
        assert_eq!(
            FrameIter::validate(&[0x01, 0x05, 0x20]),
            Err(DecodeError::UnknownFrame)
        );
    }

    #[test]
    fn ack_ranges_that_underflow_are_rejected() {
        // largest 3, first range 2 → smallest 1, then gap 5 underflows.
        let body = [0x03, 3, 0, 1, 2, 5, 0];
        assert_eq!(FrameIter::validate(&body), Err(DecodeError::BadFrame));
        // A first range longer than largest.
        assert_eq!(
            FrameIter::validate(&[0x03, 3, 0, 0, 9]),
            Err(DecodeError::BadFrame)
        );
    }

    #[test]
    fn ack_writer_drops_ranges_that_do_not_fit_and_keeps_the_frame_valid() {
        let ranges: Vec<(u64, u64)> = (0..40u64).rev().map(|i| (i * 10, i * 10 + 5)).collect();
        let mut buf = [0u8; 30];
        let mut w = Writer::new(&mut buf);
        let written = write_ack(&mut w, 0, ranges.iter().copied(), 64).unwrap();
        assert!(written > 1 && written < 40);
        let n = w.len();
        let frames = parse_all(&buf[..n]);
        let Frame::Ack(ack) = &frames[0] else { panic!() };
        let got: Vec<_> = ack.ranges.clone().into_iter().collect();
        assert_eq!(got, ranges[..written].to_vec());
    }

    #[test]
    fn courier_frame_with_no_payload_writes_nothing() {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        assert_eq!(write_courier(&mut w, 1, 10, |_| (0, true)).unwrap(), 0);
        assert!(w.is_empty());
    }

    #[test]
    fn truncated_frames_are_errors() {
        assert_eq!(
            FrameIter::validate(&[0x10, 0, 1, 0, 9, 1]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            FrameIter::validate(&[0x04, 0, 1, 200]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(FrameIter::validate(&[0x45, 0xff]), Err(DecodeError::Truncated));
    }
}
