//! Shared test fixtures: pre-generated RSA keys (generation is slow) and a
//! two-node simulation builder.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use octolink::sim::{LinkConfig, Sim};
use octolink::{Courier, CourierContext, EndpointConfig, Event, Mandate, NodeId, PayloadWriter};

#[allow(unused_imports)]
pub use octolink::sim::fixture_identity as identity;

/// A `probe` courier on each of nodes 0 and 1, scoped to the other, under
/// courier id `id`; returns their handles.
pub fn probes_both_ways(
    sim: &mut Sim,
    id: octolink::CourierId,
    probe: impl Fn() -> Probe,
) -> (octolink::CourierHandle, octolink::CourierHandle) {
    sim.register_each_way(id, Box::new(probe()), Box::new(probe()))
        .unwrap()
}

/// Two paired nodes, `a` (node 0) and `b` (node 1), over `link`.
pub fn pair(seed: u64, link: LinkConfig, config: EndpointConfig) -> Sim {
    Sim::with_fixture_nodes(seed, &["a", "b"], link, config)
}

pub fn id(sim: &Sim, node: usize) -> NodeId {
    sim.id(node)
}

pub fn connected(sim: &Sim, a: usize, b: usize) -> bool {
    sim.connected(a, b)
}

pub fn count_events(sim: &Sim, node: usize, pred: impl Fn(&Event) -> bool) -> usize {
    sim.events_of(node).filter(|e| pred(e)).count()
}

/// The first captured datagram of `packet_type` (1 SYN, 2 SYN-ACK, ...).
pub fn first_captured(sim: &Sim, packet_type: u8) -> Vec<u8> {
    let c = sim.captured.iter().find(|c| c.bytes[3] == packet_type);
    c.expect("a captured datagram of that type").bytes.clone()
}

/// Connects 0 → 1 and runs until both sides are established.
pub fn establish(sim: &mut Sim, limit: Duration) -> Option<Duration> {
    sim.connect(0, 1, limit)
}

/// A test courier: sends numbered messages from a queue, records arrivals.
#[derive(Default)]
pub struct Probe {
    pub priority: u8,
    pub size: usize,
    pub outbox: std::collections::VecDeque<Vec<u8>>,
    pub inbox: Vec<Vec<u8>>,
    pub sent_at: Vec<Instant>,
    pub due: Option<Instant>,
}

impl Probe {
    pub fn new(priority: u8, size: usize) -> Self {
        Self {
            priority,
            size,
            ..Self::default()
        }
    }

    pub fn push(&mut self, now: Instant, msg: Vec<u8>) {
        self.outbox.push_back(msg);
        self.due.get_or_insert(now);
    }
}

impl Courier for Probe {
    fn mandate(&self) -> Mandate {
        Mandate {
            priority: self.priority,
            next_send: if self.outbox.is_empty() { None } else { self.due },
            send_slack: Duration::ZERO,
            max_payload: self.size as u16,
            min_payload: 0,
            send_active: true,
            receive_active: true,
        }
    }

    fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
        if let Some(msg) = self.outbox.front() {
            if out.write(msg).is_ok() {
                self.outbox.pop_front();
                self.sent_at.push(ctx.now);
            }
        }
        if self.outbox.is_empty() {
            self.due = None;
        }
    }

    fn on_receive(&mut self, _ctx: &CourierContext, payload: &[u8]) {
        self.inbox.push(payload.to_vec());
    }
}
