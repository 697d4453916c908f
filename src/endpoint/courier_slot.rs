//! A registered courier as the engine holds it, with its mandate and timer
//! cached. At scale the engine reads them several times per packet (to file
//! the peer, to pick the sender, to fill the packet), and each read of a
//! courier at the far end of a pointer was a cache miss or three. A courier
//! that accepted a waker promises its mandate changes only in the engine's
//! calls to it or after a wake ([`Courier::accept_waker`]), so the cache is
//! dropped on exactly those: every mutable access goes through
//! [`CourierSlot::courier_mut`], and the engine calls
//! [`CourierSlot::forget_mandate`] when it takes a wake.

use std::cell::Cell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::courier::{Courier, CourierId, CourierScope, CourierWaker, Mandate};
use crate::session::Pacer;
use crate::stats::CourierStats;

/// A payload a broadcast courier wrote once for every session.
#[derive(Debug, Default)]
pub(crate) struct BroadcastPayload {
    pub bytes: Vec<u8>,
    pub generation: u64,
    pub due_since: Option<Instant>,
    /// The frame token the courier wrote this payload under.
    pub token: u64,
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    mandate: Mandate,
    next_timer: Option<Instant>,
}

pub(crate) struct CourierSlot {
    pub id: CourierId,
    pub scope: CourierScope,
    courier: Box<dyn Courier>,
    /// What the courier last said, while nothing can have changed it.
    cached: Cell<Option<Cached>>,
    /// Set when the courier was due but wrote nothing; it waits this long.
    pub backoff_until: Option<Instant>,
    /// When it last wrote a payload. Lateness counts from here if that is
    /// after its due time, so an always-due courier does not out-age others.
    pub last_served: Option<Instant>,
    /// Emit [`crate::Event::CourierData`] when data arrives for it.
    pub notify: bool,
    pub broadcast: BroadcastPayload,
    /// The application's cap on this courier's send rate.
    pub rate_cap: Option<Pacer>,
    /// The flag its waker sets, if it accepted one (see
    /// [`Courier::accept_waker`]); `None` means it is polled.
    pub waker_queued: Option<Arc<AtomicBool>>,
    pub stats: CourierStats,
}

impl CourierSlot {
    pub fn new(id: CourierId, scope: CourierScope, courier: Box<dyn Courier>) -> Self {
        Self {
            id,
            scope,
            courier,
            cached: Cell::new(None),
            backoff_until: None,
            last_served: None,
            notify: false,
            broadcast: BroadcastPayload::default(),
            rate_cap: None,
            waker_queued: None,
            stats: CourierStats {
                id: id.0,
                ..Default::default()
            },
        }
    }

    /// Offers the courier its waker; `queued` is the flag the waker sets.
    pub fn offer_waker(&mut self, waker: CourierWaker, queued: Arc<AtomicBool>) {
        if self.courier_mut().accept_waker(waker) {
            self.waker_queued = Some(queued);
        }
    }

    /// The cached answers, read once after each change. Only for a courier
    /// that accepted a waker: a polled one may change at any time.
    fn cached(&self) -> Cached {
        if let Some(c) = self.cached.get() {
            return c;
        }
        let c = Cached {
            mandate: self.courier.mandate(),
            next_timer: self.courier.next_timer(),
        };
        self.cached.set(Some(c));
        c
    }

    pub fn mandate(&self) -> Mandate {
        if self.waker_queued.is_none() {
            return self.courier.mandate();
        }
        self.cached().mandate
    }

    pub fn next_timer(&self) -> Option<Instant> {
        if self.waker_queued.is_none() {
            return self.courier.next_timer();
        }
        self.cached().next_timer
    }

    /// The courier, to read.
    pub fn courier(&self) -> &dyn Courier {
        self.courier.as_ref()
    }

    /// The courier, to call: whatever the call does may change its mandate.
    pub fn courier_mut(&mut self) -> &mut dyn Courier {
        self.cached.set(None);
        self.courier.as_mut()
    }

    /// Its waker fired: the mandate may have changed outside the engine.
    pub fn forget_mandate(&self) {
        self.cached.set(None);
    }

    pub fn into_courier(self) -> Box<dyn Courier> {
        self.courier
    }
}
