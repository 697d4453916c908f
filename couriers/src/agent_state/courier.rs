//! The per-peer courier that keeps one peer in sync with the shared store.
//!
//! * A parameter whose `(version, writer)` the peer is not known to hold is
//!   sent, most important and smallest first; a lost frame makes it due
//!   again at once.
//! * Every parameter is also refreshed periodically, more often when it is
//!   small or important (the seed's "sync").
//! * When the peer should hold exactly our state, an idle stream of DIGEST
//!   records (at `idle_interval`) confirms it cheaply. A digest that does
//!   not match makes both sides send their full state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use octolink::wire::Writer;
use octolink::{Courier, CourierContext, CourierWaker, Mandate, NodeId, PayloadWriter};

use super::store::{AgentState, Param};
use super::wire::{self, Record};

/// Settings for an [`AgentStateCourier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentStateConfig {
    pub priority: u8,
    /// The idle stream's period: a digest this often, or up to half a period
    /// later when that lets it share a packet with other traffic.
    pub idle_interval: Duration,
    /// Refresh period of a small (≤ 32 bytes), top-importance parameter;
    /// larger or less important ones are refreshed proportionally less.
    pub refresh_base: Duration,
}

impl Default for AgentStateConfig {
    fn default() -> Self {
        Self {
            priority: 200,
            idle_interval: Duration::from_millis(100),
            refresh_base: Duration::from_secs(1),
        }
    }
}

impl AgentStateConfig {
    /// How often a parameter is re-sent even when acknowledged.
    fn refresh(&self, p: &Param) -> Duration {
        let size = 1 + p.value.len() as u32 / 32;
        let unimportance = 1 + u32::from(255 - p.importance) / 32;
        self.refresh_base * size * unimportance
    }
}

type Stamp = (u64, u64);

#[derive(Debug)]
pub struct AgentStateCourier {
    state: AgentState,
    peer: NodeId,
    cfg: AgentStateConfig,
    in_session: bool,
    /// What the peer is known to hold.
    acked: BTreeMap<u16, Stamp>,
    /// Frame token → the stamps it carried.
    in_flight: BTreeMap<u64, Vec<(u16, Stamp)>>,
    /// Parameter → stamp currently in flight.
    sending: BTreeMap<u16, Stamp>,
    last_sent: BTreeMap<u16, Instant>,
    next_digest: Option<Instant>,
    request_full: bool,
    /// Mismatches in a row, and when the next may trigger a resync.
    mismatch_streak: u32,
    resync_after: Option<Instant>,
    pub digests_matched: u64,
    pub digests_mismatched: u64,
    /// Full resyncs started (both sides resend everything).
    pub full_resyncs: u64,
    pub malformed: u64,
    /// Its number among the state's wakers, once registered.
    waker: Option<u64>,
    /// Reused buffers, so that steady traffic allocates little: the send
    /// order, and emptied in-flight lists.
    order: Vec<(bool, u8, usize, u16)>,
    spare_lists: Vec<Vec<(u16, Stamp)>>,
}

/// A persistent mismatch resyncs after 1, 2, 4, ... idle intervals, up to
/// 2^8 (25.6 s at the default 100 ms).
const MAX_BACKOFF_SHIFT: u32 = 8;

/// Emptied in-flight lists kept for reuse, at most.
const SPARE_LISTS: usize = 64;

impl AgentStateCourier {
    pub fn new(state: AgentState, peer: NodeId, cfg: AgentStateConfig) -> Self {
        Self {
            state,
            peer,
            cfg,
            in_session: false,
            acked: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            sending: BTreeMap::new(),
            last_sent: BTreeMap::new(),
            next_digest: None,
            request_full: false,
            mismatch_streak: 0,
            resync_after: None,
            digests_matched: 0,
            digests_mismatched: 0,
            full_resyncs: 0,
            malformed: 0,
            waker: None,
            order: Vec::new(),
            spare_lists: Vec::new(),
        }
    }

    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// Whether the peer needs `p` now (not counting refreshes).
    fn stale(&self, id: u16, p: &Param) -> bool {
        p.version > 0 && self.acked.get(&id) != Some(&p.stamp()) && self.sending.get(&id) != Some(&p.stamp())
    }

