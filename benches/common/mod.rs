//! Two engines wired back to back with a reliable-ordered MessageCourier
//! each: the round-trip benchmarks' fixture. A node's turn is the peer
//! bench's sans-IO flush (everything out, then due timers).

use std::net::SocketAddr;
use std::time::Instant;

use octolink::sim::{fixture_associate, fixture_identity};
use octolink::stream::{Delivery, StreamConfig};
use octolink::{CourierHandle, CourierId, CourierScope, Endpoint, EndpointConfig, Role, TrustStore};
use octolink_couriers::MessageCourier;

pub struct Node {
    pub ep: Endpoint,
    pub courier: CourierHandle,
    pub addr: SocketAddr,
}

fn node(name: &str, other: &str, addr: SocketAddr, other_addr: SocketAddr, t0: Instant) -> Node {
    let mut trust = TrustStore::new();
    trust
        .insert(fixture_associate(other, Role::Agent).with_address(other_addr))
        .unwrap();
    let cfg = EndpointConfig {
        max_datagram: octolink::wire::ETHERNET_DATAGRAM,
        // Back-to-back round trips would otherwise meet the default send
        // cap, as the peer bench's would.
        max_send_rate: 1 << 40,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(cfg, fixture_identity(name), trust, [7; 32], t0, 0).unwrap();
    let peer = fixture_identity(other).id();
    let courier = ep
        .register_courier(
            CourierScope::Peer(peer),
            CourierId(1),
            Box::new(MessageCourier::new(
                StreamConfig::new(Delivery::ReliableOrdered),
                100,
            )),
        )
        .unwrap();
    Node { ep, courier, addr }
}

/// Everything `n` sends at `now` goes into `wire` (the last datagram wins:
/// a round trip's turn sends one).
fn turn(n: &mut Node, now: Instant, buf: &mut [u8], wire: &mut Vec<u8>) {
    let mut send = |ep: &mut Endpoint| {
        while let Some(t) = ep.poll_transmit(now, buf) {
            wire.clear();
            wire.extend_from_slice(&buf[..t.len]);
        }
    };
    send(&mut n.ep);
    if n.ep.poll_timeout().is_some_and(|t| t <= now) {
        n.ep.handle_timeout(now);
        send(&mut n.ep);
    }
}

pub struct Pair {
    pub a: Node,
    pub b: Node,
    buf: Vec<u8>,
    wire: Vec<u8>,
}

fn courier(ep: &mut Endpoint, h: CourierHandle) -> &mut MessageCourier {
    ep.courier_mut::<MessageCourier>(h).unwrap()
}

impl Pair {
    /// Two connected nodes. Real time throughout: the measured turns use
    /// `Instant::now()`, and the engine must never see time go backwards.
    pub fn connected() -> Self {
        let t0 = Instant::now();
        let (a_addr, b_addr): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        let mut p = Pair {
            a: node("a", "b", a_addr, b_addr, t0),
            b: node("b", "a", b_addr, a_addr, t0),
            buf: vec![0; 2048],
            wire: Vec::with_capacity(2048),
        };
        p.a.ep.connect(t0, &p.b.ep.node_id()).unwrap();
        for _ in 0..200 {
            let now = Instant::now();
            p.hop(now, true);
            p.hop(now, false);
        }
        assert!(p.a.ep.is_connected(&p.b.ep.node_id()), "handshake");
        p
    }

    /// One turn of a (`from_a`) or b, and what it sent delivered.
    fn hop(&mut self, now: Instant, from_a: bool) {
        let (from, to) = if from_a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        };
        self.wire.clear();
        turn(from, now, &mut self.buf, &mut self.wire);
        if !self.wire.is_empty() {
            to.ep.handle_datagram(now, from.addr, &self.wire);
        }
    }

    /// `msg` from a to b, echoed back: one round trip.
    pub fn round_trip(&mut self, msg: &[u8]) {
        let now = Instant::now();
        let (ca, cb) = (self.a.courier, self.b.courier);
        courier(&mut self.a.ep, ca).send(now, msg.to_vec(), None).unwrap();
        self.hop(now, true);
        let got = courier(&mut self.b.ep, cb).recv().expect("arrived");
        courier(&mut self.b.ep, cb).send(now, got.body, None).unwrap();
        self.hop(now, false);
        courier(&mut self.a.ep, ca).recv().expect("echoed");
    }
}
