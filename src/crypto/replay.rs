//! The sliding replay window: rejects packet numbers seen before, or too far
//! behind the largest seen to remember.

/// Remembers the last [`ReplayWindow::SIZE`] packet numbers below the largest.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    largest: Option<u64>,
    /// Bit `i` set: packet `largest - i` was seen.
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
        let back = largest - pn;
        if back >= Self::SIZE {
            return ReplayVerdict::TooOld;
        }
        if self.bit(back) {
            ReplayVerdict::Duplicate
        } else {
            ReplayVerdict::Fresh
        }
    }

    /// Records a packet number that authenticated.
    pub fn record(&mut self, pn: u64) {
        match self.largest {
            None => {
                self.largest = Some(pn);
                self.bits = [0; Self::WORDS];
                self.set(0);
            }
            Some(largest) if pn > largest => {
                self.shift(pn - largest);
                self.largest = Some(pn);
                self.set(0);
            }
            Some(largest) => {
                let back = largest - pn;
                if back < Self::SIZE {
                    self.set(back);
                }
            }
        }
    }

    fn bit(&self, i: u64) -> bool {
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: u64) {
        self.bits[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// Moves every remembered bit `n` places further back.
    fn shift(&mut self, n: u64) {
        if n >= Self::SIZE {
            self.bits = [0; Self::WORDS];
            return;
        }
        let words = (n / 64) as usize;
        let bits = (n % 64) as u32;
        for i in (0..Self::WORDS).rev() {
            let src = i.checked_sub(words);
            let hi = src.map_or(0, |s| self.bits[s] << bits);
            let lo = match (src.and_then(|s| s.checked_sub(1)), bits) {
                (Some(s), b) if b > 0 => self.bits[s] >> (64 - b),
                _ => 0,
            };
            self.bits[i] = hi | lo;
        }
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
        fn matches_reference_model(pns in proptest::collection::vec(0u64..5000, 1..400)) {
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
