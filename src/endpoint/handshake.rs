//! The SYN / SYN-ACK / ACK exchange as the endpoint runs it: trust checks,
//! the signature rate limit, the reply cache, the ID duel and the seed's
//! rules for a SYN that arrives on an established session.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::answers::AnswerSlot;
use super::peer::{AnsweredSyn, Confirming, DeferredSyn, Outgoing, Presigned};
use super::Endpoint;
use crate::crypto::NodeId;
use crate::event::{Alert, DisconnectReason, Event};
use crate::handshake::{self as hs, Transcript, ACK_LABEL, SYN_ACK_LABEL, SYN_LABEL};
use crate::session::{Session, SessionParams};
use crate::stats::DropReason;
use crate::wire::{HandshakeFields, HsAck, Syn, SynAck, HS_NONCE_LEN};

/// A presigned SYN older than this is signed afresh.
const PRESIGN_MAX_AGE: Duration = Duration::from_secs(60);
/// How long after a presigned SYN is used, or a session is made, the next is
/// signed: out of the way of the handshake in progress.
const PRESIGN_DELAY: Duration = Duration::from_secs(2);
/// Presigned SYNs held at most (each is an ephemeral secret in memory).
const MAX_PRESIGNED: usize = 16;

impl Endpoint {
    fn nonce(&mut self) -> [u8; HS_NONCE_LEN] {
        let mut n = [0u8; HS_NONCE_LEN];
        self.rng.fill_bytes(&mut n);
        n
    }

    /// Sends a new SYN to `peer` (the presigned one if it is fresh, else a
    /// newly signed one), unless an attempt started too recently (then the
    /// liveness timer retries later).
    pub(crate) fn start_attempt(&mut self, now: Instant, peer: NodeId) {
        let Some(addr) = self.trust.get(&peer).and_then(|a| a.best_address()) else {
            return;
        };
        let interval = self.cfg.signature_interval;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.last_attempt_signature.is_some_and(|t| now < t + interval) {
            return;
        }
        let presigned = p
            .presigned
            .take()
            .filter(|s| now < s.signed_at + PRESIGN_MAX_AGE && !self.by_session.contains_key(&s.local_id));
        let syn = match presigned {
            Some(s) => {
                self.schedule_presign(now + PRESIGN_DELAY);
                s
            }
            None => match self.sign_syn(now, peer) {
                Some(s) => Box::new(s),
                None => return,
            },
        };
        self.stats.handshakes_started += 1;
        let wall_ms = self.wall_ms(now);
        if let Some(a) = self.trust.get_mut(&peer) {
            a.note_attempt(wall_ms);
        }
        let rto = self.cfg.handshake_initial_rto;
        let p = self.peers.entry(peer).or_default();
        if let Some(old) = p.outgoing.take() {
            self.by_session.remove(&old.local_id);
        }
        p.last_attempt_signature = Some(now);
        p.liveness.last_probe = Some(now);
        let datagram = syn.syn.clone();
        p.outgoing = Some(Box::new(Outgoing {
            local_id: syn.local_id,
            addr,
            secret: Some(syn.secret),
            ephemeral: syn.ephemeral,
            syn: syn.syn,
            transcript: syn.transcript,
            started: now,
            next_resend: now + rto,
            rto,
            retries_followed: 0,
        }));
        self.by_session.insert(syn.local_id, peer);
        tracing::debug!(peer = %peer.short(), "SYN sent");
        self.queue_handshake(addr, datagram);
    }

    /// Signs a SYN to `peer`: one RSA signature.
    fn sign_syn(&mut self, now: Instant, peer: NodeId) -> Option<Presigned> {
        let responder_sig_len = self.trust.get(&peer)?.public_key.signature_len();
        let local_id = self.new_session_id();
        let (secret, ephemeral) = hs::ephemeral(&mut self.rng);
        let syn = Syn {
            initiator: self.identity.id().0,
            responder: peer.0,
            session_id: local_id,
            nonce: self.nonce(),
            ephemeral,
            timestamp_us: self.wall_us(now),
            max_datagram: self.cfg.max_datagram as u16,
        };
        // Pad so the SYN-ACK (signed with the responder's key) is never
        // larger than our SYN: the responder refuses to amplify.
        let syn_ack_len = hs::message_len(&placeholder_syn_ack(), 1, responder_sig_len);
        let (datagram, transcript) = hs::sign_message(
            &syn,
            0,
            SYN_LABEL,
            &Transcript::default(),
            &self.identity,
            &mut self.rng,
            syn_ack_len,
        );
        self.stats.rsa_signatures += 1;
        Some(Presigned {
            local_id,
            secret,
            ephemeral,
            syn: datagram,
            transcript,
            signed_at: now,
        })
    }

