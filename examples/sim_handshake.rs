//! Prints simulated handshake times (connect → both ends established) over
//! links with 10 ms one-way latency and 0–30 % loss, 200 seeds each.
//!
//! `cargo run --release --features sim --example sim_handshake`

use std::time::Duration;

use octolink::sim::{LinkConfig, Sim};
use octolink::{EndpointConfig, Identity, TrustStore};

fn key(name: &str) -> Identity {
    let path = format!(
        "{}/tests/fixtures/keys/node_{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    Identity::from_pem(&std::fs::read_to_string(path).expect("fixture key")).expect("valid key")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let (a, b) = (key("a"), key("b"));
    println!("| loss | p50 | p90 | p99 | max | failed |");
    println!("|---|---|---|---|---|---|");
    for loss in [0.0, 0.1, 0.2, 0.3] {
        let mut times = Vec::new();
        let mut failed = 0;
        for seed in 0..200 {
            let mut sim = Sim::new(seed);
            sim.set_default_link(LinkConfig::lossy(Duration::from_millis(10), loss));
            sim.add_node(a.clone(), TrustStore::new(), EndpointConfig::default());
            sim.add_node(b.clone(), TrustStore::new(), EndpointConfig::default());
            sim.pair(0, 1);
            let (ia, ib) = (sim.nodes[0].endpoint.node_id(), sim.nodes[1].endpoint.node_id());
            let now = sim.now();
            sim.nodes[0].endpoint.connect(now, &ib).expect("paired");
            let done = sim.run_until_cond(Duration::from_secs(60), |s| {
                s.nodes[0].endpoint.is_connected(&ib) && s.nodes[1].endpoint.is_connected(&ia)
            });
            if done {
                times.push(sim.elapsed());
            } else {
                failed += 1;
            }
        }
        times.sort();
        println!(
            "| {:.0}% | {:?} | {:?} | {:?} | {:?} | {failed} |",
            loss * 100.0,
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or_default(),
        );
    }
    println!("\n(virtual time; RTT 20 ms; RSA work is not simulated time)");
}
