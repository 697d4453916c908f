//! The sans-IO CommsChannel engine.

mod acks;
mod answers;
mod cookie;
mod courier_slot;
mod handshake;
mod peer;
mod recv;
mod schedule;
mod send;
mod timers;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::config::{ConfigError, EndpointConfig};
use crate::courier::{Courier, CourierId, CourierScope};
use crate::crypto::{Identity, NodeId};
use crate::event::Event;
use crate::scheduler::Candidate;
use crate::stats::{DropReason, Stats};
use crate::trust::{NodeAssociate, TrustStore};
use crate::wire::MAX_DATAGRAM;
use answers::AnswerPacer;

use courier_slot::CourierSlot;
use peer::Peer;

/// A datagram to send: the first `len` bytes of the buffer given to
/// [`Endpoint::poll_transmit`], to `destination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub len: usize,
}

/// Errors from the endpoint's API calls (never from the network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("peer {0} is not in the trust store")]
    UnknownPeer(NodeId),
    #[error("no address is known for peer {0}")]
    NoAddress(NodeId),
    #[error("no established session with peer {0}")]
    NotConnected(NodeId),
    #[error("courier id {0:?} is already registered in that scope")]
    DuplicateCourier(CourierId),
    #[error("courier handle is stale")]
    UnknownCourier,
}

/// Names a registered courier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CourierHandle(usize);

/// Per-source-address verification budgets, in a bounded table: when it is
/// full, the stalest entry makes room (a spoofing flood churns the table but
/// never grows it).
#[derive(Debug, Default)]
pub(crate) struct SourceBudgets {
    buckets: BTreeMap<std::net::SocketAddr, TokenBucket>,
}

/// Sources tracked at most.
const MAX_SOURCES: usize = 1024;
/// RSA verifications per second, and burst, allowed per source address
/// (IP and port: nodes behind one NAT, or on one host, share an IP, and a
/// flood from one of them must not starve the others).
const SOURCE_VERIFY_RATE: f64 = 20.0;
const SOURCE_VERIFY_BURST: f64 = 10.0;

impl SourceBudgets {
    pub fn take(&mut self, now: Instant, source: std::net::SocketAddr) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            if let Some(stalest) = self.buckets.iter().min_by_key(|(_, b)| b.last).map(|(s, _)| *s) {
                self.buckets.remove(&stalest);
            }
        }
        self.buckets
            .entry(source)
            .or_insert_with(|| TokenBucket::new(now, SOURCE_VERIFY_RATE, SOURCE_VERIFY_BURST))
            .take(now)
    }
}

/// A simple token bucket, for RSA verifications.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    fn new(now: Instant, rate: f64, burst: f64) -> Self {
        Self {
            tokens: burst,
            last: now,
            rate,
            burst,
        }
    }

    pub fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The sans-IO CommsChannel engine: authenticated, encrypted sessions with
