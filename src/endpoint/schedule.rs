//! The schedule: when each peer next needs the engine (a timer, or data
//! to send), kept in time order and recomputed only for peers that
//! something happened to. `poll_timeout`, `handle_timeout` and
//! `poll_transmit` visit the peers that are due, not every peer, so an
//! endpoint with thousands of quiet sessions costs what its busy ones do.
//!
//! A peer is *settled* when its deadline can only move through the engine:
//! a confirmed, active session (or a lapsed one we do not probe for), no
//! handshake of ours under way (one we answered, or put off, may be), and
//! couriers that accepted a waker. Every other peer (probing, dialling, or
//! with a courier the engine must poll) is recomputed on every poll, as
//! before; there are few of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::peer::Peer;
use super::send::earliest;
use super::Endpoint;
use crate::courier::CourierScope;
use crate::crypto::NodeId;
use crate::session::SessionState;

/// Touched peers `poll_transmit` asks directly, at most.
const DIRTY_ASKED_DIRECTLY: usize = 4;

#[derive(Default)]
pub(crate) struct Schedule {
    /// Settled peers, by deadline.
    by_time: BTreeSet<(Instant, NodeId)>,
    /// Unsettled peers and their deadlines as last computed.
    unsettled: BTreeMap<NodeId, Option<Instant>>,
    /// Peers to recompute at the next poll.
    dirty: Vec<NodeId>,
    /// Recompute every peer at the next poll.
    all_dirty: bool,
    woken: Vec<usize>,
}

impl Schedule {
    /// Queues a peer just marked dirty (see [`PeerSlot::mark_dirty`]).
    pub fn queue(&mut self, id: NodeId) {
        self.dirty.push(id);
    }
}

impl PeerSlot {
    /// Marks the peer dirty; true if it was not already (then the caller
    /// queues it with [`Schedule::queue`]).
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }
}

/// Where a peer stands in the schedule.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PeerSlot {
    /// Its key in `by_time`, if settled with a deadline.
    key: Option<Instant>,
    /// Its earliest timer, as last computed (sending aside).
    pub timer_at: Option<Instant>,
    dirty: bool,
    /// Filed among the unsettled.
    unsettled: bool,
}

impl Endpoint {
    /// Something happened to `id`: recompute its deadline at the next poll.
    pub(crate) fn touch(&mut self, id: NodeId) {
        if self.peers.get_mut(&id).is_some_and(|p| p.sched.mark_dirty()) {
            self.schedule.queue(id);
        }
    }

    /// Something happened that may move any peer's deadline.
    pub(crate) fn touch_all(&mut self) {
        self.schedule.all_dirty = true;
    }

    /// Whether `poll_transmit` should recompute before choosing: everything
    /// is dirty, or more peers than it is worth asking one by one.
    pub(crate) fn schedule_needs_filing(&self) -> bool {
        self.schedule.all_dirty || self.schedule.dirty.len() > DIRTY_ASKED_DIRECTLY
    }

    /// Takes a peer out of the schedule (before it is removed).
    pub(crate) fn unschedule(&mut self, id: &NodeId) {
        if let Some(p) = self.peers.get(id) {
            if let Some(t) = p.sched.key {
                self.schedule.by_time.remove(&(t, *id));
            }
        }
        self.schedule.unsettled.remove(id);
    }

    /// Takes couriers' wakes, then recomputes the peers that need it:
    /// those something happened to, and (`with_unsettled`) every unsettled
    /// one, whose deadlines may have moved without the engine.
    pub(crate) fn refresh_schedule(&mut self, with_unsettled: bool) {
        self.take_wakes();
        let mut ids = std::mem::take(&mut self.peer_scratch);
        ids.clear();
        if std::mem::take(&mut self.schedule.all_dirty) {
            self.schedule.dirty.clear();
            ids.extend(self.peers.keys().copied());
        } else {
            ids.append(&mut self.schedule.dirty);
            if with_unsettled {
                ids.extend(self.schedule.unsettled.keys().copied());
            }
        }
        for &id in &ids {
            self.reschedule(id);
        }
        self.peer_scratch = ids;
    }

    /// Marks the peers of woken couriers dirty.
    pub(crate) fn take_wakes(&mut self) {
        let mut woken = std::mem::take(&mut self.schedule.woken);
        self.wake_queue.take(&mut woken);
        for slot in woken.drain(..) {
            let Some(s) = self.couriers.get(slot).and_then(Option::as_ref) else {
                continue;
            };
            if let Some(q) = &s.waker_queued {
                // Cleared before the mandate is read again, so a wake that
                // races with this one is never lost.
                q.swap(false, Ordering::AcqRel);
            }
            s.forget_mandate();
            if let CourierScope::Peer(p) = s.scope {
                self.touch(p);
            }
        }
        self.schedule.woken = woken;
    }

