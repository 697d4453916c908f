//! The send path: decide which session has something to say, and build one
//! sealed packet: acks first, then pongs, pings and close, then as many due
//! couriers as fit, ranked by the scheduler.

use std::time::{Duration, Instant};

use super::peer::Peer;
use super::{Endpoint, Transmit};
use crate::courier::{CourierContext, CourierScope, PayloadWriter};
use crate::crypto::NodeId;
use crate::event::DisconnectReason;
use crate::scheduler::{self, Candidate};
use crate::session::{FrameRecord, Session, MAX_APP_PINGS};
use crate::wire::{
    self, Header, PacketType, Writer, COURIER_FRAME_OVERHEAD, HEADER_LEN, MAX_PACKET_NUMBER, TAG_LEN,
};

/// The earlier of two optional instants.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Most ack ranges written per packet.
const MAX_ACK_RANGES: usize = 16;
/// Keepalive intervals without an ack-eliciting packet before a PING goes
/// anyway.
const ELICIT_EVERY: u32 = 10;
/// How long a courier that was due but wrote nothing is left alone.
const EMPTY_WRITE_BACKOFF: Duration = Duration::from_millis(1);
/// The token of a keepalive ping (application pings count up from 1).
const KEEPALIVE_TOKEN: u64 = 0;