/// trusted peers, packed with courier data.
///
/// It performs no I/O, reads no clock and draws no OS randomness: time is
/// passed in, randomness comes from the seed given to [`Endpoint::new`].
///
/// # Calling order
///
/// 1. Feed every received datagram to [`handle_datagram`](Self::handle_datagram).
/// 2. When the instant from [`poll_timeout`](Self::poll_timeout) passes,
///    call [`handle_timeout`](Self::handle_timeout).
/// 3. After either (and after any API call such as
///    [`connect`](Self::connect)), call [`poll_transmit`](Self::poll_transmit)
///    until it returns `None`, sending each datagram.
/// 4. Drain [`poll_event`](Self::poll_event).
/// 5. Sleep until the socket is readable or [`poll_timeout`](Self::poll_timeout).
///
/// A courier may answer what arrived between steps 1 and 3: the answer is
/// built before the acknowledgements that arrived with it are applied, and
/// they take effect at the next call (see `docs/architecture.md`). A
/// courier's `Delivered` news therefore comes after that call, and step 5's
/// `poll_timeout` must come before any sleep, as it always should.
///
/// ```
/// use std::time::Instant;
/// use octolink::{Endpoint, EndpointConfig, Identity, TrustStore};
/// # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/node_a.pem")).unwrap();
/// let identity = Identity::from_pem(&pem)?;
/// let now = Instant::now();
/// let mut ep = Endpoint::new(EndpointConfig::default(), identity, TrustStore::new(), [7; 32], now, 0)?;
/// let mut buf = [0u8; 1452];
/// // A datagram from the socket (here, junk from a stranger):
/// ep.handle_datagram(now, "127.0.0.1:9000".parse()?, b"not octolink");
/// while let Some(t) = ep.poll_transmit(now, &mut buf) {
///     // socket.send_to(&buf[..t.len], t.destination)
///     let _ = t;
/// }
/// while let Some(event) = ep.poll_event() {
///     println!("{event:?}");
/// }
/// if let Some(deadline) = ep.poll_timeout() {
///     // wait for the socket or until `deadline`, then:
///     ep.handle_timeout(deadline);
/// }
/// assert_eq!(ep.stats().broken(), 1); // junk is counted, never answered
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Endpoint {
    pub(crate) cfg: EndpointConfig,
    pub(crate) identity: Identity,
    pub(crate) trust: TrustStore,
    pub(crate) rng: StdRng,
    pub(crate) epoch: Instant,
    pub(crate) wall_epoch_us: u64,
    pub(crate) peers: PeerMap,
    /// Local session id → peer, for sessions, pending sessions and our
    /// outgoing attempts alike.
    pub(crate) by_session: HashMap<u32, NodeId, RandomKeys>,
    pub(crate) couriers: Vec<Option<CourierSlot>>,
    pub(crate) broadcast_slots: Vec<usize>,
    pub(crate) handshake_out: VecDeque<(SocketAddr, Vec<u8>)>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    pub(crate) honeymoon_until: Option<Instant>,
    pub(crate) last_active_peer: Option<NodeId>,
    pub(crate) scratch: Box<[u8; MAX_DATAGRAM]>,
    pub(crate) candidates: Vec<Candidate>,
    pub(crate) ping_counter: u64,
    pub(crate) verify_budget: TokenBucket,
    /// Signatures for answering SYNs, endpoint-wide (`cfg.answer_signatures_per_second`).
    pub(crate) answers: AnswerPacer,
    pub(crate) source_budgets: SourceBudgets,
    /// Budgets for SYNs that returned a valid cookie (see `cookie.rs`).
    pub(crate) cookie_sources: SourceBudgets,
    pub(crate) cookie_verify_budget: TokenBucket,
    pub(crate) cookie_key: [u8; 32],
    pub(crate) next_frame_token: u64,
    /// Reused buffers for frame fates, so acks allocate nothing.
    pub(crate) delivered_scratch: Vec<crate::session::FrameRecord>,
    pub(crate) lost_scratch: Vec<crate::session::FrameRecord>,
    pub(crate) frames_scratch: Vec<crate::session::FrameRecord>,
    pub(crate) recv_events: Vec<Event>,
    pub(crate) recv_deferred: Vec<recv::Deferred>,
    pub(crate) peer_scratch: Vec<NodeId>,
    pub(crate) timer_scratch: Vec<NodeId>,
    pub(crate) send_scratch: Vec<NodeId>,
    pub(crate) schedule: schedule::Schedule,
    pub(crate) wake_queue: std::sync::Arc<crate::waker::WakeQueue>,
    /// When to sign SYNs ahead of need (see `presign_handshakes`).
    pub(crate) presign_at: Option<Instant>,
    /// The last ACK received, not applied yet (see `acks.rs`), and its
    /// ranges (a reused buffer).
    pub(crate) pending_ack: Option<acks::PendingAck>,
    pub(crate) ack_ranges: Vec<(u64, u64)>,
}

/// The session directory: associates by node id (see
/// [`crate::crypto::RandomKeyHasher`]: a fixed hasher, so the simulator
/// replays seeds exactly).
pub(crate) type PeerMap = HashMap<NodeId, Peer, RandomKeys>;
pub(crate) type RandomKeys = BuildHasherDefault<crate::crypto::RandomKeyHasher>;

/// Most handshake datagrams queued for sending at once.
pub(crate) const MAX_HANDSHAKE_QUEUE: usize = 256;
/// RSA verifications allowed per second, endpoint-wide, and their burst.
const VERIFY_RATE: f64 = 2000.0;
const VERIFY_BURST: f64 = 200.0;