    pub(crate) fn schedule_presign(&mut self, at: Instant) {
        self.presign_at = Some(self.presign_at.map_or(at, |t| t.min(at)));
    }

    /// Signs SYNs ahead of need for associates with an address (at most
    /// [`MAX_PRESIGNED`] held), so that a connect or reconnect costs two RSA
    /// signatures on its critical path instead of three. The endpoint's own
    /// choice, for trusted peers only: nothing from the network triggers it.
    pub(crate) fn presign_handshakes(&mut self, now: Instant) {
        self.presign_at = None;
        let held = self.peers.values().filter(|p| p.presigned.is_some()).count();
        let wanting: Vec<NodeId> = self
            .trust
            .iter()
            .filter(|a| a.best_address().is_some())
            .map(|a| a.id)
            .filter(|id| self.peers.get(id).is_none_or(|p| p.presigned.is_none()))
            .take(MAX_PRESIGNED.saturating_sub(held))
            .collect();
        for id in wanting {
            if let Some(s) = self.sign_syn(now, id) {
                self.stats.presigned_syns += 1;
                self.peers.entry(id).or_default().presigned = Some(Box::new(s));
            }
        }
    }

    /// Charges one RSA verification to the sender's address and to the
    /// endpoint: a flooding source exhausts its own budget, not everyone's.
    fn may_verify(&mut self, now: Instant, from: SocketAddr) -> bool {
        let source_ok = self.source_budgets.take(now, from);
        if source_ok && self.verify_budget.take(now) {
            self.stats.rsa_verifications += 1;
            true
        } else {
            self.drop_datagram(DropReason::VerifyBudget);
            false
        }
    }

    /// Keeps a verified SYN to answer at `at` (the latest one per peer),
    /// counting it as dropped for `reason` meanwhile.
    fn put_off_syn(
        &mut self,
        peer: NodeId,
        at: Instant,
        reserved: bool,
        from: SocketAddr,
        datagram: &[u8],
        reason: DropReason,
    ) {
        self.peers.entry(peer).or_default().deferred = Some(DeferredSyn {
            at,
            from,
            datagram: datagram.to_vec(),
            reserved,
        });
        self.drop_datagram(reason);
    }

    pub(crate) fn handle_syn(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.answer_syn(now, from, datagram, false);
    }

