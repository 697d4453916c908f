//! `handle_datagram` on a live endpoint with an established session.
//!
//! Input: a mode byte, then data. Mode even: the data is the datagram.
//! Mode odd: the data XORs into a real captured packet (SYN, SYN-ACK, ACK or
//! sealed data), so mutations start close to valid traffic.
#![no_main]

use std::cell::RefCell;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use octolink::sim::Sim;
use octolink::{EndpointConfig, Identity, TrustStore};

struct World {
    sim: Sim,
    samples: Vec<Vec<u8>>,
}

fn world() -> World {
    let key = |pem: &str| Identity::from_pem(pem).expect("fixture key");
    let mut sim = Sim::new(1);
    sim.capture = true;
    sim.add_node(
        key(include_str!("../../tests/fixtures/keys/node_a.pem")),
        TrustStore::new(),
        EndpointConfig::default(),
    );
    sim.add_node(
        key(include_str!("../../tests/fixtures/keys/node_b.pem")),
        TrustStore::new(),
        EndpointConfig::default(),
    );
    sim.pair(0, 1);
    let b = sim.nodes[1].endpoint.node_id();
    let now = sim.now();
    sim.nodes[0].endpoint.connect(now, &b).expect("paired");
    sim.run_for(Duration::from_millis(100));
    sim.nodes[0].endpoint.ping(&b).expect("connected");
    sim.run_for(Duration::from_millis(100));
    let samples = sim.captured.iter().map(|c| c.bytes.clone()).collect();
    World { sim, samples }
}

thread_local! {
    static WORLD: RefCell<World> = RefCell::new(world());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        let datagram = if mode % 2 == 0 {
            rest.to_vec()
        } else {
            let Some((&pick, mask)) = rest.split_first() else {
                return;
            };
            let mut d = w.samples[usize::from(pick) % w.samples.len()].clone();
            for (b, m) in d.iter_mut().zip(mask) {
                *b ^= m;
            }
            if mode & 2 != 0 {
                d.truncate(mask.len());
            }
            d
        };
        let from = w.sim.nodes[0].addr;
        let now = w.sim.now();
        for n in 0..2 {
            let ep = &mut w.sim.nodes[n].endpoint;
            ep.handle_datagram(now, from, &datagram);
            let mut buf = [0u8; 1452];
            while let Some(t) = ep.poll_transmit(now, &mut buf) {
                assert!(t.len <= ep.config().max_datagram);
            }
            while ep.poll_event().is_some() {}
        }
    });
});
