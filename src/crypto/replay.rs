//! The sliding replay window: rejects packet numbers seen before, or too far
//! behind the largest seen to remember.

/// Remembers the last [`ReplayWindow::SIZE`] packet numbers below the largest.
///
/// A ring of bits indexed by packet number modulo the size: advancing the
/// window clears only the bits it enters, so a new packet costs O(1) rather
/// than a shift of the whole bitmap.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    largest: Option<u64>,
    /// Bit `pn % SIZE` set: packet `pn` (within the window) was seen.
    bits: [u64; Self::WORDS],
}

/// Why a packet number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    Fresh,
    Duplicate,
    TooOld,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    const WORDS: usize = 32;
    /// How many packet numbers back the window remembers.
    pub const SIZE: u64 = 64 * Self::WORDS as u64;

    pub fn new() -> Self {
        Self {
            largest: None,
            bits: [0; Self::WORDS],
        }
    }

    pub fn largest(&self) -> Option<u64> {
        self.largest
    }

    /// Checks a packet number without recording it; call before decrypting
    /// so replays cost no AES work.
    pub fn check(&self, pn: u64) -> ReplayVerdict {
        let Some(largest) = self.largest else {
            return ReplayVerdict::Fresh;
        };
        if pn > largest {
            return ReplayVerdict::Fresh;
        }
        if largest - pn >= Self::SIZE {
            return ReplayVerdict::TooOld;
        }
        if self.bit(pn) {
            ReplayVerdict::Duplicate
        } else {
            ReplayVerdict::Fresh
        }
    }

    /// Records a packet number that authenticated.
    pub fn record(&mut self, pn: u64) {
        match self.largest {
            Some(largest) if pn <= largest => {
                if largest - pn < Self::SIZE {
                    self.set(pn);
                }
                return;
            }
            Some(largest) if pn - largest < Self::SIZE => {
                // Forget the numbers the window slides over.
                for n in largest + 1..=pn {
                    if n % 64 == 0 && pn - n >= 63 {
                        self.bits[Self::word(n)] = 0;
                    } else {
                        self.bits[Self::word(n)] &= !(1 << (n % 64));
                    }
                }
            }
            _ => self.bits = [0; Self::WORDS],
        }
        self.largest = Some(pn);
        self.set(pn);
    }

    fn word(pn: u64) -> usize {
        ((pn / 64) % Self::WORDS as u64) as usize
    }

    fn bit(&self, pn: u64) -> bool {
        self.bits[Self::word(pn)] & (1 << (pn % 64)) != 0
    }

    fn set(&mut self, pn: u64) {
        self.bits[Self::word(pn)] |= 1 << (pn % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicates_and_too_old_are_rejected() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(5), ReplayVerdict::Fresh);
        w.record(5);
        assert_eq!(w.check(5), ReplayVerdict::Duplicate);
        assert_eq!(w.check(4), ReplayVerdict::Fresh);
        w.record(5000);
        assert_eq!(w.check(5), ReplayVerdict::TooOld);
        assert_eq!(w.check(5000 - 2047), ReplayVerdict::Fresh);
        assert_eq!(w.check(5000 - 2048), ReplayVerdict::TooOld);
    }

    proptest! {
        /// The window agrees with a set-based reference model.
        #[test]
        fn matches_reference_model(pns in proptest::collection::vec(0u64..5000, 1..400), jumps in proptest::collection::vec(0u64..3000, 0..20)) {
            let pns: Vec<u64> = pns.into_iter().chain(jumps.iter().scan(5000u64, |acc, j| { *acc += j * 3; Some(*acc) })).collect();
            let mut w = ReplayWindow::new();
            let mut seen = std::collections::BTreeSet::new();
            for pn in pns {
                let largest = seen.iter().next_back().copied();
                let expected = match largest {
                    Some(l) if pn <= l && l - pn >= ReplayWindow::SIZE => ReplayVerdict::TooOld,
                    _ if seen.contains(&pn) => ReplayVerdict::Duplicate,
                    _ => ReplayVerdict::Fresh,
                };
                prop_assert_eq!(w.check(pn), expected);
                if expected == ReplayVerdict::Fresh {
                    w.record(pn);
                    seen.insert(pn);
                }
            }
        }
    }
}
