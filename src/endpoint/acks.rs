//! Acknowledgements taken off the reply path.
//!
//! An ACK frame costs the receiver loss detection, congestion control and
//! every acknowledged frame's report to its courier: in an echo, 1,500 of
//! the 5,100 instructions `handle_datagram` took (callgrind,
//! `benches/roundtrip_count.rs`). None of it is needed to answer what
//! arrived alongside, so the last ACK
//! of a datagram is kept (its ranges copied, without allocation once warm)
//! and applied, exactly as it would have been on arrival, at the engine's
//! next call that could need it: the next `handle_datagram`,
//! `handle_timeout` or `poll_timeout`, `poll_transmit` once a datagram
//! went out since it arrived, or the end of its session (what it
//! acknowledged was delivered, not failed). The reply a courier writes in between is
//! built on the state before the ACK, as if the ACK had arrived a moment
//! later. Every driver calls `poll_timeout` before it sleeps, so an ACK
//! that frees the window or reveals a loss is acted on in the same turn.

use std::time::{Duration, Instant};

use super::Endpoint;
use crate::crypto::NodeId;
use crate::event::Event;
use crate::session::Session;
use crate::wire::AckFrame;

/// An ACK received but not applied yet; its ranges are in
/// `Endpoint::ack_ranges`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingAck {
    peer: NodeId,
    /// The session it came in on (a new one may have replaced it since).
    session: u32,
    largest: u64,
    delay_us: u64,
    arrived: Instant,
    /// The latest `now` the engine was given since: couriers hear of the
    /// frames' fates at this time, never before one they already saw.
    latest: Instant,
    /// A datagram went out since it arrived.
    replied: bool,
}

impl PendingAck {
    /// `ack`, arrived at `now` on `peer`'s session `session` (its ranges go
    /// to `Endpoint::ack_ranges` separately).
    pub(crate) fn new(peer: NodeId, session: u32, ack: &AckFrame<'_>, now: Instant) -> Self {
        Self {
            peer,
            session,
            largest: ack.largest,
            delay_us: ack.delay_us,
            arrived: now,
            latest: now,
            replied: false,
        }
    }
}

impl Endpoint {
    /// Notes that `poll_transmit` returned a datagram at `now`: from its
    /// next call on, a kept ACK is applied first.
    pub(crate) fn note_reply(&mut self, now: Instant) {
        if let Some(p) = self.pending_ack.as_mut() {
            p.replied = true;
            p.latest = p.latest.max(now);
        }
    }

    /// Whether `poll_transmit` should apply the kept ACK before it looks
    /// for a sender.
    pub(crate) fn ack_due_before_sending(&self) -> bool {
        self.pending_ack.is_some_and(|p| p.replied)
    }

    /// Applies the kept ACK if it is `peer`'s: its session is about to end,
    /// and what it acknowledged was delivered, not failed.
    pub(crate) fn apply_pending_ack_of(&mut self, peer: NodeId) {
        if self.pending_ack.is_some_and(|p| p.peer == peer) {
            self.apply_pending_ack();
        }
    }

    /// Applies the kept ACK, if any, as of its arrival.
    pub(crate) fn apply_pending_ack(&mut self) {
        let Some(p) = self.pending_ack.take() else {
            return;
        };
        let ranges = std::mem::take(&mut self.ack_ranges);
        let link_cfg = self.cfg.link_quality;
        let quality = self
            .peers
            .get_mut(&p.peer)
            .and_then(|peer| peer.session.as_mut())
            .filter(|s| s.local_id == p.session)
            .map(|s| {
                apply_ack(
                    s,
                    &link_cfg,
                    &p,
                    &ranges,
                    &mut self.delivered_scratch,
                    &mut self.lost_scratch,
                )
            });
        self.ack_ranges = ranges;
        let Some(quality) = quality else {
            // The session ended meanwhile: nothing left to update.
            return;
        };
        if let Some(good) = quality {
            self.push_event(Event::LinkQuality { peer: p.peer, good });
        }
        self.report_frames(p.latest, p.peer);
        self.touch(p.peer);
    }
}

/// Applies an ACK to its session: acknowledged packets, RTT, losses,
/// congestion control and pacing; frames' fates go to the scratch lists.
/// Returns a change of link quality, if the RTT sample made one.
pub(crate) fn apply_ack(
    session: &mut Session,
    link_cfg: &crate::session::LinkQualityConfig,
    ack: &PendingAck,
    ranges: &[(u64, u64)],
    delivered: &mut Vec<crate::session::FrameRecord>,
    lost: &mut Vec<crate::session::FrameRecord>,
) -> Option<bool> {
    let now = ack.arrived;
    let samples_before = session.rtt.stats().samples;
    session.ack_delay_announcement.on_ack(ack.largest);
    let outcome = session.recovery.on_ack(
        now,
        ack.largest,
        ranges.iter().copied(),
        // The peer held it no longer than it said it would.
        Duration::from_micros(ack.delay_us).min(session.peer_max_ack_delay),
        &mut session.rtt,
        delivered,
        lost,
    );
    super::recv::apply_outcome(session, now, &outcome);
    if session.rtt.stats().samples > samples_before {
        let latest = session.rtt.stats().latest?;
        return session.quality.on_rtt(link_cfg, now, latest);
    }
    None
}
