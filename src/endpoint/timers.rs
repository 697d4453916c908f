//! Timers: handshake re-sends and failures, idle timeouts and expiry, and
//! the liveness schedule that starts new attempts.

use std::time::Instant;

use super::peer::Peer;
use super::Endpoint;
use crate::crypto::NodeId;
use crate::event::{ConnectError, DisconnectReason, Event};
use crate::liveness::probe_interval;
use crate::session::SessionState;

impl Endpoint {
    /// The next instant at which [`Endpoint::handle_timeout`] or
    /// [`Endpoint::poll_transmit`] has work, or `None` if nothing is
    /// scheduled. Cheap: it looks at the peers something happened to since
    /// the last poll, not at every peer.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        // A kept ACK may move the loss timer, free the window or reveal a
        // loss to repair (`acks.rs`).
        self.apply_pending_ack();
        self.refresh_schedule(true);
        let mut next = self.earliest_peer_deadline();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.presign_at);
        if !self.broadcast_slots.is_empty() && self.peers.values().any(|p| p.active_session().is_some()) {
            for &i in &self.broadcast_slots {
                consider(self.courier_deadline(i));
            }
        }
        for &i in &self.broadcast_slots {
            consider(self.couriers[i].as_ref().and_then(|c| c.next_timer()));
        }
        next
    }

    /// When the engine must send for courier `slot`: its deadline (due time
    /// plus slack), after any backoff and its rate cap. It is offered room in
    /// packets that go earlier, from its due time on.
    pub(crate) fn courier_deadline(&self, slot: usize) -> Option<Instant> {
        let s = self.couriers.get(slot)?.as_ref()?;
        let m = s.mandate();
        let mut due = m.deadline()?;
        if let Some(b) = s.backoff_until {
            due = due.max(b);
        }
        if let Some(cap) = &s.rate_cap {
            due = cap.ready_at(due, usize::from(m.max_payload));
        }
        Some(due)
    }

    /// When the liveness schedule next starts an attempt for `id`.
    fn next_probe(&self, id: &NodeId) -> Option<Instant> {
        self.next_probe_of(id, self.peers.get(id)?)
    }

    /// [`Self::next_probe`] for a peer already in hand (a second lookup per
    /// peer showed in profiles).
    pub(crate) fn next_probe_of(&self, id: &NodeId, p: &Peer) -> Option<Instant> {
        let l = &p.liveness;
        if !l.wanted || p.outgoing.is_some() || p.pending.is_some() || p.active_session().is_some() {
            return None;
        }
        self.trust.get(id)?.best_address()?;
        if let Some(until) = l.celibate_until {
            // Probing resumes when celibacy ends (checked again then).
            if l.last_probe.is_none_or(|t| t < until) {
                return Some(until.max(l.last_probe.unwrap_or(until)));
            }
        }
        let Some(last) = l.last_probe else {
            return Some(self.epoch);
        };
        let interval = probe_interval(
            &self.cfg,
            last,
            self.in_honeymoon(last),
            l.last_activity,
            self.epoch,
            self.last_active_peer == Some(*id),
        );
        let mut at = last + interval;
        // Never before our own signature spacing allows a new SYN.
        if let Some(t) = p.last_attempt_signature {
            at = at.max(t + self.cfg.signature_interval);
        }
        Some(at)
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.apply_pending_ack();
        // Unsettled peers' timers all run below; only settled ones need
        // their deadlines current.
        self.refresh_schedule(false);
        let mut ids = std::mem::take(&mut self.timer_scratch);
        self.timer_peers(now, &mut ids);
        for &id in &ids {
            self.peer_timers(now, id);
            self.peer_courier_timers(now, id);
            self.touch(id);
        }
        self.timer_scratch = ids;
        if self.presign_at.is_some_and(|t| t <= now) {
            self.presign_handshakes(now);
        }
        run_courier_timers(&mut self.couriers, &self.broadcast_slots, now);
    }

    /// Runs the due timers of the couriers scoped to peer `id`.
    fn peer_courier_timers(&mut self, now: Instant, id: NodeId) {
        if let Some(p) = self.peers.get(&id) {
            run_courier_timers(&mut self.couriers, &p.courier_slots, now);
        }
    }

    fn peer_timers(&mut self, now: Instant, id: NodeId) {
        let cfg = self.cfg.clone();
        let wall_ms = self.wall_ms(now);
        let in_honeymoon = self.in_honeymoon(now);
        let Some(p) = self.peers.get_mut(&id) else { return };

        // A SYN we had to defer for the signature rate limit.
        if let Some(d) = p.deferred.take_if(|d| d.at <= now) {
            self.answer_syn(now, d.from, &d.datagram, d.reserved);
        }

        let Some(p) = self.peers.get_mut(&id) else { return };
        if let Some(o) = p.outgoing.as_mut() {
            if now >= o.started + cfg.handshake_timeout {
                let local_id = o.local_id;
                p.outgoing = None;
                p.liveness.last_probe = Some(now);
                self.by_session.remove(&local_id);
                self.stats.handshakes_failed += 1;
                if let Some(a) = self.trust.get_mut(&id) {
                    a.note_failure(wall_ms);
                }
                self.push_event(Event::ConnectFailed {
                    peer: id,
                    error: ConnectError::TimedOut,
                });
            } else if now >= o.next_resend {
                // Re-send the identical SYN; in honeymoon never wait longer
                // than the honeymoon interval.
                let cap = if in_honeymoon {
                    cfg.handshake_max_rto.min(cfg.honeymoon_interval)
                } else {
                    cfg.handshake_max_rto
                };
                o.rto = (o.rto * 2).min(cap);
                o.next_resend = now + o.rto;
                let (addr, syn) = (o.addr, o.syn.clone());
                self.queue_handshake(addr, syn);
            }
        }

        let Some(p) = self.peers.get_mut(&id) else { return };
        if let Some((s, _)) = p.pending.as_deref() {
            if now >= s.created + cfg.handshake_timeout {
                let local_id = s.local_id;
                p.pending = None;
                self.by_session.remove(&local_id);
            }
        }

        // Loss detection and the probe timeout.
        let Some(p) = self.peers.get_mut(&id) else { return };
        if let Some(s) = p.session.as_mut().filter(|s| s.is_active()) {
            if s.recovery
                .timer(&s.rtt, s.peer_max_ack_delay)
                .is_some_and(|t| t <= now)
            {
                let mut outcome = crate::session::Outcome::default();
                let probe = s.recovery.on_timeout(
                    now,
                    &s.rtt,
                    s.peer_max_ack_delay,
                    &mut self.lost_scratch,
                    &mut outcome,
                );
                // A probe is an ack-eliciting ping that ignores the window.
                s.keepalive_due |= probe;
                super::recv::apply_outcome(s, now, &outcome);
                self.report_frames(now, id);
            }
        }

        let Some(p) = self.peers.get_mut(&id) else { return };
        // Initiator not yet heard from: re-send the ACK and a ping.
        if let Some(s) = p.session.as_mut() {
            if let Some((_, rto)) = s.confirm_probe.filter(|&(at, _)| at <= now) {
                let rto = (rto * 2).min(cfg.handshake_max_rto);
                s.confirm_probe = Some((now + rto, rto));
                s.keepalive_due = true;
                if let Some(ack) = s.hs_ack.clone() {
                    let addr = s.addr;
                    self.queue_handshake(addr, ack);
                }
            }
        }
        let Some(p) = self.peers.get_mut(&id) else { return };
        if let Some(s) = p.session.as_mut() {
            match s.state {
                SessionState::Active if s.confirmed && now >= s.last_recv + cfg.idle_timeout => {
                    s.state = SessionState::Disconnected { since: now };
                    // Probing (new handshakes) starts from here.
                    p.liveness.last_probe = None;
                    if let Some(a) = self.trust.get_mut(&id) {
                        a.note_failure(wall_ms);
                    }
                    self.push_event(Event::Disconnected {
                        peer: id,
                        reason: DisconnectReason::IdleTimeout,
                    });
                }
                SessionState::Disconnected { since } if now >= since + cfg.session_expiry => {
                    let local_id = s.local_id;
                    p.session = None;
                    self.by_session.remove(&local_id);
                    self.push_event(Event::SessionRemoved { peer: id });
                    self.notify_session(now, id, false);
                }
                _ => {}
            }
        }

        if self.next_probe(&id).is_some_and(|t| t <= now) {
            self.start_attempt(now, id);
        }
    }
}

/// Calls `on_timer` on the couriers in `slots` whose timer is due.
fn run_courier_timers(couriers: &mut [Option<super::CourierSlot>], slots: &[usize], now: Instant) {
    for &i in slots {
        if let Some(slot) = couriers.get_mut(i).and_then(Option::as_mut) {
            if slot.next_timer().is_some_and(|t| t <= now) {
                slot.courier_mut().on_timer(now);
            }
        }
    }
}

/// Whether a broadcast payload is waiting to go to this session.
pub(crate) fn any_pending_broadcast(ep: &Endpoint, s: &crate::session::Session) -> bool {
    ep.broadcast_slots.iter().enumerate().any(|(k, &i)| {
        ep.couriers[i].as_ref().is_some_and(|slot| {
            !slot.broadcast.bytes.is_empty()
                && slot.broadcast.generation > s.broadcast_sent.get(k).copied().unwrap_or(0)
        })
    })
}