impl Endpoint {
    /// Creates an engine.
    ///
    /// `rng_seed` seeds the CSPRNG for nonces, session ids and ephemeral
    /// keys: give it 32 bytes from the OS generator in production, a fixed
    /// value in tests. `unix_time_us` is the wall clock at `now`, used for
    /// handshake timestamps and the associates' timestamps.
    pub fn new(
        cfg: EndpointConfig,
        identity: Identity,
        trust: TrustStore,
        rng_seed: [u8; 32],
        now: Instant,
        unix_time_us: u64,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        // Our SYN (the largest handshake message) must fit our own limit.
        // Our SYN with a returned cookie (tag and cookie after the signature).
        let syn_len =
            crate::handshake::SYN_FIXED_LEN + identity.public().signature_len() + 1 + crate::wire::COOKIE_LEN;
        if syn_len > cfg.max_datagram {
            return Err(ConfigError(format!(
                "a {}-bit key needs max_datagram >= {syn_len} for its signed SYN",
                identity.public().bits()
            )));
        }
        let answer_rate = cfg.answer_signatures_per_second;
        let mut ep = Self {
            // Queued no longer than half an attempt: the answer still finds
            // the initiator waiting for it.
            answers: AnswerPacer::new(now, answer_rate, answer_rate / 10, cfg.handshake_timeout / 2),
            honeymoon_until: Some(now + cfg.honeymoon),
            cfg,
            identity,
            trust: TrustStore::new(),
            rng: StdRng::from_seed(rng_seed),
            epoch: now,
            wall_epoch_us: unix_time_us,
            peers: PeerMap::default(),
            by_session: HashMap::default(),
            couriers: Vec::new(),
            broadcast_slots: Vec::new(),
            handshake_out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_active_peer: None,
            scratch: Box::new([0; MAX_DATAGRAM]),
            candidates: Vec::new(),
            ping_counter: 0,
            verify_budget: TokenBucket::new(now, VERIFY_RATE, VERIFY_BURST),
            source_budgets: SourceBudgets::default(),
            cookie_sources: SourceBudgets::default(),
            cookie_verify_budget: TokenBucket::new(now, VERIFY_RATE, VERIFY_BURST),
            cookie_key: [0; 32],
            next_frame_token: 1,
            delivered_scratch: Vec::new(),
            lost_scratch: Vec::new(),
            frames_scratch: Vec::new(),
            recv_events: Vec::new(),
            recv_deferred: Vec::new(),
            peer_scratch: Vec::new(),
            timer_scratch: Vec::new(),
            send_scratch: Vec::new(),
            schedule: schedule::Schedule::default(),
            wake_queue: Default::default(),
            presign_at: None,
            pending_ack: None,
            ack_ranges: Vec::new(),
        };
        ep.rng.fill_bytes(&mut ep.cookie_key);
        // The seed: every stored associate enters the session directory.
        for a in trust.iter() {
            ep.add_associate_entry(a.clone());
        }
        ep.last_active_peer = trust
            .iter()
            .filter_map(|a| a.last_success_ms.map(|t| (t, a.id)))
            .max()
            .map(|(_, id)| id);
        ep.trust = trust;
        Ok(ep)
    }

    fn add_associate_entry(&mut self, a: NodeAssociate) {
        if !a.addresses.is_empty() {
            // At the next timer: `epoch` is never in the future.
            self.presign_at = Some(self.epoch);
        }
        let wanted = self.cfg.connect_all && !a.addresses.is_empty();
        let peer = self.peers.entry(a.id).or_default();
        peer.liveness.wanted |= wanted;
        self.touch_all();
    }

