//! A deterministic in-memory network for whole-system tests.
//!
//! Endpoints exchange datagrams over simulated links (latency, jitter,
//! random and burst loss, duplication, reordering, corruption, a rate limit,
//! partitions), and can change address or restart. Events are ordered by
//! (time, sequence) and virtual time jumps to the next event, so a minute of
//! traffic runs in milliseconds, and the same seed always gives the same
//! trace (see [`Sim::trace_hash`]).
//!
//! Addresses are in-memory labels only; nothing here touches a socket.

mod link;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

pub use link::{BurstLoss, Fate, Link, LinkConfig};

use crate::{Endpoint, EndpointConfig, Event, Identity, NodeAssociate, Role, TrustStore};

/// Wall clock the simulation pretends to start at (2026-01-01).
const SIM_UNIX_US: u64 = 1_767_225_600_000_000;
/// Iterations at one instant before the simulator declares a livelock.
const MAX_STEPS_WITHOUT_PROGRESS: u32 = 100_000;

/// A datagram in flight.
#[derive(Debug, Clone)]
struct InFlight {
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// One simulated node.
pub struct SimNode {
    pub endpoint: Endpoint,
    pub addr: SocketAddr,
    identity: Identity,
    config: EndpointConfig,
    /// Every event the endpoint produced, in order.
    pub events: Vec<(Duration, Event)>,
}

/// A datagram the simulator saw leave a node (with capture on).
#[derive(Debug, Clone)]
pub struct Captured {
    pub at: Duration,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// The simulated network.
pub struct Sim {
    rng: StdRng,
    base: Instant,
    now: Duration,
    pub nodes: Vec<SimNode>,
    links: BTreeMap<(usize, usize), Link>,
    default_link: LinkConfig,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    in_flight: BTreeMap<u64, InFlight>,
    seq: u64,
    trace: Sha256,
    /// Record every transmitted datagram in [`Sim::captured`].
    pub capture: bool,
    pub captured: Vec<Captured>,
    pub delivered: u64,
    pub lost: u64,
    buf: Vec<u8>,
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            base: Instant::now(),
            now: Duration::ZERO,
            nodes: Vec::new(),
            links: BTreeMap::new(),
            default_link: LinkConfig::default(),
            queue: BinaryHeap::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            trace: Sha256::new(),
            capture: false,
            captured: Vec::new(),
            delivered: 0,
            lost: 0,
            buf: vec![0; crate::wire::MAX_DATAGRAM],
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.base + self.now
    }

    /// Time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    /// Link settings for links not set explicitly.
    pub fn set_default_link(&mut self, config: LinkConfig) {
        self.default_link = config;
    }

