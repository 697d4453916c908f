//! The receive path: classify a datagram, open sealed packets, and act on
//! their frames.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::acks::{apply_ack, PendingAck};
use super::Endpoint;
use crate::crypto::{NodeId, ReplayVerdict};
use crate::event::{DisconnectReason, Event};
use crate::session::SessionState;
use crate::stats::DropReason;
use crate::wire::{Frame, FrameIter, Header, PacketType, HEADER_LEN, TAG_LEN};

/// Frames that need the endpoint (not just the session) after a packet.
pub(crate) enum Deferred {
    Courier { id: u16, range: (usize, usize) },
    Close { code: u16, reason: String },
    Pong { token: u64, rtt: Option<Duration> },
}

impl Endpoint {
    /// Processes one received datagram. Never panics, whatever the bytes.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        // The ACK kept from the last datagram takes effect first, in order.
        self.apply_pending_ack();
        self.stats.received.add(datagram.len());
        let header = match Header::decode(datagram) {
            Ok(h) => h,
            Err(e) => return self.drop_datagram(e.into()),
        };
        if datagram.len() > self.cfg.max_datagram {
            return self.drop_datagram(DropReason::Oversized);
        }
        // The peer this datagram concerns has its deadline recomputed at
        // the next poll (a forged one costs one recomputation, no more).
        // SYNs touch their peer in `handle_syn` (once decoded and trusted),
        // sealed packets in `handle_sealed` (once the session is found).
        let concerned = match header.packet_type {
            PacketType::SynAck | PacketType::Ack | PacketType::Retry => {
                self.by_session.get(&header.session_id).copied()
            }
            PacketType::Syn | PacketType::Data | PacketType::Close => None,
        };
        match header.packet_type {
            PacketType::Syn => self.handle_syn(now, from, datagram),
            PacketType::SynAck => self.handle_syn_ack(now, from, datagram),
            PacketType::Ack => self.handle_hs_ack(now, from, datagram),
            PacketType::Retry => self.handle_retry(from, datagram),
            PacketType::Data | PacketType::Close => self.handle_sealed(now, from, header, datagram),
        }
        if let Some(id) = concerned {
            self.touch(id);
        }
    }

    fn handle_sealed(&mut self, now: Instant, from: SocketAddr, header: Header, datagram: &[u8]) {
        let Some(&peer_id) = self.by_session.get(&header.session_id) else {
            return self.drop_datagram(DropReason::UnknownSession);
        };
        if datagram.len() < HEADER_LEN + TAG_LEN {
            return self.drop_datagram(DropReason::Truncated);
        }
        let pn = header.packet_number;
        let body_len = datagram.len() - HEADER_LEN - TAG_LEN;
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            return self.drop_datagram(DropReason::UnknownSession);
        };
        // Touched with the peer in hand (one lookup fewer than `touch`).
        if peer.sched.mark_dirty() {
            self.schedule.queue(peer_id);
        }
        let Some(session) = peer.session_by_local_id(header.session_id) else {
            return self.drop_datagram(DropReason::UnknownSession);
        };
        match session.replay.check(pn) {
            ReplayVerdict::Fresh => {}
            ReplayVerdict::Duplicate => return self.drop_datagram(DropReason::Replayed),
            ReplayVerdict::TooOld => return self.drop_datagram(DropReason::TooOld),
        }
        let body = &mut self.scratch[..body_len];
        body.copy_from_slice(&datagram[HEADER_LEN..HEADER_LEN + body_len]);
        let aad = &datagram[..HEADER_LEN];
        let tag = &datagram[HEADER_LEN + body_len..];
        if session.keys.recv.open(pn, aad, body, tag).is_err() {
            return self.drop_datagram(DropReason::AuthFailed);
        }
        // Authentic from here on. Record the number first, so that even a
        // malformed body cannot be replayed.
        let newest = session.replay.largest().is_none_or(|l| pn > l);
        session.replay.record(pn);
        if let Err(e) = FrameIter::validate(&self.scratch[..body_len]) {
            return self.drop_datagram(e.into());
        }
        self.stats.whole += 1;
        let is_pending = !session.confirmed;
        if is_pending {
            self.confirm_pending(now, peer_id);
        }
        self.process_frames(now, from, peer_id, header, body_len, newest);
    }

    fn process_frames(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer_id: NodeId,
        header: Header,
        body_len: usize,
        newest: bool,
    ) {
        let wall_ms = self.wall_ms(now);
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            return;
        };
        let Some(session) = peer.session.as_mut().filter(|s| s.local_id == header.session_id) else {
            return;
        };
        session.received.add(HEADER_LEN + body_len + TAG_LEN);
        session.last_recv = now;
        session.confirm_probe = None;
        // Reused buffers: steady-state packets allocate nothing.
        let mut events = std::mem::take(&mut self.recv_events);
        let mut deferred = std::mem::take(&mut self.recv_deferred);
        if let SessionState::Disconnected { .. } = session.state {
            session.state = SessionState::Active;
            events.push(Event::Connected {
                peer: peer_id,
                addr: from,
                initiator: session.initiator,
            });
        }
        // Roaming: only an authentic packet newer than any before it may
        // move the session to a new address.
        if newest && from != session.addr {
            session.addr = from;
            events.push(Event::AddressChanged {
                peer: peer_id,
                addr: from,
            });
            if let Some(a) = self.trust.get_mut(&peer_id) {
                a.note_address(from, true, Some(wall_ms));
            }
        }
        let mut eliciting = false;
        let body = &self.scratch[..body_len];
        let mut frames = FrameIter::new(body);
        while let Ok(Some(frame)) = frames.next_frame() {
            eliciting |= frame.is_ack_eliciting();
            match frame {
                Frame::Ack(ack) => {
                    // Kept for after the reply (`acks.rs`); a second one in
                    // the same datagram (ours carry one) applies the first.
                    if let Some(first) = self.pending_ack.take() {
                        let cfg = self.cfg.link_quality;
                        if let Some(good) = apply_ack(
                            session,
                            &cfg,
                            &first,
                            &self.ack_ranges,
                            &mut self.delivered_scratch,
                            &mut self.lost_scratch,
                        ) {
                            events.push(Event::LinkQuality { peer: peer_id, good });
                        }
                    }
                    self.ack_ranges.clear();
                    self.ack_ranges.extend(ack.ranges.clone());
                    self.pending_ack = Some(PendingAck::new(peer_id, session.local_id, &ack, now));
                }
                Frame::Ping(token) => session.owe_pong(token),
                Frame::AckDelay(us) => session.peer_max_ack_delay = Duration::from_micros(us),
                Frame::Pong(token) => {
                    if let Some(i) = session.app_pings.iter().position(|&(t, _)| t == token) {
                        let (_, sent) = session.app_pings.swap_remove(i);
                        deferred.push(Deferred::Pong {
                            token,
                            rtt: Some(now.saturating_duration_since(sent)),
                        });
                    }
                }
                Frame::Close(c) => deferred.push(Deferred::Close {
                    code: c.code,
                    reason: String::from_utf8_lossy(c.reason).into_owned(),
                }),
                Frame::Courier { id, payload, .. } => {
                    let start = payload.as_ptr() as usize - body.as_ptr() as usize;
                    deferred.push(Deferred::Courier {
                        id,
                        range: (start, start + payload.len()),
                    });
                }
                Frame::Padding(_) | Frame::Unknown { .. } => {}
            }
        }
        session.acks.on_packet(header.packet_number, now, eliciting);
        let closing = header.packet_type == PacketType::Close;
        self.note_activity(now, peer_id);
        for e in events.drain(..) {
            self.push_event(e);
        }
        self.recv_events = events;
        self.report_frames(now, peer_id);
        let mut close = None;
        for d in deferred.drain(..) {
            match d {
                Deferred::Courier { id, range } => self.deliver(now, peer_id, id, range),
                Deferred::Close { code, reason } => close = Some((code, reason)),
                Deferred::Pong { token, rtt } => self.push_event(Event::Pong {
                    peer: peer_id,
                    token,
                    rtt: rtt.unwrap_or_default(),
                }),
            }
        }
        self.recv_deferred = deferred;
        if closing || close.is_some() {
            let (code, reason) = close.unwrap_or((0, String::new()));
            self.end_session(now, peer_id, DisconnectReason::ClosedByPeer { code, reason });
        }
    }

    /// Hands a courier frame to the peer's courier, or the broadcast one.
    fn deliver(&mut self, now: Instant, peer_id: NodeId, id: u16, range: (usize, usize)) {
        let ctx = self.courier_ctx(now, peer_id);
        let peer_slots = self
            .peers
            .get(&peer_id)
            .map(|p| p.courier_slots.as_slice())
            .unwrap_or(&[]);
        let slot = peer_slots
            .iter()
            .chain(self.broadcast_slots.iter())
            .copied()
            .find(|&i| self.couriers[i].as_ref().is_some_and(|s| s.id.0 == id));
        let payload = &self.scratch[range.0..range.1];
        match slot.and_then(|i| self.couriers[i].as_mut()) {
            Some(s) if s.mandate().receive_active => {
                s.stats.frames_received += 1;
                s.stats.bytes_received += payload.len() as u64;
                s.courier_mut().on_receive(&ctx, payload);
                if s.notify {
                    let courier = s.id;
                    self.push_event(Event::CourierData {
                        peer: peer_id,
                        courier,
                    });
                }
                if let Some(sess) = self.peers.get_mut(&peer_id).and_then(|p| p.session.as_mut()) {
                    sess.courier_frames_received += 1;
                }
            }
            _ => self.stats.drops.bump(DropReason::UnknownCourier),
        }
    }

    /// Removes the peer's session and reports it.
    pub(crate) fn end_session(&mut self, now: Instant, peer_id: NodeId, reason: DisconnectReason) {
        self.apply_pending_ack_of(peer_id);
        let celibacy = self.cfg.celibacy;
        let Some(p) = self.peers.get_mut(&peer_id) else {
            return;
        };
        let Some(s) = p.session.take() else { return };
        let was_active = s.is_active();
        // Celibacy follows an explicit close only, not other endings.
        if matches!(
            reason,
            DisconnectReason::ClosedLocally | DisconnectReason::ClosedByPeer { .. }
        ) {
            p.liveness.celibate_until = Some(now + celibacy);
        }
        self.by_session.remove(&s.local_id);
        if was_active {
            self.push_event(Event::Disconnected {
                peer: peer_id,
                reason,
            });
        }
        self.notify_session(now, peer_id, false);
    }
}

/// Feeds an ack's or timeout's outcome to congestion control and pacing.
pub(crate) fn apply_outcome(
    session: &mut crate::session::Session,
    now: Instant,
    outcome: &crate::session::Outcome,
) {
    if let Some(sent) = outcome.newest_acked_sent {
        let limited = std::mem::take(&mut session.window_limited);
        session.cc.on_ack(outcome.newly_acked_bytes, sent, limited);
    }
    if let Some(sent) = outcome.newest_lost_sent {
        let rtt = session.rtt.stats();
        session.cc.on_loss(now, sent, outcome.lost_bytes, &rtt);
    }
    session.update_pacing();
}
