//! The sending half's bookkeeping of what is in flight, shaped by how it is
//! used: sequence numbers are handed out in order and mostly acknowledged
//! in order, and frame tokens only grow. Ring buffers with lazily removed
//! entries make a message's send and acknowledgement O(1) and free of
//! allocation, where ordered maps cost a tree walk and now and then a node.

use std::collections::VecDeque;

/// Values keyed by consecutive sequence numbers from `base`, each removed
/// in any order; removed entries leave a hole until everything before them
/// is gone too.
#[derive(Debug, Clone)]
pub(super) struct SeqWindow<T> {
    base: u64,
    slots: VecDeque<Option<T>>,
    live: usize,
}

impl<T> SeqWindow<T> {
    pub fn new() -> Self {
        Self {
            base: 0,
            slots: VecDeque::new(),
            live: 0,
        }
    }

    /// The sequence number the next [`Self::push`] files under.
    pub fn next_seq(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    pub fn push(&mut self, value: T) {
        self.slots.push_back(Some(value));
        self.live += 1;
    }

    /// The lowest sequence number still held.
    pub fn first_seq(&self) -> Option<u64> {
        // The front is never a hole (see `remove`).
        (self.live > 0).then_some(self.base)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    fn index(&self, seq: u64) -> Option<usize> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        (i < self.slots.len()).then_some(i)
    }

    pub fn get(&self, seq: u64) -> Option<&T> {
        self.slots.get(self.index(seq)?)?.as_ref()
    }

    pub fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        let i = self.index(seq)?;
        self.slots.get_mut(i)?.as_mut()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.get(seq).is_some()
    }

    pub fn remove(&mut self, seq: u64) -> Option<T> {
        let i = self.index(seq)?;
        let value = self.slots.get_mut(i)?.take()?;
        self.live -= 1;
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(value)
    }

    /// Takes every value, oldest first, and starts numbering at `base`.
    pub fn drain_and_restart(&mut self, base: u64) -> impl Iterator<Item = T> + '_ {
        self.base = base;
        self.live = 0;
        self.slots.drain(..).flatten()
    }
}

/// The sequence numbers one frame carried: a run (new messages only, the
/// usual case, and no allocation) or, with re-sends among them, a list.
#[derive(Debug, Clone)]
pub(super) enum Carried {
    Run { first: u64, count: u64 },
    List(Vec<u64>),
}

impl Carried {
    pub fn new() -> Self {
        Self::Run { first: 0, count: 0 }
    }

    pub fn push(&mut self, seq: u64) {
        match self {
            Self::Run { count, first } if *count == 0 => {
                *first = seq;
                *count = 1;
            }
            Self::Run { first, count } if *first + *count == seq => *count += 1,
            Self::Run { first, count } => {
                let mut list: Vec<u64> = (*first..*first + *count).collect();
                list.push(seq);
                *self = Self::List(list);
            }
            Self::List(list) => list.push(seq),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Run { count, .. } => *count as usize,
            Self::List(list) => list.len(),
        }
    }

    pub fn into_seqs(self) -> impl Iterator<Item = u64> {
        let (run, list) = match self {
            Self::Run { first, count } => (first..first + count, Vec::new()),
            Self::List(list) => (0..0, list),
        };
        run.chain(list)
    }
}

/// Frames in flight by token (tokens only grow), each taken once when its
/// fate is known.
#[derive(Debug, Clone, Default)]
pub(super) struct FrameLog {
    frames: VecDeque<(u64, Option<Carried>)>,
}

impl FrameLog {
    pub fn insert(&mut self, token: u64, carried: Carried) {
        debug_assert!(self.frames.back().is_none_or(|(t, _)| *t < token));
        self.frames.push_back((token, Some(carried)));
    }

    pub fn take(&mut self, token: u64) -> Option<Carried> {
        let i = self.frames.binary_search_by_key(&token, |(t, _)| *t).ok()?;
        let carried = self.frames.get_mut(i)?.1.take();
        while self.frames.front().is_some_and(|(_, c)| c.is_none()) {
            self.frames.pop_front();
        }
        carried
    }

    pub fn clear(&mut self) {
        self.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seq_window_removes_in_any_order_and_keeps_its_numbering() {
        let mut w = SeqWindow::new();
        for v in 0..5 {
            w.push(v * 10);
        }
        assert_eq!(w.remove(2), Some(20));
        assert_eq!(w.remove(2), None, "taken once");
        assert_eq!(w.first_seq(), Some(0));
        assert_eq!(w.remove(0), Some(0));
        assert_eq!(w.remove(1), Some(10));
        assert_eq!(
            w.first_seq(),
            Some(3),
            "holes before the first live entry are gone"
        );
        assert_eq!((w.len(), w.next_seq()), (2, 5));
        assert_eq!(w.get(4), Some(&40));
        assert_eq!(w.get(7), None);
        let rest: Vec<_> = w.drain_and_restart(0).collect();
        assert_eq!(rest, vec![30, 40]);
        assert_eq!((w.len(), w.next_seq(), w.first_seq()), (0, 0, None));
    }

    #[test]
    fn carried_runs_stay_runs_until_a_gap() {
        let mut c = Carried::new();
        c.push(4);
        c.push(5);
        assert!(matches!(c, Carried::Run { first: 4, count: 2 }));
        c.push(9);
        assert_eq!(c.len(), 3);
        assert_eq!(c.into_seqs().collect::<Vec<_>>(), vec![4, 5, 9]);
    }

    #[test]
    fn a_frame_log_gives_each_frame_once_in_any_order() {
        let mut log = FrameLog::default();
        log.insert(3, Carried::Run { first: 0, count: 1 });
        log.insert(8, Carried::Run { first: 1, count: 1 });
        log.insert(9, Carried::Run { first: 2, count: 1 });
        assert!(log.take(8).is_some());
        assert!(log.take(8).is_none());
        assert!(log.take(4).is_none(), "never sent");
        assert!(log.take(3).is_some());
        assert_eq!(log.frames.len(), 1, "taken entries at the front are dropped");
        assert!(log.take(9).is_some());
    }
}