    fn node_addr(index: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 1, (index + 1) as u8], 4000 + index as u16))
    }

    /// Adds a node with this identity, trust store and configuration.
    pub fn add_node(&mut self, identity: Identity, trust: TrustStore, config: EndpointConfig) -> usize {
        let index = self.nodes.len();
        let endpoint = self.make_endpoint(identity.clone(), trust, config.clone());
        self.nodes.push(SimNode {
            endpoint,
            addr: Self::node_addr(index),
            identity,
            config,
            events: Vec::new(),
        });
        index
    }

    fn make_endpoint(&mut self, identity: Identity, trust: TrustStore, config: EndpointConfig) -> Endpoint {
        let seed: [u8; 32] = self.rng.gen();
        let now = self.now();
        Endpoint::new(
            config,
            identity,
            trust,
            seed,
            now,
            SIM_UNIX_US + self.now.as_micros() as u64,
        )
        .expect("simulated endpoint config is valid")
    }

    /// Makes `a` and `b` trust each other, with each other's address.
    pub fn pair(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let key = self.nodes[y].identity.public().clone();
            let assoc =
                NodeAssociate::new(key, format!("node{y}"), Role::Agent).with_address(self.nodes[y].addr);
            self.nodes[x]
                .endpoint
                .add_associate(assoc)
                .expect("fixture keys are consistent");
        }
    }

    /// The link from `from` to `to`, created from the default if unset.
    pub fn link_mut(&mut self, from: usize, to: usize) -> &mut LinkConfig {
        let default = self.default_link;
        &mut self
            .links
            .entry((from, to))
            .or_insert_with(|| Link::new(default))
            .config
    }

    /// Sets both directions between `a` and `b`.
    pub fn set_link(&mut self, a: usize, b: usize, config: LinkConfig) {
        *self.link_mut(a, b) = config;
        *self.link_mut(b, a) = config;
    }

    /// Cuts (or restores) both directions between `a` and `b`.
    pub fn partition(&mut self, a: usize, b: usize, cut: bool) {
        self.link_mut(a, b).up = !cut;
        self.link_mut(b, a).up = !cut;
    }

    /// Moves a node to a new address (as after a DHCP renewal or NAT
    /// rebinding). Datagrams to its old address are lost.
    pub fn change_address(&mut self, node: usize, addr: SocketAddr) {
        self.nodes[node].addr = addr;
    }

    /// Restarts a node: a fresh endpoint with the same identity and the
    /// trust store as it was (as if persisted), but no sessions.
    pub fn restart(&mut self, node: usize) {
        let n = &self.nodes[node];
        let (identity, trust, config) = (
            n.identity.clone(),
            n.endpoint.trust_store().clone(),
            n.config.clone(),
        );
        self.nodes[node].endpoint = self.make_endpoint(identity, trust, config);
    }

    /// Injects a datagram as if `from` had sent it to node `to` now (for
    /// attack tests). It bypasses the link.
    pub fn inject(&mut self, from: SocketAddr, to: usize, bytes: Vec<u8>) {
        let to = self.nodes[to].addr;
        self.schedule(self.now, InFlight { from, to, bytes });
    }

    fn schedule(&mut self, at: Duration, d: InFlight) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.in_flight.insert(self.seq, d);
    }

    /// Drains every node's transmits onto the links, and its events.
    fn flush(&mut self) {
        let now = self.now();
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].endpoint.poll_transmit(now, &mut self.buf) {
                let limit = self.nodes[i].config.max_datagram;
                assert!(
                    t.len <= limit,
                    "node {i} emitted a {}-byte datagram over its {limit}-byte limit",
                    t.len
                );
                let bytes = self.buf[..t.len].to_vec();
                let from = self.nodes[i].addr;
                if self.capture {
                    self.captured.push(Captured {
                        at: self.now,
                        from,
                        to: t.destination,
                        bytes: bytes.clone(),
                    });
                }
                self.route(i, from, t.destination, bytes);
            }
            while let Some(e) = self.nodes[i].endpoint.poll_event() {
                self.nodes[i].events.push((self.now, e));
            }
        }
    }

    fn route(&mut self, from_node: usize, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        let Some(to_node) = self.nodes.iter().position(|n| n.addr == to) else {
            self.lost += 1;
            return;
        };
        let default = self.default_link;
        let link = self
            .links
            .entry((from_node, to_node))
            .or_insert_with(|| Link::new(default));
        let fate = link.decide(&mut self.rng, self.now, bytes.len());
        if fate.arrivals.is_empty() {
            self.lost += 1;
        }
        let mut bytes = bytes;
        if let Some((byte, bit)) = fate.corrupt {
            if let Some(b) = bytes.get_mut(byte) {
                *b ^= 1 << bit;
            }
        }
        for at in fate.arrivals {
            self.schedule(
                at,
                InFlight {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// Runs one step: flush, then advance to and process the next instant.
    /// Returns `false` if nothing at all is scheduled.
    pub fn step(&mut self) -> bool {
        self.flush();
        let next_delivery = self.queue.peek().map(|Reverse((t, _))| *t);
        let (base, at) = (self.base, self.now);
        let next_timer = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.endpoint.poll_timeout())
            .map(|t| t.saturating_duration_since(base).max(at))
            .min();
        let Some(next) = [next_delivery, next_timer].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now();
        while let Some(Reverse((t, seq))) = self.queue.peek().copied() {
            if t > self.now {
                break;
            }
            self.queue.pop();
            let Some(d) = self.in_flight.remove(&seq) else {
                continue;
            };
            self.trace.update(t.as_micros().to_be_bytes());
            self.trace.update(d.from.to_string().as_bytes());
            self.trace.update(d.to.to_string().as_bytes());
            self.trace.update(&d.bytes);
            if let Some(n) = self.nodes.iter_mut().find(|n| n.addr == d.to) {
                self.delivered += 1;
                n.endpoint.handle_datagram(now, d.from, &d.bytes);
            } else {
                self.lost += 1;
            }
        }
        for n in &mut self.nodes {
            if n.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                n.endpoint.handle_timeout(now);
            }
        }
        true
    }

    /// Runs until `elapsed()` reaches `until` (or nothing is scheduled).
    pub fn run_until(&mut self, until: Duration) {
        self.run_while(until, |_| true);
    }

    /// Runs for `d` more virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `done` holds (checked after every step) or `limit` of
    /// virtual time has passed. Returns whether `done` held.
    pub fn run_until_cond(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let deadline = self.now + limit;
        let mut met = false;
        self.run_while(deadline, |s| {
            met = done(s);
            !met
        });
        met || done(self)
    }

    fn run_while(&mut self, until: Duration, mut keep_going: impl FnMut(&Sim) -> bool) {
        let mut stuck = 0u32;
        let mut last = self.now;
        while self.now < until && keep_going(self) {
            let next = self.peek_next();
            match next {
                Some(t) if t <= until => {}
                _ => {
                    self.flush();
                    self.now = until;
                    break;
                }
            }
            if !self.step() {
                self.now = until;
                break;
            }
            if self.now == last {
                stuck += 1;
                assert!(
                    stuck < MAX_STEPS_WITHOUT_PROGRESS,
                    "simulation livelocked at {:?}",
                    self.now
                );
            } else {
                stuck = 0;
                last = self.now;
            }
        }
        self.flush();
    }

    fn peek_next(&mut self) -> Option<Duration> {
        self.flush();
        let d = self.queue.peek().map(|Reverse((t, _))| *t);
        let (base, at) = (self.base, self.now);
        let t = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.endpoint.poll_timeout())
            .map(|t| t.saturating_duration_since(base).max(at))
            .min();
        [d, t].into_iter().flatten().min()
    }

    /// A hash of every delivery so far (time, addresses, bytes): equal
    /// seeds must give equal hashes.
    pub fn trace_hash(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// Every event one node produced.
    pub fn events_of(&self, node: usize) -> impl Iterator<Item = &Event> {
        self.nodes[node].events.iter().map(|(_, e)| e)
    }

    /// Registers `on_0` on node 0, scoped to node 1, and `on_1` on node 1,
    /// scoped to node 0, both under `id`; returns their handles.
    pub fn register_each_way(
        &mut self,
        id: crate::CourierId,
        on_0: Box<dyn crate::Courier>,
        on_1: Box<dyn crate::Courier>,
    ) -> Result<(crate::CourierHandle, crate::CourierHandle), crate::ApiError> {
        let (a, b) = (self.id(0), self.id(1));
        let h0 = self.nodes[0]
            .endpoint
            .register_courier(crate::CourierScope::Peer(b), id, on_0)?;
        let h1 = self.nodes[1]
            .endpoint
            .register_courier(crate::CourierScope::Peer(a), id, on_1)?;
        Ok((h0, h1))
    }

    /// A node's ID.
    pub fn id(&self, node: usize) -> crate::NodeId {
        self.nodes[node].endpoint.node_id()
    }

    /// Whether `a` and `b` both count their session as established.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.nodes[a].endpoint.is_connected(&self.id(b)) && self.nodes[b].endpoint.is_connected(&self.id(a))
    }

    /// `a` connects to `b`; runs until both are established or `limit`
    /// passes. Returns how long it took.
    pub fn connect(&mut self, a: usize, b: usize, limit: Duration) -> Option<Duration> {
        let start = self.now;
        let now = self.now();
        let peer = self.id(b);
        self.nodes[a].endpoint.connect(now, &peer).ok()?;
        self.run_until_cond(limit, |s| s.connected(a, b))
            .then(|| self.now - start)
    }

    /// Builds `names.len()` nodes from fixture keys, all paired with each
    /// other, over `link`.
    pub fn with_fixture_nodes(seed: u64, names: &[&str], link: LinkConfig, config: EndpointConfig) -> Self {
        let mut sim = Sim::new(seed);
        sim.set_default_link(link);
        for name in names {
            sim.add_node(fixture_identity(name), TrustStore::new(), config.clone());
        }
        for a in 0..names.len() {
            for b in a + 1..names.len() {
                sim.pair(a, b);
            }
        }
        sim
    }
}

/// An associate for fixture identity `name`, named `name`, with `role` and
/// no address yet (add one with [`NodeAssociate::with_address`]).
pub fn fixture_associate(name: &str, role: Role) -> NodeAssociate {
    NodeAssociate::new(fixture_identity(name).public().clone(), name, role)
}

/// A pre-generated test identity from the repository's fixture keys
/// (`a` to `e` are RSA-2048, `big` is RSA-3072). Generating RSA keys is slow;
/// these keys are public and for tests only.
pub fn fixture_identity(name: &str) -> Identity {
    let path = format!(
        "{}/tests/fixtures/keys/node_{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture key {path}: {e}"));
    Identity::from_pem(&pem).expect("fixture keys are valid")
}