    fn in_sync(&self, params: &BTreeMap<u16, Param>) -> bool {
        self.sending.is_empty()
            && params
                .iter()
                .all(|(id, p)| p.version == 0 || self.acked.get(id) == Some(&p.stamp()))
    }

    /// Keeps an emptied in-flight list for the next send.
    fn recycle(&mut self, mut list: Vec<(u16, Stamp)>) {
        if self.spare_lists.len() < SPARE_LISTS {
            list.clear();
            self.spare_lists.push(list);
        }
    }

    fn reset_peer_view(&mut self) {
        self.acked.clear();
        self.sending.clear();
        self.in_flight.clear();
    }
}

impl Courier for AgentStateCourier {
    fn mandate(&self) -> Mandate {
        let s = self.state.lock();
        let earliest = |a: Option<Instant>, b: Option<Instant>| [a, b].into_iter().flatten().min();
        let mut params: Option<Instant> = None;
        let mut digest: Option<Instant> = None;
        if self.in_session {
            for (&id, p) in &s.params {
                if self.stale(id, p) {
                    params = earliest(params, p.changed_at);
                } else if p.version > 0 && !self.sending.contains_key(&id) {
                    params = earliest(params, self.last_sent.get(&id).map(|&t| t + self.cfg.refresh(p)));
                }
            }
            digest = self.next_digest;
        }
        // The idle stream's digest is a check nothing waits for: it may go
        // up to half a period late to ride with an acknowledgement or other
        // data. A parameter due, or a full-state request, is not delayed.
        let send_slack = match (digest, params) {
            (Some(_), _) if self.request_full => Duration::ZERO,
            (Some(_), None) => self.cfg.idle_interval / 2,
            (Some(d), Some(p)) if d < p => (p - d).min(self.cfg.idle_interval / 2),
            _ => Duration::ZERO,
        };
        Mandate {
            priority: self.cfg.priority,
            next_send: earliest(params, digest),
            send_slack,
            max_payload: 1200,
            min_payload: (wire::UPDATE_OVERHEAD + 8) as u16,
            send_active: self.in_session,
            receive_active: true,
        }
    }

    fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
        let now = ctx.now;
        let token = out.token();
        let state = self.state.clone();
        let s = state.lock();
        // Stale first, then refreshes; most important and smallest first.
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(
            s.params
                .iter()
                .filter(|(_, p)| p.version > 0)
                .filter_map(|(&id, p)| {
                    let stale = self.stale(id, p);
                    let refresh = !self.sending.contains_key(&id)
                        && self
                            .last_sent
                            .get(&id)
                            .is_none_or(|&t| t + self.cfg.refresh(p) <= now);
                    (stale || refresh).then_some((!stale, 255 - p.importance, p.value.len(), id))
                }),
        );
        order.sort_unstable();
        let spare = out.spare();
        let mut w = Writer::new(spare);
        let mut carried = self.spare_lists.pop().unwrap_or_default();
        for &(_, _, _, id) in &order {
            let Some(p) = s.params.get(&id) else { continue };
            if !wire::write_update(&mut w, id, p.version, p.writer, &p.value) {
                break;
            }
            carried.push((id, p.stamp()));
        }
        for &(id, stamp) in &carried {
            self.sending.insert(id, stamp);
            self.last_sent.insert(id, now);
        }
        // The idle stream: a digest when the peer should match us exactly.
        let digest_due = self.next_digest.is_none_or(|t| t <= now);
        if self.request_full || (digest_due && self.in_sync(&s.params)) {
            let flags = if self.request_full {
                wire::FLAG_REQUEST_FULL
            } else {
                0
            };
            if wire::write_digest(&mut w, s.digest(), flags) {
                self.request_full = false;
                self.next_digest = Some(now + self.cfg.idle_interval);
            }
        } else if digest_due {
            self.next_digest = Some(now + self.cfg.idle_interval);
        }
        let n = w.len();
        drop(s);
        self.order = order;
        let _ = out.advance(n);
        if carried.is_empty() {
            // A digest alone: the next one supersedes it, and its fate
            // changes nothing, so the peer need not acknowledge it (a
            // datagram back, per digest, per session).
            if n > 0 {
                out.set_unacknowledged();
            }
            self.recycle(carried);
        } else {
            self.in_flight.insert(token, carried);
        }
    }

    fn on_receive(&mut self, ctx: &CourierContext, payload: &[u8]) {
        // Checked whole before any of it is applied.
        if wire::records(payload).any(|r| r.is_err()) {
            self.malformed += 1;
            return;
        }
        let records = wire::records(payload).flatten();
        let state = self.state.clone();
        let mut s = state.lock();
        for r in records {
            match r {
                Record::Update {
                    id,
                    version,
                    writer,
                    value,
                } => {
                    s.merge(ctx.now, self.waker, self.peer, id, version, writer, value);
                    // The peer holds at least this.
                    let held = self.acked.entry(id).or_insert((version, writer));
                    *held = (*held).max((version, writer));
                }
                Record::Digest { digest, flags } => {
                    if flags & wire::FLAG_REQUEST_FULL != 0 {
                        self.reset_peer_view();
                    }
                    if digest == s.digest() {
                        self.digests_matched += 1;
                        self.mismatch_streak = 0;
                        self.resync_after = None;
                        let peer = self.peer;
                        for (&id, p) in s.params.iter_mut() {
                            p.confirmed_by.insert(peer);
                            p.last_confirmed = Some(ctx.now);
                            self.acked.insert(id, p.stamp());
                        }
                    } else if self.sending.is_empty() {
                        // Views differ with nothing of ours in flight: both
                        // sides send everything. A mismatch that outlives
                        // resyncs (the sides define different parameters:
                        // versions skewed) backs off, or both would send
                        // their whole state every idle interval for ever.
                        self.digests_mismatched += 1;
                        if self.resync_after.is_none_or(|t| ctx.now >= t) {
                            self.reset_peer_view();
                            self.request_full = true;
                            self.full_resyncs += 1;
                            let backoff = self.cfg.idle_interval
                                * (1u32 << self.mismatch_streak.min(MAX_BACKOFF_SHIFT));
                            self.resync_after = Some(ctx.now + backoff);
                            self.mismatch_streak += 1;
                        }
                    }
                }
            }
        }
    }

    fn on_delivered(&mut self, ctx: &CourierContext, token: u64) {
        let Some(carried) = self.in_flight.remove(&token) else {
            return;
        };
        let state = self.state.clone();
        let mut s = state.lock();
        for &(id, stamp) in &carried {
            if self.sending.get(&id) == Some(&stamp) {
                self.sending.remove(&id);
            }
            let held = self.acked.entry(id).or_insert(stamp);
            *held = (*held).max(stamp);
            if let Some(p) = s.params.get_mut(&id).filter(|p| p.stamp() == stamp) {
                p.confirmed_by.insert(self.peer);
                p.last_confirmed = Some(ctx.now);
            }
        }
        drop(s);
        self.recycle(carried);
    }

    fn on_lost(&mut self, _ctx: &CourierContext, token: u64) {
        let Some(carried) = self.in_flight.remove(&token) else {
            return;
        };
        for &(id, stamp) in &carried {
            if self.sending.get(&id) == Some(&stamp) {
                self.sending.remove(&id);
            }
        }
        self.recycle(carried);
    }

    fn on_session_start(&mut self, ctx: &CourierContext) {
        self.in_session = true;
        self.reset_peer_view();
        // A new session (a restart, perhaps a new version) starts afresh.
        self.mismatch_streak = 0;
        self.resync_after = None;
        self.next_digest = Some(ctx.now);
        self.state.lock().peers.insert(self.peer);
    }

    fn on_session_end(&mut self, _ctx: &CourierContext) {
        self.in_session = false;
        self.reset_peer_view();
        self.state.lock().peers.remove(&self.peer);
    }

    /// The application changes the shared state without the engine: each
    /// change wakes every courier of the state.
    fn accept_waker(&mut self, waker: CourierWaker) -> bool {
        let mut s = self.state.lock();
        if let Some(old) = self.waker.take() {
            s.wakers.remove(&old);
        }
        let n = s.next_courier;
        s.next_courier += 1;
        s.wakers.insert(n, waker);
        self.waker = Some(n);
        true
    }
}

impl Drop for AgentStateCourier {
    fn drop(&mut self) {
        if let Some(n) = self.waker {
            self.state.lock().wakers.remove(&n);
        }
    }
}
