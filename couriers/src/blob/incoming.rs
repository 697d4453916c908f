//! One blob being received: chunks written in place (bounds-checked),
//! which ranges arrived, and incremental verification of the BLAKE3 digest.

use std::time::Instant;

use super::io::BlobSink;
use super::progress::Meter;
use super::ranges::RangeSet;
use super::HASH_STEP;

/// Why a chunk was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Offset and length reach past the announced size.
    OutOfBounds,
}

pub struct Incoming {
    pub size: u64,
    sink: Box<dyn BlobSink>,
    received: RangeSet,
    /// Everything below this has been read back and hashed.
    hashed_upto: u64,
    hasher: blake3::Hasher,
    pub expected: Option<[u8; 32]>,
    pub meter: Meter,
    buf: Vec<u8>,
}

/// Where verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pending,
    Verified([u8; 32]),
    Mismatch,
}

impl Incoming {
    pub fn new(now: Instant, size: u64, sink: Box<dyn BlobSink>) -> Self {
        Self {
            size,
            sink,
            received: RangeSet::new(),
            hashed_upto: 0,
            hasher: blake3::Hasher::new(),
            expected: None,
            meter: Meter::new(now, size),
            buf: Vec::new(),
        }
    }

    /// Writes a chunk in place. Never writes outside `0..size`.
    pub fn write(
        &mut self,
        now: Instant,
        offset: u64,
        data: &[u8],
    ) -> Result<std::io::Result<bool>, ChunkError> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(ChunkError::OutOfBounds)?;
        if end > self.size {
            return Err(ChunkError::OutOfBounds);
        }
        if let Err(e) = self.sink.write_at(offset, data) {
            return Ok(Err(e));
        }
        self.received.insert(offset, end);
        Ok(Ok(self.meter.advance(now, self.received.covered())))
    }

    /// Hashes whatever contiguous data is new, a bounded step at a time.
    pub fn verify_step(&mut self) -> std::io::Result<Verdict> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; HASH_STEP];
        }
        let mut budget = 4;
        while budget > 0 && self.hashed_upto < self.size {
            let (_, end) = match self.received.first() {
                Some((s, e)) if s == 0 => (s, e),
                _ => break,
            };
            if end <= self.hashed_upto {
                break;
            }
            let n = ((end - self.hashed_upto) as usize).min(HASH_STEP);
            if n < HASH_STEP && end < self.size {
                break;
            }
            let got = self.sink.read_at(self.hashed_upto, &mut self.buf[..n])?;
            if got == 0 {
                break;
            }
            self.hasher.update(&self.buf[..got]);
            self.hashed_upto += got as u64;
            budget -= 1;
        }
        if self.hashed_upto < self.size {
            return Ok(Verdict::Pending);
        }
        let Some(expected) = self.expected else {
            return Ok(Verdict::Pending);
        };
        let got: [u8; 32] = self.hasher.finalize().into();
        Ok(if got == expected {
            Verdict::Verified(got)
        } else {
            Verdict::Mismatch
        })
    }

    /// Whether hashing has fallen behind the data (work for a timer).
    pub fn verify_behind(&self) -> bool {
        let contiguous = self
            .received
            .first()
            .filter(|&(s, _)| s == 0)
            .map_or(0, |(_, e)| e);
        contiguous >= self.hashed_upto + HASH_STEP as u64
            || (contiguous == self.size && self.hashed_upto < self.size)
            || (self.size == 0 && self.expected.is_some())
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        self.sink.finish()
    }

    pub fn abort(&mut self) {
        self.sink.abort();
    }

    pub fn ranges_held(&self) -> usize {
        self.received.len()
    }
}
