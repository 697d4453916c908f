//! Two endpoints and an adversarial network, driven by an arbitrary
//! sequence of operations: sends, deliveries, drops, duplicates, clock
//! advances and restarts. After every step: no panic, bounded memory, and
//! reliable-ordered data delivered at most once, in order; at the end every
//! message confirmed delivered was received.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use octolink::sim::fixture_identity;
use octolink::stream::{Delivery, StreamConfig, StreamEvent};
use octolink::{
    CourierHandle, CourierId, CourierScope, Endpoint, EndpointConfig, NodeAssociate, Role, TrustStore,
};
use octolink_couriers::MessageCourier;

#[derive(Arbitrary, Debug)]
enum Op {
    Send { len: u8 },
    Deliver { index: u8 },
    Drop { index: u8 },
    Duplicate { index: u8 },
    Advance { ms: u16 },
    Restart { node: bool },
}

const MAX_IN_FLIGHT: usize = 256;

struct World {
    eps: [Endpoint; 2],
    handles: [CourierHandle; 2],
    addrs: [SocketAddr; 2],
    now: Instant,
    in_flight: Vec<(usize, Vec<u8>)>,
    next_msg: u32,
    last_received: Option<u32>,
    delivered: std::collections::BTreeSet<u64>,
    received: std::collections::BTreeSet<u32>,
    seed: u8,
    /// The message number of the sender's current courier's first message:
    /// a restarted sender numbers its confirmations from zero again.
    id_base: u32,
    /// Acknowledged data a receiver held for reordering dies with it.
    receiver_restarted: bool,
}

fn endpoint(i: usize, addrs: &[SocketAddr; 2], now: Instant, seed: u8) -> (Endpoint, CourierHandle) {
    let names = ["a", "b"];
    let mut trust = TrustStore::new();
    let other = NodeAssociate::new(fixture_identity(names[1 - i]).public().clone(), "p", Role::Agent);
    trust.insert(other.with_address(addrs[1 - i])).expect("trust");
    let mut ep = Endpoint::new(
        EndpointConfig::default(),
        fixture_identity(names[i]),
        trust,
        [seed; 32],
        now,
        0,
    )
    .expect("endpoint");
    let peer = fixture_identity(names[1 - i]).id();
    let courier = MessageCourier::new(StreamConfig::new(Delivery::ReliableOrdered), 100);
    let h = ep
        .register_courier(CourierScope::Peer(peer), CourierId(1), Box::new(courier))
        .expect("courier");
    (ep, h)
}

impl World {
    fn new() -> Self {
        let addrs: [SocketAddr; 2] = ["127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap()];
        let now = Instant::now();
        let (a, ha) = endpoint(0, &addrs, now, 1);
        let (b, hb) = endpoint(1, &addrs, now, 2);
        let mut w = Self {
            eps: [a, b],
            handles: [ha, hb],
            addrs,
            now,
            in_flight: Vec::new(),
            next_msg: 0,
            last_received: None,
            delivered: Default::default(),
            received: Default::default(),
            seed: 3,
            id_base: 0,
            receiver_restarted: false,
        };
        let b_id = w.eps[1].node_id();
        let _ = w.eps[0].connect(now, &b_id);
        w
    }

    /// Timers, transmits and courier news.
    fn settle(&mut self) {
        for i in 0..2 {
            if self.eps[i].poll_timeout().is_some_and(|t| t <= self.now) {
                self.eps[i].handle_timeout(self.now);
            }
            let mut buf = [0u8; 1500];
            while let Some(t) = self.eps[i].poll_transmit(self.now, &mut buf) {
                if self.in_flight.len() < MAX_IN_FLIGHT {
                    self.in_flight.push((1 - i, buf[..t.len].to_vec()));
                }
            }
            while self.eps[i].poll_event().is_some() {}
        }
        if let Some(c) = self.eps[0].courier_mut::<MessageCourier>(self.handles[0]) {
            while let Some(e) = c.poll_event() {
                if let StreamEvent::Delivered(id) = e {
                    assert!(
                        self.delivered.insert(u64::from(self.id_base) + id),
                        "confirmed twice"
                    );
                }
            }
        }
        if let Some(c) = self.eps[1].courier_mut::<MessageCourier>(self.handles[1]) {
            while let Some(m) = c.recv() {
                let n = u32::from_be_bytes(m.body[..4].try_into().expect("tagged"));
                assert!(self.received.insert(n), "delivered twice: {n}");
                assert!(self.last_received.is_none_or(|l| n > l), "out of order: {n}");
                self.last_received = Some(n);
            }
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Send { len } => {
                let mut body = self.next_msg.to_be_bytes().to_vec();
                body.resize(4 + usize::from(len), len);
                if let Some(c) = self.eps[0].courier_mut::<MessageCourier>(self.handles[0]) {
                    if c.send(self.now, body, None).is_ok() {
                        self.next_msg += 1;
                    }
                }
            }
            Op::Deliver { index } | Op::Duplicate { index } if !self.in_flight.is_empty() => {
                let k = usize::from(index) % self.in_flight.len();
                let (to, bytes) = if matches!(op, Op::Duplicate { .. }) {
                    self.in_flight[k].clone()
                } else {
                    self.in_flight.remove(k)
                };
                self.eps[to].handle_datagram(self.now, self.addrs[1 - to], &bytes);
            }
            Op::Drop { index } if !self.in_flight.is_empty() => {
                let k = usize::from(index) % self.in_flight.len();
                self.in_flight.remove(k);
            }
            Op::Advance { ms } => self.now += Duration::from_millis(u64::from(ms % 2000)),
            Op::Restart { node } => {
                let i = usize::from(node);
                self.seed = self.seed.wrapping_add(1);
                let (ep, h) = endpoint(i, &self.addrs, self.now, self.seed);
                self.eps[i] = ep;
                self.handles[i] = h;
                if i == 1 {
                    // A new receiver starts a new order.
                    self.last_received = None;
                    self.receiver_restarted = true;
                } else {
                    self.id_base = self.next_msg;
                }
            }
            _ => {}
        }
        self.settle();
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut w = World::new();
    w.settle();
    for op in ops.into_iter().take(500) {
        w.apply(op);
        assert!(w.in_flight.len() <= MAX_IN_FLIGHT);
    }
    // Heal the network: confirmed data may still be held for reordering
    // behind a message being retransmitted, so let every retransmission land.
    for _ in 0..100 {
        w.apply(Op::Advance { ms: 100 });
        for _ in 0..MAX_IN_FLIGHT {
            if w.in_flight.is_empty() {
                break;
            }
            w.apply(Op::Deliver { index: 0 });
        }
    }
    // Every confirmed message reached the receiver, unless the receiver
    // restarted (and may have died holding it for reordering).
    if !w.receiver_restarted {
        for id in &w.delivered {
            assert!(
                w.received.contains(&(*id as u32)),
                "confirmed {id} never received"
            );
        }
    }
});