    /// Answers a SYN; `reserved` when it comes back at the answer slot it
    /// was given (see `answers.rs`), so it signs without queueing again.
    pub(crate) fn answer_syn(&mut self, now: Instant, from: SocketAddr, datagram: &[u8], reserved: bool) {
        let m = match Syn::decode(datagram) {
            Ok(m) => m,
            Err(e) => return self.drop_datagram(e.into()),
        };
        if m.msg.responder != self.identity.id().0 {
            return self.drop_datagram(DropReason::NotForUs);
        }
        let peer = NodeId(m.msg.initiator);
        let Some(key) = self.trust.get(&peer).map(|a| a.public_key.clone()) else {
            return self.drop_datagram(DropReason::UntrustedKey);
        };
        // Whatever follows may change this peer's timers.
        self.touch(peer);
        if m.signature.len() != key.signature_len() {
            return self.drop_datagram(DropReason::BadSignature);
        }
        let digest: [u8; 32] = Sha256::new()
            .chain_update(m.signed)
            .chain_update(m.signature)
            .finalize()
            .into();
        let p = self.peers.entry(peer).or_default();
        // A re-sent SYN we already answered: the same answer, no new signature.
        let cached = p
            .answered
            .as_ref()
            .filter(|a| a.digest == digest && a.syn_ack.len() <= datagram.len())
            .map(|a| (a.local_id, a.syn_ack.clone()));
        if let Some((local_id, reply)) = cached {
            if p.session_by_local_id(local_id).is_some() {
                self.stats.whole += 1;
                return self.queue_handshake(from, reply);
            }
        }
        // Waiting for its answer slot: a re-send of the queued SYN is worth
        // no verification, and a full queue turns SYNs away before any.
        if !reserved {
            let queued = p.deferred.as_ref().filter(|d| d.reserved);
            if queued.is_some_and(|d| d.datagram == datagram) {
                return self.drop_datagram(DropReason::RateLimited);
            }
            if queued.is_none() && self.answers.peek(now) == AnswerSlot::Full {
                return self.drop_datagram(DropReason::SigningBusy);
            }
        }
        let returned = m
            .cookie
            .is_some_and(|c| self.cookie_is_valid(now, from, &peer, &c));
        if !self.take_syn_budget(now, from, returned) {
            if returned {
                return self.drop_datagram(DropReason::VerifyBudget);
            }
            return self.send_retry(now, from, &peer, m.msg.session_id);
        }
        let Some(transcript) = hs::verify_message(&m, SYN_LABEL, &Transcript::default(), &key) else {
            return self.drop_datagram(DropReason::BadSignature);
        };
        let syn = m.msg.clone();
        let p = self.peers.entry(peer).or_default();

        // The seed's rules for a SYN on an established session.
        if let Some(s) = p.session.as_ref() {
            if syn.timestamp_us <= s.peer_ts_us {
                return self.drop_datagram(DropReason::StaleSyn);
            }
            if s.is_active() && now.saturating_duration_since(s.last_recv) < self.cfg.restart_silence {
                // Crossing connects: the peer's SYN left before our shared
                // session completed. The session stands; no alarm.
                if now.saturating_duration_since(s.created) < self.cfg.restart_silence {
                    return self.drop_datagram(DropReason::CrossedSyn);
                }
                self.drop_datagram(DropReason::SynOnLiveSession);
                return self.push_event(Event::Alert(Alert::SynOnLiveSession { peer, from }));
            }
        }
        if let Some((s, _)) = p.pending.as_deref() {
            if syn.timestamp_us < s.peer_ts_us {
                return self.drop_datagram(DropReason::StaleSyn);
            }
        }
        // ID duel: both sides sent a SYN at once, each to where the other
        // is. Our SYN to another address (a stale one from the associates
        // file, say) is no duel: the peer is evidently at `from`, and
        // winning there would shut it out for as long as we keep dialling.
        if let Some(out) = p.outgoing.as_ref() {
            if out.addr == from && self.identity.id().wins_duel_against(&peer) {
                return self.drop_datagram(DropReason::DuelLost);
            }
            let id = out.local_id;
            p.outgoing = None;
            self.by_session.remove(&id);
            tracing::debug!(peer = %peer.short(), "lost the ID duel; answering as adherent");
        }
        let p = self.peers.entry(peer).or_default();
        // A slot already reserved for this peer serves its newer SYN too
        // (a SYN back at its slot was taken out of `deferred`).
        let queued_at = p.deferred.as_ref().filter(|d| d.reserved).map(|d| d.at);
        let not_before = p.last_answer_signature.map(|t| t + self.cfg.signature_interval);
        if let Some(allowed) = not_before.filter(|&a| now < a) {
            let at = queued_at.map_or(allowed, |q| q.max(allowed));
            return self.put_off_syn(
                peer,
                at,
                queued_at.is_some(),
                from,
                datagram,
                DropReason::RateLimited,
            );
        }
        if let Some(at) = queued_at {
            return self.put_off_syn(peer, at, true, from, datagram, DropReason::SigningBusy);
        }
        let answer = SynAck {
            responder: self.identity.id().0,
            session_id: 0, // set below, once we know we will answer
            nonce: self.nonce(),
            ephemeral: [0; 32],
            timestamp_us: self.wall_us(now),
            max_datagram: self.cfg.max_datagram as u16,
        };
        // Check the size before spending a signature on it.
        if hs::message_len(&answer, syn.session_id, self.identity.public().signature_len()) > datagram.len() {
            return self.drop_datagram(DropReason::AmplificationRefused);
        }
        if !reserved {
            match self.answers.reserve(now) {
                AnswerSlot::Now => {}
                AnswerSlot::At(at) => {
                    return self.put_off_syn(peer, at, true, from, datagram, DropReason::SigningBusy)
                }
                AnswerSlot::Full => return self.drop_datagram(DropReason::SigningBusy),
            }
        }
        let local_id = self.new_session_id();
        let (secret, ephemeral) = hs::ephemeral(&mut self.rng);
        let answer = SynAck {
            session_id: local_id,
            ephemeral,
            ..answer
        };
        let (reply, transcript) = hs::sign_message(
            &answer,
            syn.session_id,
            SYN_ACK_LABEL,
            &transcript,
            &self.identity,
            &mut self.rng,
            0,
        );
        self.stats.rsa_signatures += 1;
        let Some(keys) = hs::agree(secret, syn.ephemeral, &transcript, false) else {
            return self.drop_datagram(DropReason::BadHandshake);
        };
        self.stats.whole += 1;
        let session = Session::new(
            SessionParams {
                peer,
                local_id,
                remote_id: syn.session_id,
                addr: from,
                keys,
                initiator: false,
                peer_ts_us: syn.timestamp_us,
                max_datagram: self.cfg.max_datagram.min(usize::from(syn.max_datagram)),
                max_send_rate: self.cfg.max_send_rate,
                max_ack_delay: self.cfg.max_ack_delay,
            },
            now,
        );
        let p = self.peers.entry(peer).or_default();
        let old_pending = p.pending.replace(Box::new((
            session,
            Confirming {
                transcript,
                initiator_ephemeral: syn.ephemeral,
            },
        )));
        p.last_answer_signature = Some(now);
        p.deferred = None;
        p.answered = Some(AnsweredSyn {
            digest,
            syn_ack: reply.clone(),
            local_id,
        });
        if let Some((old, _)) = old_pending.as_deref() {
            self.by_session.remove(&old.local_id);
        }
        self.by_session.insert(local_id, peer);
        tracing::debug!(peer = %peer.short(), "SYN-ACK sent");
        self.queue_handshake(from, reply);
    }

