//! Measures, on the simulator: 64 MiB blob goodput at 0, 1 and 10 % loss
//! (20 ms RTT), and AgentState staleness at 10 % loss.
//!
//! `cargo run --release -p octolink-couriers --example courier_figures`
//!
//! Narrower runs: `COURIER_FIGURES_LOSSES=0,5` (percent), `COURIER_FIGURES_MIB=8`,
//! `COURIER_FIGURES_DATAGRAM=512`, `COURIER_FIGURES_DELAY_MS=20` (one way);
//! `COURIER_FIGURES_TRACE=1` prints the sender's window every 20 ms.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use octolink::sim::{LinkConfig, Sim};
use octolink::{CourierId, CourierScope, EndpointConfig};
use octolink_couriers::blob::{Acceptor, BlobConfig, BlobSink, BlobSource};
use octolink_couriers::{AgentState, AgentStateConfig, BlobCourier, BlobEvent};

struct Pattern(u64);
impl BlobSource for Pattern {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.saturating_sub(offset) as usize);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = ((offset + k as u64).wrapping_mul(2_654_435_761) >> 13) as u8;
        }
        Ok(n)
    }
}

/// Verifies against the same pattern without storing anything.
struct PatternSink(u64);
impl BlobSink for PatternSink {
    fn write_at(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        Pattern(self.0).read_at(offset, buf)
    }
}

/// The blob run's shape, from the environment (see the module docs).
struct BlobRun {
    size: u64,
    max_datagram: usize,
    one_way: Duration,
}

fn blob_goodput(run: &BlobRun, loss: f64) -> (Duration, f64, f64) {
    let cfg = EndpointConfig {
        max_datagram: run.max_datagram,
        ..EndpointConfig::default()
    };
    let size = run.size;
    let mut sim = Sim::with_fixture_nodes(7, &["a", "b"], LinkConfig::lossy(run.one_way, loss), cfg);
    let rx_cfg = BlobConfig {
        acceptor: Acceptor::Custom(Box::new(|_, size| {
            Ok(Box::new(PatternSink(size)) as Box<dyn BlobSink>)
        })),
        max_incoming_size: u64::MAX,
        ..BlobConfig::default()
    };
    let (tx, rx) = sim
        .register_each_way(
            CourierId(5),
            Box::new(BlobCourier::new(BlobConfig::default())),
            Box::new(BlobCourier::new(rx_cfg)),
        )
        .unwrap();
    sim.connect(0, 1, Duration::from_secs(10)).unwrap();
    let start = sim.elapsed();
    let now = sim.now();
    sim.nodes[0]
        .endpoint
        .courier_mut::<BlobCourier>(tx)
        .unwrap()
        .send(now, Box::new(Pattern(size)), size, "x", 1)
        .unwrap();
    loop {
        sim.run_for(Duration::from_millis(20));
        if std::env::var_os("COURIER_FIGURES_TRACE").is_some() {
            let s = &sim.nodes[0].endpoint.stats().sessions[0];
            eprintln!(
                "{:?} cwnd {} inflight {} sent {} rate {}",
                sim.elapsed() - start,
                s.congestion_window,
                s.bytes_in_flight,
                s.sent.packets,
                s.send_rate
            );
        }
        let c = sim.nodes[1].endpoint.courier_mut::<BlobCourier>(rx).unwrap();
        if std::iter::from_fn(|| c.poll_event()).any(|e| matches!(e, BlobEvent::Completed { .. })) {
            break;
        }
        assert!(sim.elapsed() < Duration::from_secs(7200), "transfer stalled");
    }
    let took = sim.elapsed() - start;
    let s = sim.nodes[0].endpoint.stats().sessions[0].clone();
    let overhead = s.sent.bytes as f64 / size as f64 - 1.0;
    (
        took,
        size as f64 / took.as_secs_f64() / (1 << 20) as f64,
        overhead,
    )
}

fn staleness(loss: f64) -> (Duration, Duration, Duration) {
    let mut sim = Sim::with_fixture_nodes(
        9,
        &["a", "b"],
        LinkConfig::lossy(Duration::from_millis(10), loss),
        EndpointConfig::default(),
    );
    let (agent, control) = (sim.id(0), sim.id(1));
    let states = [AgentState::new(agent), AgentState::new(control)];
    for s in &states {
        s.define(1, "pose", 255, &0u64).unwrap();
    }
    sim.nodes[0]
        .endpoint
        .register_courier(
            CourierScope::Peer(control),
            CourierId(1),
            Box::new(states[0].courier(control, AgentStateConfig::default())),
        )
        .unwrap();
    sim.nodes[1]
        .endpoint
        .register_courier(
            CourierScope::Peer(agent),
            CourierId(1),
            Box::new(states[1].courier(agent, AgentStateConfig::default())),
        )
        .unwrap();
    sim.connect(1, 0, Duration::from_secs(10)).unwrap();
    let mut set_at: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut samples = Vec::new();
    let mut value = 0u64;
    for tick in 0..6000u32 {
        let now = sim.now();
        if tick % 5 == 0 {
            value += 1;
            states[0].set(now, 1, &value).unwrap();
            set_at.insert(value, now);
        }
        sim.run_for(Duration::from_millis(10));
        let now = sim.now();
        let held = states[1].get::<u64>(now, 1).unwrap().value;
        // Staleness: how long ago the agent replaced the value the control
        // still holds (zero while it holds the newest).
        let newer = set_at.range(held + 1..).next().map(|(_, &t)| t);
        samples.push(newer.map_or(Duration::ZERO, |t| now.saturating_duration_since(t)));
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    (pct(0.5), pct(0.99), *samples.last().unwrap())
}

/// A comma-separated list of numbers from the environment, or `default`.
fn env_list(name: &str, default: &[f64]) -> Vec<f64> {
    std::env::var(name).map_or_else(
        |_| default.to_vec(),
        |v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
    )
}

fn main() {
    let one = |name: &str, default: f64| env_list(name, &[default]).first().copied().unwrap_or(default);
    let mib = one("COURIER_FIGURES_MIB", 64.0);
    let run = BlobRun {
        size: (mib * (1 << 20) as f64) as u64,
        max_datagram: one("COURIER_FIGURES_DATAGRAM", 1452.0) as usize,
        one_way: Duration::from_secs_f64(one("COURIER_FIGURES_DELAY_MS", 10.0) / 1e3),
    };
    let losses = env_list("COURIER_FIGURES_LOSSES", &[0.0, 1.0, 10.0]);
    println!(
        "{mib} MiB blob, {:?} RTT, {}-byte datagrams (simulated):\n",
        run.one_way * 2,
        run.max_datagram
    );
    println!("| loss | time | goodput | bytes on the wire beyond the blob |");
    println!("|---|---|---|---|");
    for loss in losses.iter().map(|l| l / 100.0) {
        let (took, mib_s, overhead) = blob_goodput(&run, loss);
        println!(
            "| {:.0}% | {:.1} s | {:.2} MiB/s | {:.1}% |",
            loss * 100.0,
            took.as_secs_f64(),
            mib_s,
            overhead * 100.0
        );
    }
    println!("\nAgentState staleness, one parameter set at 20 Hz, 20 ms RTT, 60 s (simulated):\n");
    println!("| loss | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for loss in [0.0, 0.10] {
        let (p50, p99, max) = staleness(loss);
        println!("| {:.0}% | {p50:?} | {p99:?} | {max:?} |", loss * 100.0);
    }
}
