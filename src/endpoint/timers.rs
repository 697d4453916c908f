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
    /// The next instant at which [`Endpoint::handle_timeout`] has work, or
    /// `None` if nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.presign_at);
        let any_active = self.peers.values().any(|p| p.active_session().is_some());
        for (id, p) in &self.peers {
            if let Some(o) = &p.outgoing {
                consider(Some(o.next_resend.min(o.started + self.cfg.handshake_timeout)));
            }
            if let Some((s, _)) = &p.pending {
                consider(Some(s.created + self.cfg.handshake_timeout));
            }
            consider(p.deferred.as_ref().map(|d| d.at));
            consider(self.next_probe_of(id, p));
            let Some(s) = &p.session else { continue };
            if s.close_due.is_some() {
                consider(Some(self.epoch));
            }
            match s.state {
                SessionState::Disconnected { since } => consider(Some(since + self.cfg.session_expiry)),
                SessionState::Active if s.confirmed => {
                    consider(Some(s.last_recv + self.cfg.idle_timeout));
                    consider(s.recovery.timer(&s.rtt, self.cfg.max_ack_delay));
                    // Anything the session wants to send waits for the pacer.
                    let mut send: Option<Instant> = Some(self.keepalive_at(s));
                    let mut want = |t: Option<Instant>| {
                        if let Some(t) = t {
                            send = Some(send.map_or(t, |n: Instant| n.min(t)));
                        }
                    };
                    want(s.acks.deadline(self.cfg.max_ack_delay));
                    if !s.pongs_due.is_empty() || s.ping_due.is_some() || s.keepalive_due {
                        want(Some(self.epoch));
                    }
                    consider(s.confirm_probe.map(|(t, _)| t));
                    consider(send);
                    // Courier data waits for the pacer; with the window
                    // closed, an ack or the probe timeout wakes us instead.
                    if s.window_open() {
                        let mut data: Option<Instant> = None;
                        for &i in &p.courier_slots {
                            let t = self.courier_due(i);
                            data = [data, t].into_iter().flatten().min();
                        }
                        if any_pending_broadcast(self, s) {
                            data = Some(self.epoch);
                        }
                        let paced = s.pacer.ready_at(s.last_send, s.max_datagram);
                        consider(data.map(|t| t.max(paced)));
                    }
                }
                SessionState::Active => {}
            }
        }
        if any_active {
            for &i in &self.broadcast_slots {
                consider(self.courier_due(i));
            }
        }
        for slot in self.couriers.iter().flatten() {
            consider(slot.courier.next_timer());
        }
        next
    }

    pub(crate) fn courier_due(&self, slot: usize) -> Option<Instant> {
        let s = self.couriers.get(slot)?.as_ref()?;
        let m = s.courier.mandate();
        let mut due = m.due()?;
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

    /// [`Self::next_probe`] for a peer already in hand (poll_timeout walks
    /// them all; a second lookup per peer showed in profiles).
    fn next_probe_of(&self, id: &NodeId, p: &Peer) -> Option<Instant> {
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
        let mut ids = std::mem::take(&mut self.peer_scratch);
        ids.clear();
        ids.extend(self.peers.keys().copied());
        for &id in &ids {
            self.peer_timers(now, id);
        }
        self.peer_scratch = ids;
        if self.presign_at.is_some_and(|t| t <= now) {
            self.presign_handshakes(now);
        }
        for slot in self.couriers.iter_mut().flatten() {
            if slot.courier.next_timer().is_some_and(|t| t <= now) {
                slot.courier.on_timer(now);
            }
        }
    }

    fn peer_timers(&mut self, now: Instant, id: NodeId) {
        let cfg = self.cfg.clone();
        let wall_ms = self.wall_ms(now);
        let in_honeymoon = self.in_honeymoon(now);
        let Some(p) = self.peers.get_mut(&id) else { return };

        // A SYN we had to defer for the signature rate limit.
        if let Some(d) = p.deferred.take_if(|d| d.at <= now) {
            self.handle_syn(now, d.from, &d.datagram);
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
        if let Some((s, _)) = p.pending.as_ref() {
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
                .timer(&s.rtt, cfg.max_ack_delay)
                .is_some_and(|t| t <= now)
            {
                let mut outcome = crate::session::Outcome::default();
                let probe = s.recovery.on_timeout(
                    now,
                    &s.rtt,
                    cfg.max_ack_delay,
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

/// Whether a broadcast payload is waiting to go to this session.
fn any_pending_broadcast(ep: &Endpoint, s: &crate::session::Session) -> bool {
    ep.broadcast_slots.iter().enumerate().any(|(k, &i)| {
        ep.couriers[i].as_ref().is_some_and(|slot| {
            !slot.broadcast.bytes.is_empty()
                && slot.broadcast.generation > s.broadcast_sent.get(k).copied().unwrap_or(0)
        })
    })
}