    pub(crate) fn handle_syn_ack(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let m = match SynAck::decode(datagram) {
            Ok(m) => m,
            Err(e) => return self.drop_datagram(e.into()),
        };
        let Some(&peer) = self.by_session.get(&m.header.session_id) else {
            return self.drop_datagram(DropReason::UnexpectedHandshake);
        };
        let Some(key) = self.trust.get(&peer).map(|a| a.public_key.clone()) else {
            return self.drop_datagram(DropReason::UntrustedKey);
        };
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(out) = p.outgoing.as_mut().filter(|o| o.local_id == m.header.session_id) else {
            // Our ACK was lost and the peer re-sent its answer: re-send the ACK.
            let cached = p
                .session
                .as_ref()
                .filter(|s| s.local_id == m.header.session_id && s.remote_id == m.msg.session_id)
                .and_then(|s| s.hs_ack.clone().map(|a| (s.addr, a)));
            return match cached {
                Some((addr, ack)) => {
                    self.stats.whole += 1;
                    self.queue_handshake(addr, ack)
                }
                None => self.drop_datagram(DropReason::UnexpectedHandshake),
            };
        };
        if m.msg.responder != peer.0 || m.signature.len() != key.signature_len() {
            return self.drop_datagram(DropReason::BadSignature);
        }
        let out_transcript = out.transcript.clone();
        if !self.may_verify(now, from) {
            return;
        }
        let Some(transcript) = hs::verify_message(&m, SYN_ACK_LABEL, &out_transcript, &key) else {
            return self.drop_datagram(DropReason::BadSignature);
        };
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(mut out) = p.outgoing.take() else { return };
        let secret = out.secret.take();
        let Some(keys) = secret.and_then(|s| hs::agree(s, m.msg.ephemeral, &transcript, true)) else {
            self.by_session.remove(&out.local_id);
            return self.drop_datagram(DropReason::BadHandshake);
        };
        let ack = HsAck {
            initiator: self.identity.id().0,
            nonce: self.nonce(),
            ephemeral: out.ephemeral,
            timestamp_us: self.wall_us(now),
        };
        let (ack_datagram, _) = hs::sign_message(
            &ack,
            m.msg.session_id,
            ACK_LABEL,
            &transcript,
            &self.identity,
            &mut self.rng,
            0,
        );
        self.stats.rsa_signatures += 1;
        self.stats.whole += 1;
        let mut session = Session::new(
            SessionParams {
                peer,
                local_id: out.local_id,
                remote_id: m.msg.session_id,
                addr: from,
                keys,
                initiator: true,
                peer_ts_us: m.msg.timestamp_us,
                max_datagram: self.cfg.max_datagram.min(usize::from(m.msg.max_datagram)),
                max_send_rate: self.cfg.max_send_rate,
                max_ack_delay: self.cfg.max_ack_delay,
            },
            now,
        );
        session.hs_ack = Some(ack_datagram.clone());
        // A ping right behind the ACK: if the ACK is lost, the sealed ping
        // confirms the session at the responder all the same.
        session.keepalive_due = true;
        let rto = self.cfg.handshake_initial_rto;
        session.confirm_probe = Some((now + rto, rto));
        self.queue_handshake(from, ack_datagram);
        self.install_session(now, peer, session);
    }