impl Endpoint {
    /// The next datagram to send, written into `buf` (which should hold at
    /// least the configured `max_datagram` bytes). Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        // An ACK that arrived since the last datagram went out waits until
        // this one (a reply, likely) is built: see `acks.rs`.
        if self.ack_due_before_sending() {
            self.apply_pending_ack();
        }
        let sent = self.next_transmit(now, buf);
        if sent.is_some() {
            self.note_reply(now);
        }
        sent
    }

    fn next_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((destination, datagram)) = self.handshake_out.pop_front() {
            if datagram.len() <= buf.len() {
                buf[..datagram.len()].copy_from_slice(&datagram);
                self.stats.sent.add(datagram.len());
                return Some(Transmit {
                    destination,
                    len: datagram.len(),
                });
            }
        }
        self.refresh_broadcasts(now);
        self.take_wakes();
        // A few peers touched since the last poll are asked directly (the
        // short path for a round trip); many are filed first, or every
        // call would walk them all.
        if self.schedule_needs_filing() {
            self.refresh_schedule(false);
        }
        // Serve the due peer that has waited longest; one that wanted to
        // send but built nothing is passed over for the rest of this call.
        let mut passed = std::mem::take(&mut self.send_scratch);
        passed.clear();
        let mut sent = None;
        while let Some(peer_id) = self.next_sender(now, &passed) {
            let built = self.build_packet(now, peer_id, buf);
            self.touch(peer_id);
            if let Some(transmit) = built {
                self.stats.sent.add(transmit.len);
                sent = Some(transmit);
                break;
            }
            passed.push(peer_id);
        }
        self.send_scratch = passed;
        sent
    }

    /// The due peer with a confirmed session that wants to send now,
    /// longest-waiting first, skipping `passed`.
    fn next_sender(&self, now: Instant, passed: &[NodeId]) -> Option<NodeId> {
        self.send_candidates(now)
            .filter(|id| !passed.contains(id))
            .find(|id| {
                self.peers.get(id).is_some_and(|p| {
                    p.session.as_ref().is_some_and(|s| s.confirmed) && self.peer_wants_to_send(now, p)
                })
            })
    }

    /// Calls broadcast couriers that are due, once for all sessions. A new
    /// payload is only taken once every active session has sent the last.
    fn refresh_broadcasts(&mut self, now: Instant) {
        if self.broadcast_slots.is_empty() {
            return;
        }
        let Some(space) = self
            .peers
            .values()
            .filter_map(|p| p.active_session())
            .map(|s| courier_space(s.max_datagram))
            .min()
        else {
            return;
        };
        let mut new_payload = false;
        for (k, &i) in self.broadcast_slots.iter().enumerate() {
            let Some(slot) = self.couriers[i].as_mut() else {
                continue;
            };
            let generation = slot.broadcast.generation;
            let all_sent = self
                .peers
                .values()
                .filter_map(|p| p.active_session())
                .all(|s| s.broadcast_sent.get(k).copied().unwrap_or(0) >= generation);
            if !all_sent && !slot.broadcast.bytes.is_empty() {
                continue;
            }
            let m = slot.mandate();
            let due = match m.due() {
                Some(d) if d <= now && slot.backoff_until.is_none_or(|b| b <= now) => d,
                _ => continue,
            };
            let cap = usize::from(m.max_payload).min(space);
            // Taken out while the courier writes into it (no allocation).
            let mut bytes = std::mem::take(&mut slot.broadcast.bytes);
            bytes.resize(cap, 0);
            let token = self.next_frame_token;
            self.next_frame_token += 1;
            let mut w = PayloadWriter::new(&mut bytes, token);
            let ctx = CourierContext {
                now,
                peer: None,
                rtt: None,
            };
            slot.courier_mut().on_send_opportunity(&ctx, &mut w);
            let n = w.len();
            bytes.truncate(n);
            let b = &mut slot.broadcast;
            b.bytes = bytes;
            b.token = token;
            if n == 0 {
                slot.backoff_until = Some(now + EMPTY_WRITE_BACKOFF);
            } else {
                b.generation += 1;
                b.due_since = Some(due);
                slot.last_served = Some(now);
                new_payload = true;
            }
        }
        if new_payload {
            // Every active session now has something to send.
            self.touch_all();
        }
    }

    /// Whether the peer's session has something to send now.
    fn peer_wants_to_send(&self, now: Instant, p: &Peer) -> bool {
        self.session_send_at(p).is_some_and(|t| t <= now)
    }

    /// When the peer's session next wants to send, if at all: a close or
    /// control traffic at once (neither paced nor window-limited), acks and
    /// keepalives when due, courier data at its deadline once the pacer and
    /// the window let it go (a courier within its slack rides in a packet
    /// that goes anyway, and makes one only at its deadline). The schedule
    /// files peers by this instant and `poll_transmit` serves those it has
    /// reached: one rule, so the two cannot disagree. (A courier deadline
    /// passed implies a candidate for `build_packet`.)
    pub(crate) fn session_send_at(&self, p: &Peer) -> Option<Instant> {
        let s = p.session.as_ref()?;
        if s.close_due.is_some() {
            return Some(self.epoch);
        }
        if !s.is_active() {
            return None;
        }
        if !s.pongs_due.is_empty()
            || s.ping_due.is_some()
            || s.keepalive_due
            || s.ack_delay_announcement.is_due()
        {
            return Some(self.epoch);
        }
        let control = earliest(
            Some(self.keepalive_at(s)),
            s.acks.deadline(self.cfg.max_ack_delay),
        );
        if !s.window_open() {
            // An ack or the probe timeout wakes us instead.
            return control;
        }
        let data = if super::timers::any_pending_broadcast(self, s) {
            Some(self.epoch)
        } else {
            p.courier_slots
                .iter()
                .filter_map(|&i| self.courier_deadline(i))
                .min()
        };
        let paced = s.pacer.next_ready(s.max_datagram);
        earliest(control, data.map(|t| t.max(paced)))
    }

    /// Whether pacing and the congestion window let courier data go now.
    pub(crate) fn courier_data_may_go(&self, now: Instant, s: &Session) -> bool {
        s.window_open() && s.pacer.ready_at(now, s.max_datagram) <= now
    }

    /// When a keepalive PING goes: after a quiet keepalive interval, and
    /// at least every [`ELICIT_EVERY`] intervals without an ack-eliciting
    /// packet, since unacknowledged traffic (acks, idle digests) keeps the
    /// path warm but brings no RTT samples and no news of our direction.
    pub(crate) fn keepalive_at(&self, s: &Session) -> Instant {
        let quiet = s.last_send.max(s.last_recv) + self.cfg.keepalive_interval;
        let unelicited = s.recovery.last_eliciting_sent().unwrap_or(s.created)
            + self.cfg.keepalive_interval * ELICIT_EVERY;
        quiet.min(unelicited)
    }

    /// Couriers due now for session `s`: its own, and broadcast payloads it
    /// has not sent yet.
    fn due_candidates<'a>(
        &'a self,
        now: Instant,
        own: impl Iterator<Item = usize> + 'a,
        s: &'a Session,
    ) -> impl Iterator<Item = Candidate> + 'a {
        let own = own.filter_map(move |i| {
            let slot = self.couriers[i].as_ref()?;
            let m = slot.mandate();
            let due = m.due().filter(|&d| d <= now)?;
            if slot.backoff_until.is_some_and(|b| b > now) {
                return None;
            }
            if let Some(cap) = &slot.rate_cap {
                if cap.ready_at(now, usize::from(m.max_payload)) > now {
                    return None;
                }
            }
            Some(Candidate {
                slot: i,
                priority: m.priority,
                due: slot.last_served.map_or(due, |t| t.max(due)),
                max_payload: usize::from(m.max_payload),
                min_payload: min_payload(&m),
            })
        });
        let broadcast = self
            .broadcast_slots
            .iter()
            .enumerate()
            .filter_map(move |(k, &i)| {
                let slot = self.couriers[i].as_ref()?;
                let b = &slot.broadcast;
                let sent = s.broadcast_sent.get(k).copied().unwrap_or(0);
                if b.generation <= sent || b.bytes.is_empty() {
                    return None;
                }
                Some(Candidate {
                    slot: i,
                    priority: slot.mandate().priority,
                    due: b.due_since.unwrap_or(now),
                    max_payload: b.bytes.len(),
                    min_payload: b.bytes.len(),
                })
            });
        own.chain(broadcast)
    }

    fn build_packet(&mut self, now: Instant, peer_id: NodeId, buf: &mut [u8]) -> Option<Transmit> {
        // Collect and rank due couriers before borrowing the session mutably.
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        {
            let p = self.peers.get(&peer_id)?;
            let s = p.session.as_ref()?;
            if s.is_active() && s.close_due.is_none() && self.courier_data_may_go(now, s) {
                candidates.extend(self.due_candidates(now, p.courier_slots.iter().copied(), s));
            }
        }
        scheduler::rank(&mut candidates, now);
        let keepalive_due = {
            let s = self.peers.get(&peer_id)?.session.as_ref()?;
            self.keepalive_at(s) <= now
        };
        let p = self.peers.get_mut(&peer_id)?;
        let s = p.session.as_mut()?;
        if s.next_pn >= MAX_PACKET_NUMBER {
            // Never reuse a nonce: this key is spent.
            self.end_session(now, peer_id, DisconnectReason::PacketNumbersExhausted);
            return None;
        }
        let max = s.max_datagram.min(buf.len());
        let closing = s.close_due.take();
        let header = Header {
            packet_type: if closing.is_some() {
                PacketType::Close
            } else {
                PacketType::Data
            },
            session_id: s.remote_id,
            packet_number: s.next_pn,
        };
        let (head, rest) = buf.split_at_mut(HEADER_LEN);
        head.copy_from_slice(&header.to_bytes());
        let mut w = Writer::new(&mut rest[..max - HEADER_LEN - TAG_LEN]);
        let mut eliciting = false;

        let mut acked = false;
        if s.acks.has_ranges() {
            let delay = s.acks.delay(now).as_micros() as u64;
            acked = wire::write_ack(&mut w, delay, s.acks.ranges_desc(), MAX_ACK_RANGES).is_ok();
        }
        while let Some(&token) = s.pongs_due.first() {
            if wire::write_pong(&mut w, token).is_err() {
                break;
            }
            s.pongs_due.remove(0);
        }
        if let Some(code) = closing {
            let _ = wire::write_close(&mut w, code, b"closed by application");
        }
        if let Some(delay) = s.ack_delay_announcement.to_send() {
            if wire::write_ack_delay(&mut w, delay.as_micros() as u64).is_ok() {
                s.ack_delay_announcement.on_sent(s.next_pn);
                eliciting = true;
            }
        }
        if let Some(token) = s.ping_due {
            if wire::write_ping(&mut w, token).is_ok() {
                s.ping_due = None;
                if s.app_pings.len() >= MAX_APP_PINGS {
                    s.app_pings.remove(0);
                }
                s.app_pings.push((token, now));
                eliciting = true;
            }
        }

        // Couriers, best first, as many as fit.
        let mut frames = std::mem::take(&mut self.frames_scratch);
        frames.clear();
        let mut wrote_courier = false;
        for c in &candidates {
            let space = w.remaining().saturating_sub(COURIER_FRAME_OVERHEAD);
            if !scheduler::fits(c, space, wrote_courier) {
                continue;
            }
            let Some(slot) = self.couriers[c.slot].as_mut() else {
                continue;
            };
            let wire_id = slot.id.0;
            let mut token = slot.broadcast.token;
            let mut frame_eliciting = true;
            let written = match slot.scope {
                CourierScope::Peer(_) => {
                    let ctx = CourierContext {
                        now,
                        peer: Some(peer_id),
                        rtt: s.rtt.smoothed(),
                    };
                    token = self.next_frame_token;
                    self.next_frame_token += 1;
                    let courier = slot.courier_mut();
                    let largest = c.max_payload.min(largest_courier_room(s.max_datagram));
                    wire::write_courier(&mut w, wire_id, c.max_payload, |out| {
                        let mut pw = PayloadWriter::new(out, token).with_largest_offer(largest);
                        courier.on_send_opportunity(&ctx, &mut pw);
                        frame_eliciting = pw.is_acknowledged();
                        (pw.len(), frame_eliciting)
                    })
                    .unwrap_or(0)
                }
                CourierScope::Broadcast => {
                    let bytes = &slot.broadcast.bytes;
                    let n = wire::write_courier(&mut w, wire_id, bytes.len(), |out| {
                        out[..bytes.len()].copy_from_slice(bytes);
                        (bytes.len(), true)
                    })
                    .unwrap_or(0);
                    if n > 0 {
                        let k = self
                            .broadcast_slots
                            .iter()
                            .position(|&i| i == c.slot)
                            .unwrap_or(0);
                        if s.broadcast_sent.len() <= k {
                            s.broadcast_sent.resize(k + 1, 0);
                        }
                        s.broadcast_sent[k] = slot.broadcast.generation;
                    }
                    n
                }
            };
            if written == 0 {
                slot.backoff_until = Some(now + EMPTY_WRITE_BACKOFF);
            } else {
                if matches!(slot.scope, CourierScope::Peer(_)) {
                    slot.last_served = Some(now);
                }
                wrote_courier = true;
                eliciting |= frame_eliciting;
                s.courier_frames_sent += 1;
                slot.stats.frames_sent += 1;
                slot.stats.bytes_sent += written as u64;
                if let Some(cap) = slot.rate_cap.as_mut() {
                    cap.on_sent(now, written);
                }
                // An unacknowledged frame has no fate to report.
                if frame_eliciting {
                    frames.push(FrameRecord {
                        slot: c.slot as u32,
                        token,
                    });
                }
            }
        }
        self.candidates = candidates;

        // Any ack-eliciting packet serves as the keepalive or the probe.
        if !eliciting
            && closing.is_none()
            && (keepalive_due || s.keepalive_due)
            && wire::write_ping(&mut w, KEEPALIVE_TOKEN).is_ok()
        {
            eliciting = true;
        }
        if eliciting {
            s.keepalive_due = false;
        }
        let body_len = w.len();
        if body_len == 0 {
            // Nothing was due after all (a courier wrote nothing).
            self.frames_scratch = frames;
            return None;
        }
        let tag = s
            .keys
            .send
            .seal(header.packet_number, head, &mut rest[..body_len]);
        rest[body_len..body_len + TAG_LEN].copy_from_slice(&tag);
        let len = HEADER_LEN + body_len + TAG_LEN;
        s.next_pn += 1;
        s.pacer.on_sent(now, len);
        s.last_send = now;
        s.sent.add(len);
        if acked {
            s.acks.on_ack_sent();
        }
        let mut forgotten = crate::session::Outcome::default();
        s.recovery.on_sent(
            header.packet_number,
            now,
            len,
            eliciting,
            &frames,
            &mut self.lost_scratch,
            &mut forgotten,
        );
        if forgotten.lost_packets > 0 {
            super::recv::apply_outcome(s, now, &forgotten);
        }
        if s.cc.is_window_limited(s.recovery.bytes_in_flight) {
            s.window_limited = true;
        }
        self.frames_scratch = frames;
        let destination = s.addr;
        if forgotten.lost_packets > 0 {
            self.report_frames(now, peer_id);
        }
        if closing.is_some() {
            self.end_session(now, peer_id, DisconnectReason::ClosedLocally);
        }
        Some(Transmit { destination, len })
    }
}

/// Payload room for courier frames in an otherwise empty packet.
fn courier_space(max_datagram: usize) -> usize {
    max_datagram - HEADER_LEN - TAG_LEN - COURIER_FRAME_OVERHEAD
}

/// The most room a peer courier is ever offered: a packet with nothing else
/// but an acknowledgement of one range (every packet carries one once the
/// peer has sent anything).
fn largest_courier_room(max_datagram: usize) -> usize {
    const ONE_RANGE_ACK: usize = 1 + 8 + 8 + 1 + 8;
    courier_space(max_datagram).saturating_sub(ONE_RANGE_ACK)
}

/// The least room a courier accepts an opportunity with.
fn min_payload(m: &crate::courier::Mandate) -> usize {
    let max = usize::from(m.max_payload);
    match usize::from(m.min_payload) {
        0 => max,
        n => n.min(max),
    }
}
