//! One blob being sent: what is unsent, what is in flight, what the peer
//! acknowledged, and the BLAKE3 digest of the bytes as they first go out.

use std::time::Instant;

use super::io::BlobSource;
use super::progress::Meter;
use super::ranges::RangeSet;
use super::HASH_STEP;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// Offered, waiting for Accept.
    Offered,
    /// Sending chunks.
    Sending,
}

pub struct Outgoing {
    pub size: u64,
    pub priority: u8,
    pub state: OutState,
    source: Box<dyn BlobSource>,
    /// Bytes to send: never sent, or sent and lost.
    unsent: RangeSet,
    acked: RangeSet,
    /// First transmissions are in order; everything below this is hashed
    /// or waiting in `unhashed`.
    first_sent_upto: u64,
    hasher: blake3::Hasher,
    /// First-sent bytes gathered into one [`HASH_STEP`] for the hasher.
    unhashed: Vec<u8>,
    pub digest: Option<[u8; 32]>,
    /// Whether the Sent message (with the digest) has been queued.
    pub sent_announced: bool,
    pub meter: Meter,
}

impl Outgoing {
    pub fn new(now: Instant, source: Box<dyn BlobSource>, size: u64, priority: u8) -> Self {
        Self {
            size,
            priority,
            state: OutState::Offered,
            source,
            unsent: RangeSet::full(size),
            acked: RangeSet::new(),
            first_sent_upto: 0,
            hasher: blake3::Hasher::new(),
            unhashed: Vec::new(),
            digest: (size == 0).then(|| blake3::hash(&[]).into()),
            sent_announced: false,
            meter: Meter::new(now, size),
        }
    }

    pub fn has_chunks(&self) -> bool {
        self.state == OutState::Sending && !self.unsent.is_empty()
    }

    /// Takes the next range to send, at most `max` bytes.
    pub fn next_range(&mut self, max: usize) -> Option<(u64, usize)> {
        let (start, end) = self.unsent.take_front(max as u64)?;
        Some((start, (end - start) as usize))
    }

    /// Reads a range taken by [`Self::next_range`] into `buf` (its length).
    pub fn read_range(&mut self, start: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let len = buf.len();
        let end = start + len as u64;
        let n = self.source.read_at(start, buf)?;
        if n < len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "blob source shorter than announced",
            ));
        }
        // A re-sent range merged with unsent data can straddle the frontier:
        // hash exactly the part that goes out for the first time.
        if start <= self.first_sent_upto && self.first_sent_upto < end {
            let new = (self.first_sent_upto - start) as usize;
            self.absorb(&buf[new..len]);
            self.first_sent_upto = end;
            if end == self.size {
                self.hasher.update(&self.unhashed);
                self.unhashed = Vec::new();
                self.digest = Some(self.hasher.finalize().into());
            }
        }
        Ok(())
    }

    /// Hashes first-sent bytes a [`HASH_STEP`] at a time (a packet's chunk
    /// alone would leave BLAKE3's SIMD lanes idle).
    fn absorb(&mut self, mut bytes: &[u8]) {
        if self.unhashed.capacity() == 0 {
            self.unhashed = Vec::with_capacity(HASH_STEP.min(self.size as usize));
        }
        while !bytes.is_empty() {
            let take = (HASH_STEP - self.unhashed.len()).min(bytes.len());
            self.unhashed.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.unhashed.len() == HASH_STEP {
                self.hasher.update(&self.unhashed);
                self.unhashed.clear();
            }
        }
    }

    pub fn on_delivered(&mut self, now: Instant, start: u64, end: u64) -> bool {
        self.acked.insert(start, end);
        self.meter.advance(now, self.acked.covered())
    }

    pub fn on_lost(&mut self, start: u64, end: u64) {
        if !self.acked.contains_all(start, end) {
            self.unsent.insert(start, end);
        }
    }

    /// Disjoint ranges held (a measure of memory in use).
    pub fn ranges_held(&self) -> usize {
        self.unsent.len() + self.acked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_byte_once_even_when_resends_merge_with_new_data() {
        // Longer than two hash steps, so whole steps and the tail both count.
        let data: Vec<u8> = (0..150_000u32).map(|i| (i * 7) as u8).collect();
        let now = Instant::now();
        let mut o = Outgoing::new(now, Box::new(data.clone()), data.len() as u64, 1);
        o.state = OutState::Sending;
        let mut buf = [0u8; 700];
        let mut step = 0;
        while let Some((start, len)) = o.next_range(buf.len()) {
            o.read_range(start, &mut buf[..len]).unwrap();
            // Lose every third chunk: it merges with the unsent front.
            if step % 3 == 0 {
                o.on_lost(start, start + len as u64);
            } else {
                o.on_delivered(now, start, start + len as u64);
            }
            step += 1;
            assert!(step < 10_000, "the blob never finished sending");
        }
        let expected: [u8; 32] = blake3::hash(&data).into();
        assert_eq!(o.digest, Some(expected));
    }
}