    /// This node's ID.
    pub fn node_id(&self) -> NodeId {
        self.identity.id()
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// The trust store, with the associates' addresses and timestamps as
    /// updated by traffic; persist it with [`TrustStore::save`].
    pub fn trust_store(&self) -> &TrustStore {
        &self.trust
    }

    /// Pairs with a node (adds or replaces it in the trust store).
    pub fn add_associate(&mut self, associate: NodeAssociate) -> Result<(), crate::crypto::KeyError> {
        self.trust.insert(associate.clone())?;
        self.add_associate_entry(associate);
        Ok(())
    }

    /// Forgets a node: closes its session and removes it from the store.
    pub fn remove_associate(&mut self, now: Instant, id: &NodeId) -> Option<NodeAssociate> {
        let _ = self.close(now, id);
        self.unschedule(id);
        if let Some(peer) = self.peers.remove(id) {
            self.forget_session_ids(&peer);
            for slot in peer.courier_slots {
                self.couriers[slot] = None;
            }
        }
        self.trust.remove(id)
    }

    /// Starts (or restarts) honeymoon: inactive associates are probed every
    /// `honeymoon_interval` until `now + duration`.
    pub fn start_honeymoon(&mut self, now: Instant, duration: Duration) {
        self.honeymoon_until = Some(now + duration);
        self.touch_all();
    }

    pub(crate) fn in_honeymoon(&self, now: Instant) -> bool {
        self.honeymoon_until.is_some_and(|t| now < t)
    }

    /// Asks for a session with `peer`, and keeps asking per the liveness
    /// schedule until one is established. Ends celibacy.
    pub fn connect(&mut self, now: Instant, peer: &NodeId) -> Result<(), ApiError> {
        let assoc = self.trust.get(peer).ok_or(ApiError::UnknownPeer(*peer))?;
        if assoc.best_address().is_none() {
            return Err(ApiError::NoAddress(*peer));
        }
        let p = self.peers.entry(*peer).or_default();
        p.liveness.wanted = true;
        p.liveness.celibate_until = None;
        if p.active_session().is_none() && p.outgoing.is_none() && p.pending.is_none() {
            self.start_attempt(now, *peer);
        }
        self.touch_all();
        Ok(())
    }

    /// Closes the session with `peer` (a close frame is sent) and leaves the
    /// peer alone for the celibacy period.
    pub fn close(&mut self, now: Instant, peer: &NodeId) -> Result<(), ApiError> {
        let p = self.peers.get_mut(peer).ok_or(ApiError::UnknownPeer(*peer))?;
        p.liveness.celibate_until = Some(now + self.cfg.celibacy);
        p.deferred = None;
        let attempt = p.outgoing.take().map(|o| o.local_id);
        let pending = p.pending.take().map(|b| b.0.local_id);
        // The close packet goes out on the next poll_transmit, which then
        // ends the session and reports it.
        if let Some(s) = p.session.as_mut() {
            s.close_due = Some(0);
        }
        for id in attempt.into_iter().chain(pending) {
            self.by_session.remove(&id);
        }
        self.touch(*peer);
        Ok(())
    }

    /// Sends a ping; the answer arrives as [`Event::Pong`] with the token
    /// returned here.
    pub fn ping(&mut self, peer: &NodeId) -> Result<u64, ApiError> {
        self.ping_counter += 1;
        let token = self.ping_counter;
        let s = self
            .peers
            .get_mut(peer)
            .and_then(|p| p.session.as_mut())
            .filter(|s| s.is_active())
            .ok_or(ApiError::NotConnected(*peer))?;
        s.ping_due = Some(token);
        self.touch(*peer);
        Ok(token)
    }

    /// Whether a session with `peer` is established and carrying traffic.
    pub fn is_connected(&self, peer: &NodeId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.active_session().is_some())
    }