    pub(crate) fn handle_hs_ack(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let m = match HsAck::decode(datagram) {
            Ok(m) => m,
            Err(e) => return self.drop_datagram(e.into()),
        };
        let Some(&peer) = self.by_session.get(&m.header.session_id) else {
            return self.drop_datagram(DropReason::UnexpectedHandshake);
        };
        let Some(key) = self.trust.get(&peer).map(|a| a.public_key.clone()) else {
            return self.drop_datagram(DropReason::UntrustedKey);
        };
        let Some(p) = self.peers.get(&peer) else { return };
        let Some((_, confirming)) = p
            .pending
            .as_deref()
            .filter(|(s, _)| s.local_id == m.header.session_id)
        else {
            // A duplicate ACK for a session already confirmed is harmless.
            if p.session
                .as_ref()
                .is_some_and(|s| s.local_id == m.header.session_id)
            {
                self.stats.whole += 1;
                return;
            }
            return self.drop_datagram(DropReason::UnexpectedHandshake);
        };
        if m.msg.initiator != peer.0
            || m.msg.ephemeral != confirming.initiator_ephemeral
            || m.signature.len() != key.signature_len()
        {
            return self.drop_datagram(DropReason::BadSignature);
        }
        let transcript = confirming.transcript.clone();
        if !self.may_verify(now, from) {
            return;
        }
        if hs::verify_message(&m, ACK_LABEL, &transcript, &key).is_none() {
            return self.drop_datagram(DropReason::BadSignature);
        }
        self.stats.whole += 1;
        self.confirm_pending(now, peer);
    }

    /// The responder's session is confirmed (by the ACK, or by the first
    /// authentic data packet, which only the initiator could have sealed).
    pub(crate) fn confirm_pending(&mut self, now: Instant, peer: NodeId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some((mut session, _)) = p.pending.take().map(|b| *b) else {
            return;
        };
        session.confirmed = true;
        self.install_session(now, peer, session);
    }

    /// Makes `session` the peer's established session, replacing any other.
    fn install_session(&mut self, now: Instant, peer: NodeId, mut session: Session) {
        session.quality = crate::session::LinkQuality::new(&self.cfg.link_quality);
        session.recovery.max_pto = Some(self.cfg.keepalive_interval);
        let addr = session.addr;
        let initiator = session.initiator;
        let wall_ms = self.wall_ms(now);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // One session per peer: an attempt of ours still in flight is moot.
        if let Some(out) = p.outgoing.take() {
            self.by_session.remove(&out.local_id);
        }
        // A presigned SYN must be newer than this handshake, or the peer
        // would take it for a stale one: sign the next one later.
        let had_presigned = p.presigned.take().is_some();
        let old = p.session.replace(Box::new(session));
        if let Some(old) = old {
            self.by_session.remove(&old.local_id);
            if old.is_active() {
                self.push_event(Event::Disconnected {
                    peer,
                    reason: DisconnectReason::Replaced,
                });
            }
            self.notify_session(now, peer, false);
        }
        self.notify_session(now, peer, true);
        self.stats.handshakes_completed += 1;
        if had_presigned || self.trust.get(&peer).is_some_and(|a| a.best_address().is_some()) {
            self.schedule_presign(now + PRESIGN_DELAY);
        }
        if let Some(a) = self.trust.get_mut(&peer) {
            a.note_success(wall_ms);
            a.note_address(addr, true, Some(wall_ms));
        }
        self.note_activity(now, peer);
        tracing::info!(peer = %peer.short(), %addr, initiator, "session established");
        self.push_event(Event::Connected {
            peer,
            addr,
            initiator,
        });
    }
}

/// A SYN-ACK of the real size, for measuring.
fn placeholder_syn_ack() -> SynAck {
    SynAck {
        responder: [0; 32],
        session_id: 1,
        nonce: [0; HS_NONCE_LEN],
        ephemeral: [0; 32],
        timestamp_us: 0,
        max_datagram: 0,
    }
}