    /// Recomputes one peer's deadline and files it.
    fn reschedule(&mut self, id: NodeId) {
        let Some(p) = self.peers.get(&id) else {
            self.schedule.unsettled.remove(&id);
            return;
        };
        let (timer_at, send_at) = self.peer_deadline(&id, p);
        let deadline = [timer_at, send_at].into_iter().flatten().min();
        let settled = self.is_settled(p);
        let old = p.sched.key;
        let was_unsettled = p.sched.unsettled;
        let sched = &mut self.schedule;
        if let Some(t) = old {
            if settled && deadline == Some(t) {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.sched.dirty = false;
                    p.sched.timer_at = timer_at;
                }
                return;
            }
            sched.by_time.remove(&(t, id));
        }
        let mut key = None;
        if settled {
            if was_unsettled {
                sched.unsettled.remove(&id);
            }
            if let Some(t) = deadline {
                sched.by_time.insert((t, id));
                key = Some(t);
            }
        } else {
            sched.unsettled.insert(id, deadline);
        }
        if let Some(p) = self.peers.get_mut(&id) {
            p.sched = PeerSlot {
                key,
                timer_at,
                dirty: false,
                unsettled: !settled,
            };
        }
    }

    /// Whether only the engine can move this peer's deadline.
    fn is_settled(&self, p: &Peer) -> bool {
        // A lapsed session we do not probe for only waits to expire, on a
        // deadline the engine alone moves (a fleet server may hold
        // thousands after an outage). Probing peers stay polled: their
        // probe times hang on endpoint-wide state.
        let steady_session = p.session.as_ref().is_some_and(|s| {
            s.close_due.is_none()
                && match s.state {
                    SessionState::Disconnected { .. } => !p.liveness.wanted,
                    SessionState::Active => s.confirmed,
                }
        });
        let quiet = p.session.is_none() && !p.liveness.wanted;
        // A handshake we answered waits for its last message or its
        // timeout, and a SYN we put off for its answer slot, all on the
        // engine's deadlines; one we started re-sends on a backed-off
        // schedule and stays polled.
        p.outgoing.is_none()
            && (steady_session || quiet)
            && p.courier_slots.iter().all(|&i| {
                self.couriers
                    .get(i)
                    .and_then(Option::as_ref)
                    .is_some_and(|c| c.waker_queued.is_some())
            })
    }

    /// The earliest deadline of any peer.
    pub(crate) fn earliest_peer_deadline(&self) -> Option<Instant> {
        let settled = self.schedule.by_time.first().map(|(t, _)| *t);
        let unsettled = self.schedule.unsettled.values().flatten().min().copied();
        [settled, unsettled].into_iter().flatten().min()
    }

    /// Peers whose timers `handle_timeout` runs at `now`, into `out`:
    /// settled ones with a timer due, earliest first (those due only to
    /// send are `poll_transmit`'s, and stay untouched), then every
    /// unsettled one (probes among them), whose deadlines may be stale.
    pub(crate) fn timer_peers(&self, now: Instant, out: &mut Vec<NodeId>) {
        out.clear();
        let timer_due = |id: &NodeId| {
            self.peers
                .get(id)
                .is_some_and(|p| p.sched.timer_at.is_some_and(|t| t <= now))
        };
        out.extend(
            self.schedule
                .by_time
                .iter()
                .take_while(|(t, _)| *t <= now)
                .map(|(_, id)| *id)
                .filter(timer_due),
        );
        out.extend(self.schedule.unsettled.keys().copied());
    }

    /// Peers that may have something to send at `now`: settled ones due,
    /// earliest first, then those something happened to since their
    /// deadline was computed, then every unsettled one (the caller asks
    /// each directly). Not recomputing here keeps the send path short: the
    /// next `poll_timeout` files them. Each peer comes once: a touched peer
    /// already among the due or the unsettled is not asked twice (the
    /// question costs more than the lookup that avoids it).
    pub(crate) fn send_candidates(&self, now: Instant) -> impl Iterator<Item = NodeId> + '_ {
        let settled = self
            .schedule
            .by_time
            .iter()
            .take_while(move |(t, _)| *t <= now)
            .map(|(_, id)| *id);
        let touched = self.schedule.dirty.iter().copied().filter(move |id| {
            self.peers
                .get(id)
                .is_some_and(|p| !p.sched.unsettled && p.sched.key.is_none_or(|t| t > now))
        });
        settled
            .chain(touched)
            .chain(self.schedule.unsettled.keys().copied())
    }

    pub(crate) fn polled_peer_count(&self) -> usize {
        self.schedule.unsettled.len()
    }

    /// When peer `id` next needs the engine: `.0` for its timers
    /// (`handle_timeout`), `.1` to send (`poll_transmit`, after the pacer and
    /// the window).
    fn peer_deadline(&self, id: &NodeId, p: &Peer) -> (Option<Instant>, Option<Instant>) {
        let mut timer: Option<Instant> = None;
        if let Some(o) = &p.outgoing {
            timer = earliest(
                timer,
                Some(o.next_resend.min(o.started + self.cfg.handshake_timeout)),
            );
        }
        if let Some((s, _)) = p.pending.as_deref() {
            timer = earliest(timer, Some(s.created + self.cfg.handshake_timeout));
        }
        timer = earliest(timer, p.deferred.as_ref().map(|d| d.at));
        timer = earliest(timer, self.next_probe_of(id, p));
        for &i in &p.courier_slots {
            let t = self
                .couriers
                .get(i)
                .and_then(Option::as_ref)
                .and_then(|c| c.next_timer());
            timer = earliest(timer, t);
        }
        let Some(s) = &p.session else { return (timer, None) };
        match s.state {
            SessionState::Disconnected { since } => {
                timer = earliest(timer, Some(since + self.cfg.session_expiry));
            }
            SessionState::Active if s.confirmed => {
                timer = earliest(timer, Some(s.last_recv + self.cfg.idle_timeout));
                timer = earliest(timer, s.recovery.timer(&s.rtt, s.peer_max_ack_delay));
                timer = earliest(timer, s.confirm_probe.map(|(t, _)| t));
            }
            SessionState::Active => {
                timer = earliest(timer, s.confirm_probe.map(|(t, _)| t));
            }
        }
        (timer, self.session_send_at(p))
    }
}