    /// The peers with established sessions.
    pub fn connected_peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers
            .iter()
            .filter(|(_, p)| p.active_session().is_some())
            .map(|(id, _)| *id)
    }

    /// Registers a courier. Ids must be unique within a scope; a peer-scoped
    /// courier takes precedence over a broadcast one with the same id when
    /// data arrives from that peer.
    pub fn register_courier(
        &mut self,
        scope: CourierScope,
        id: CourierId,
        courier: Box<dyn Courier>,
    ) -> Result<CourierHandle, ApiError> {
        if let CourierScope::Peer(p) = scope {
            if self.trust.get(&p).is_none() {
                return Err(ApiError::UnknownPeer(p));
            }
        }
        let taken = self
            .couriers
            .iter()
            .flatten()
            .any(|s| s.scope == scope && s.id == id);
        if taken {
            return Err(ApiError::DuplicateCourier(id));
        }
        let slot = CourierSlot::new(id, scope, courier);
        let index = match self.couriers.iter().position(Option::is_none) {
            Some(i) => {
                self.couriers[i] = Some(slot);
                i
            }
            None => {
                self.couriers.push(Some(slot));
                self.couriers.len() - 1
            }
        };
        let (waker, queued) = self.wake_queue.waker(index);
        if let Some(slot) = self.couriers[index].as_mut() {
            slot.offer_waker(waker, queued);
        }
        match scope {
            CourierScope::Peer(p) => self.peers.entry(p).or_default().courier_slots.push(index),
            CourierScope::Broadcast => self.broadcast_slots.push(index),
        }
        self.touch_all();
        Ok(CourierHandle(index))
    }

    /// Removes a courier and gives it back.
    pub fn unregister_courier(&mut self, handle: CourierHandle) -> Result<Box<dyn Courier>, ApiError> {
        let slot = self
            .couriers
            .get_mut(handle.0)
            .and_then(Option::take)
            .ok_or(ApiError::UnknownCourier)?;
        self.broadcast_slots.retain(|&i| i != handle.0);
        if let CourierScope::Peer(p) = slot.scope {
            if let Some(peer) = self.peers.get_mut(&p) {
                peer.courier_slots.retain(|&i| i != handle.0);
            }
        }
        self.touch_all();
        Ok(slot.into_courier())
    }

    /// The courier behind `handle`, as its concrete type.
    pub fn courier_mut<T: Courier>(&mut self, handle: CourierHandle) -> Option<&mut T> {
        // Whatever the caller does to it may change its mandate.
        if let Some(CourierScope::Peer(p)) = self.couriers.get(handle.0)?.as_ref().map(|s| s.scope) {
            self.touch(p);
        }
        let slot = self.couriers.get_mut(handle.0)?.as_mut()?;
        let any: &mut dyn std::any::Any = slot.courier_mut();
        any.downcast_mut::<T>()
    }

    /// The courier behind `handle`, as its concrete type.
    pub fn courier<T: Courier>(&self, handle: CourierHandle) -> Option<&T> {
        let slot = self.couriers.get(handle.0)?.as_ref()?;
        let any: &dyn std::any::Any = slot.courier();
        any.downcast_ref::<T>()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether a courier serving a live session holds reliable messages
    /// the peer has not acknowledged: what a graceful shutdown waits for.
    pub fn has_unsettled(&self) -> bool {
        let live = |peer: &NodeId| self.peers.get(peer).and_then(|p| p.active_session()).is_some();
        self.couriers.iter().flatten().any(|c| {
            c.courier().unsettled() > 0
                && match c.scope {
                    CourierScope::Peer(peer) => live(&peer),
                    CourierScope::Broadcast => self.peers.keys().any(live),
                }
        })
    }

    /// A snapshot of the counters, with one entry per session and per
    /// courier.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.polled_peers = self.polled_peer_count();
        s.sessions = self
            .peers
            .values()
            .filter_map(|p| p.session.as_ref())
            .map(|s| s.stats())
            .collect();
        s.couriers = self
            .couriers
            .iter()
            .flatten()
            .map(|c| crate::stats::CourierStats {
                queue_depth: c.courier().queue_depth(),
                ..c.stats.clone()
            })
            .collect();
        s
    }

    /// Records `datagrams` that the socket refused for good (not "would
    /// block"), so that [`Stats::send_failures`] shows them. For whoever
    /// drives the engine; the runtime calls it itself.
    pub fn note_send_failures(&mut self, datagrams: u64) {
        self.stats.send_failures += datagrams;
    }

    /// Records events dropped outside the engine (an application that did
    /// not take them in time), so that [`Stats::events_dropped`] shows them.
    pub fn note_events_dropped(&mut self, events: u64) {
        self.stats.events_dropped += events;
    }

    /// Asks for an [`Event::CourierData`] each time the courier receives
    /// data (so a thread outside the engine knows to look).
    pub fn set_courier_notify(&mut self, handle: CourierHandle, on: bool) -> Result<(), ApiError> {
        let slot = self
            .couriers
            .get_mut(handle.0)
            .and_then(Option::as_mut)
            .ok_or(ApiError::UnknownCourier)?;
        slot.notify = on;
        Ok(())
    }

    /// Caps one courier's send rate (bytes per second); `None` lifts it.
    pub fn set_courier_rate_cap(
        &mut self,
        now: Instant,
        handle: CourierHandle,
        bytes_per_sec: Option<u64>,
    ) -> Result<(), ApiError> {
        let slot = self
            .couriers
            .get_mut(handle.0)
            .and_then(Option::as_mut)
            .ok_or(ApiError::UnknownCourier)?;
        let burst = 2 * self.cfg.max_datagram;
        slot.rate_cap = bytes_per_sec.map(|r| crate::session::Pacer::new(now, r, burst));
        self.touch_all();
        Ok(())
    }

    /// Caps the send rate of the session with `peer` (bytes per second).
    pub fn set_session_rate_cap(
        &mut self,
        peer: &NodeId,
        bytes_per_sec: Option<u64>,
    ) -> Result<(), ApiError> {
        let s = self
            .peers
            .get_mut(peer)
            .and_then(|p| p.session.as_mut())
            .ok_or(ApiError::NotConnected(*peer))?;
        s.rate_cap = bytes_per_sec;
        s.update_pacing();
        self.touch(*peer);
        Ok(())
    }

    /// The context couriers get for `peer`: time, peer and its RTT.
    pub(crate) fn courier_ctx(&self, now: Instant, peer: NodeId) -> crate::courier::CourierContext {
        let rtt = self
            .peers
            .get(&peer)
            .and_then(|p| p.session.as_ref())
            .and_then(|s| s.rtt.smoothed());
        crate::courier::CourierContext {
            now,
            peer: Some(peer),
            rtt,
        }
    }

    /// Tells every courier serving `peer` that a session began or ended.
    pub(crate) fn notify_session(&mut self, now: Instant, peer: NodeId, started: bool) {
        let ctx = self.courier_ctx(now, peer);
        let own = self
            .peers
            .get(&peer)
            .map(|p| p.courier_slots.clone())
            .unwrap_or_default();
        for i in own.into_iter().chain(self.broadcast_slots.clone()) {
            if let Some(slot) = self.couriers.get_mut(i).and_then(Option::as_mut) {
                if started {
                    slot.courier_mut().on_session_start(&ctx);
                } else {
                    slot.courier_mut().on_session_end(&ctx);
                }
            }
        }
    }

    /// Reports the fates of frames to their couriers.
    pub(crate) fn report_frames(&mut self, now: Instant, peer: NodeId) {
        if self.delivered_scratch.is_empty() && self.lost_scratch.is_empty() {
            // Most packets a bulk receiver gets acknowledge nothing it sent.
            return;
        }
        let ctx = self.courier_ctx(now, peer);
        let delivered = std::mem::take(&mut self.delivered_scratch);
        let lost = std::mem::take(&mut self.lost_scratch);
        for (records, ok) in [(&delivered, true), (&lost, false)] {
            for r in records {
                let Some(slot) = self.couriers.get_mut(r.slot as usize).and_then(Option::as_mut) else {
                    continue;
                };
                if ok {
                    slot.stats.frames_delivered += 1;
                    slot.courier_mut().on_delivered(&ctx, r.token);
                } else {
                    slot.stats.frames_lost += 1;
                    slot.courier_mut().on_lost(&ctx, r.token);
                }
            }
        }
        self.delivered_scratch = delivered;
        self.lost_scratch = lost;
        self.delivered_scratch.clear();
        self.lost_scratch.clear();
    }

    // ---- internals shared by the submodules ----

    pub(crate) fn push_event(&mut self, e: Event) {
        if self.events.len() >= self.cfg.max_queued_events {
            self.stats.events_dropped += 1;
            return;
        }
        self.events.push_back(e);
    }

    /// Rings `hook` whenever a courier's waker is woken (see
    /// [`crate::CourierWaker`]): the runtime wakes its loop with it. A
    /// driver that polls anyway needs none.
    pub fn set_wake_hook(&mut self, hook: Option<crate::WakeHook>) {
        self.wake_queue.set_hook(hook);
    }

    pub(crate) fn drop_datagram(&mut self, reason: DropReason) {
        tracing::trace!(reason = reason.name(), "datagram dropped");
        self.stats.drops.bump(reason);
    }

    pub(crate) fn queue_handshake(&mut self, to: SocketAddr, datagram: Vec<u8>) {
        if self.handshake_out.len() < MAX_HANDSHAKE_QUEUE {
            self.handshake_out.push_back((to, datagram));
        }
    }

    /// Wall-clock microseconds at `now`.
    pub(crate) fn wall_us(&self, now: Instant) -> u64 {
        self.wall_epoch_us + now.saturating_duration_since(self.epoch).as_micros() as u64
    }

    pub(crate) fn wall_ms(&self, now: Instant) -> u64 {
        self.wall_us(now) / 1000
    }

    /// A fresh, non-zero local session id that is not in use.
    pub(crate) fn new_session_id(&mut self) -> u32 {
        loop {
            let id = self.rng.next_u32();
            if id != 0 && !self.by_session.contains_key(&id) {
                return id;
            }
        }
    }

    pub(crate) fn forget_session_ids(&mut self, peer: &Peer) {
        let ids = peer
            .session
            .iter()
            .map(|s| s.local_id)
            .chain(peer.pending.iter().map(|b| b.0.local_id))
            .chain(peer.outgoing.iter().map(|o| o.local_id));
        for id in ids {
            self.by_session.remove(&id);
        }
    }

    pub(crate) fn note_activity(&mut self, now: Instant, peer: NodeId) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.liveness.last_activity = Some(now);
        }
        self.last_active_peer = Some(peer);
    }
}
