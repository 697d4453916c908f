//! A set of byte ranges, kept merged: which parts of a blob arrived, or
//! still need sending.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent half-open ranges `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn full(len: u64) -> Self {
        let mut s = Self::new();
        s.insert(0, len);
        s
    }

    /// Number of disjoint ranges (memory use is proportional).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Total bytes covered.
    pub fn covered(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    pub fn contains_all(&self, start: u64, end: u64) -> bool {
        start >= end
            || self
                .ranges
                .range(..=start)
                .next_back()
                .is_some_and(|(_, &e)| e >= end)
    }

    /// Adds `[start, end)`, merging with neighbours.
    pub fn insert(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        // Absorb a range that starts before and reaches `start`.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.ranges.remove(&s);
            }
        }
        // Absorb ranges that start inside `[start, end]`.
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            end = end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(start, end);
    }

    /// Removes and returns up to `max` bytes from the front.
    pub fn take_front(&mut self, max: u64) -> Option<(u64, u64)> {
        let (&s, &e) = self.ranges.iter().next()?;
        self.ranges.remove(&s);
        let end = e.min(s + max);
        if end < e {
            self.ranges.insert(end, e);
        }
        Some((s, end))
    }

    pub fn first(&self) -> Option<(u64, u64)> {
        self.ranges.iter().next().map(|(&s, &e)| (s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        /// The set agrees with a byte-by-byte reference model.
        #[test]
        fn matches_a_reference_model(ops in proptest::collection::vec((0u64..300, 0u64..40), 0..60)) {
            let mut set = RangeSet::new();
            let mut model = BTreeSet::new();
            for (start, len) in ops {
                set.insert(start, start + len);
                model.extend(start..start + len);
                prop_assert_eq!(set.covered(), model.len() as u64);
            }
            let mut from_set = BTreeSet::new();
            let mut prev_end = None;
            for (&s, &e) in &set.ranges {
                prop_assert!(s < e);
                prop_assert!(prev_end.is_none_or(|p| p < s), "ranges touch or overlap");
                prev_end = Some(e);
                from_set.extend(s..e);
            }
            prop_assert_eq!(from_set, model.clone());
            for probe in 0..340u64 {
                prop_assert_eq!(set.contains_all(probe, probe + 1), model.contains(&probe));
            }
        }
    }

    #[test]
    fn take_front_hands_out_chunks_in_order() {
        let mut s = RangeSet::full(10);
        assert_eq!(s.take_front(4), Some((0, 4)));
        assert_eq!(s.take_front(4), Some((4, 8)));
        s.insert(1, 2);
        assert_eq!(s.take_front(4), Some((1, 2)));
        assert_eq!(s.take_front(4), Some((8, 10)));
        assert_eq!(s.take_front(4), None);
    }
}
