//! Wakers: how a courier tells the engine that its mandate or timer changed
//! outside the engine's own calls to it (data pushed from an application
//! thread, a store shared with the application).
//!
//! The engine re-reads a courier's mandate when something happened to that
//! courier: an engine call, or a wake. That is what lets one endpoint serve
//! thousands of sessions without asking every courier, on every poll,
//! whether it has anything to say.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Rings whoever drives the engine (the runtime's event loop) after a wake.
pub type WakeHook = Arc<dyn Fn() + Send + Sync>;

/// A handle that marks one courier for the engine's attention. Cheap to
/// clone, and usable from any thread.
///
/// ```
/// use octolink::{Courier, CourierContext, CourierWaker, Mandate, PayloadWriter};
/// use std::sync::{Arc, Mutex};
///
/// /// Sends whatever another thread put in the shared slot.
/// struct Latest { slot: Arc<Mutex<Option<Vec<u8>>>>, waker: Arc<Mutex<Option<CourierWaker>>> }
///
/// impl Courier for Latest {
///     fn mandate(&self) -> Mandate {
///         let due = self.slot.lock().unwrap().is_some().then(std::time::Instant::now);
///         Mandate { next_send: due, ..Mandate::idle() }
///     }
///     fn on_send_opportunity(&mut self, _: &CourierContext, out: &mut PayloadWriter<'_>) {
///         if let Some(bytes) = self.slot.lock().unwrap().take() {
///             let _ = out.write(&bytes);
///         }
///     }
///     fn on_receive(&mut self, _: &CourierContext, _: &[u8]) {}
///     fn accept_waker(&mut self, waker: CourierWaker) -> bool {
///         // The producer calls `wake()` after each `slot` update.
///         *self.waker.lock().unwrap() = Some(waker);
///         true
///     }
/// }
/// ```
#[derive(Clone)]
pub struct CourierWaker {
    slot: usize,
    queued: Arc<AtomicBool>,
    queue: Arc<WakeQueue>,
}

impl std::fmt::Debug for CourierWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CourierWaker").field("slot", &self.slot).finish()
    }
}

impl CourierWaker {
    /// Tells the engine to re-read this courier's mandate and timer, and
    /// wakes the runtime's loop if it sleeps. Call it after every change the
    /// engine did not make itself.
    pub fn wake(&self) {
        // Queued once until the engine takes it; later wakes ride along.
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&self.queue.woken).push(self.slot);
        self.queue.any.store(true, Ordering::Release);
        let hook = lock(&self.queue.hook).clone();
        if let Some(hook) = hook {
            hook();
        }
    }
}

/// The engine's end: couriers woken since it last looked. Aligned to its
/// own cache lines: the engine reads `any` on every poll, and a neighbour
/// written by another thread would make each read a miss.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct WakeQueue {
    any: AtomicBool,
    woken: Mutex<Vec<usize>>,
    hook: Mutex<Option<WakeHook>>,
}

impl WakeQueue {
    /// A waker for the courier in `slot`, and the flag the engine clears
    /// when it takes the wake.
    pub fn waker(self: &Arc<Self>, slot: usize) -> (CourierWaker, Arc<AtomicBool>) {
        let queued = Arc::new(AtomicBool::new(false));
        let waker = CourierWaker {
            slot,
            queued: Arc::clone(&queued),
            queue: Arc::clone(self),
        };
        (waker, queued)
    }

    pub fn set_hook(&self, hook: Option<WakeHook>) {
        *lock(&self.hook) = hook;
    }

    /// Moves the woken slots into `out` (cheap when there are none).
    pub fn take(&self, out: &mut Vec<usize>) {
        // A plain load first: the engine looks on every poll, and a swap
        // (a locked instruction) costs more than the usual answer, "none".
        if self.any.load(Ordering::Acquire) && self.any.swap(false, Ordering::AcqRel) {
            out.append(&mut lock(&self.woken));
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it;
/// the data (a list of slot numbers) is still sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_is_queued_once_until_taken_and_rings_the_hook() {
        let queue = Arc::new(WakeQueue::default());
        let rings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&rings);
        queue.set_hook(Some(Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })));
        let (waker, queued) = queue.waker(7);
        waker.wake();
        waker.wake();
        let mut out = Vec::new();
        queue.take(&mut out);
        assert_eq!(out, vec![7]);
        assert_eq!(rings.load(Ordering::Relaxed), 1);
        // The engine clears the flag as it takes the wake; the next one
        // queues again.
        queued.store(false, Ordering::Release);
        waker.wake();
        out.clear();
        queue.take(&mut out);
        assert_eq!(out, vec![7]);
        assert_eq!(rings.load(Ordering::Relaxed), 2);
    }
}
