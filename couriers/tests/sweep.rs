//! The simulator sweep: many seeds over mixed hostile scenarios. Checked on
//! every seed: blob integrity, reliable-ordered data delivered exactly once
//! or reported failed, AgentState convergence once the network heals, no
//! panic, and live allocations back to their baseline afterwards.
//!
//! `cargo test -p octolink-couriers --test sweep` runs a quick set; the full
//! sweep is `cargo test --release -p octolink-couriers --test sweep -- --ignored`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::time::Duration;

use octolink::sim::{BurstLoss, LinkConfig, Sim};
use octolink::stream::{Delivery, StreamConfig, StreamEvent};
use octolink::{CourierHandle, CourierId, CourierScope, EndpointConfig};
use octolink_couriers::blob::{Acceptor, BlobConfig};
use octolink_couriers::{AgentState, AgentStateConfig, BlobCourier, BlobEvent, MessageCourier};
use rand::{Rng, SeedableRng};

struct Counting;

thread_local! {
    /// Live allocations made by this thread (tests run on several threads).
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn live() -> i64 {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What one seed does to the network.
#[derive(Debug)]
struct Scenario {
    link: LinkConfig,
    partition: bool,
    restart: bool,
    roam: bool,
}

fn scenario(seed: u64) -> Scenario {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let link = LinkConfig {
        latency: Duration::from_millis(r.gen_range(1..40)),
        jitter: Duration::from_millis(r.gen_range(0..10)),
        loss: r.gen_range(0.0..0.3),
        burst: r.gen_bool(0.3).then_some(BurstLoss {
            enter_bad: 0.02,
            leave_bad: 0.3,
            bad_loss: 0.9,
        }),
        duplicate: r.gen_range(0.0..0.05),
        reorder: r.gen_range(0.0..0.2),
        corrupt: r.gen_range(0.0..0.02),
        ..LinkConfig::default()
    };
    Scenario {
        link,
        partition: r.gen_bool(0.3),
        restart: r.gen_bool(0.2),
        roam: r.gen_bool(0.2),
    }
}

const MSG: CourierId = CourierId(1);
const BLOB: CourierId = CourierId(2);
const STATE: CourierId = CourierId(3);

/// What the receiver got and the sender heard, so far.
#[derive(Default)]
struct Seen {
    received: Vec<u32>,
    delivered: BTreeSet<u64>,
    failed: BTreeSet<u64>,
    blob_done: Option<[u8; 32]>,
}

/// Collects the message and blob news from both couriers.
fn drain(
    seed: u64,
    sim: &mut Sim,
    (m0, m1, b1): (CourierHandle, CourierHandle, CourierHandle),
    seen: &mut Seen,
) {
    let tx = sim.nodes[0].endpoint.courier_mut::<MessageCourier>(m0).unwrap();
    while let Some(e) = tx.poll_event() {
        match e {
            StreamEvent::Delivered(id) => {
                assert!(seen.delivered.insert(id), "seed {seed}: {id} confirmed twice")
            }
            StreamEvent::Failed(id) => {
                seen.failed.insert(id);
            }
            other => panic!("seed {seed}: unexpected {other:?}"),
        }
    }
    let rx = sim.nodes[1].endpoint.courier_mut::<MessageCourier>(m1).unwrap();
    while let Some(m) = rx.recv() {
        seen.received
            .push(u32::from_be_bytes(m.body.try_into().expect("4-byte message")));
    }
    let c = sim.nodes[1].endpoint.courier_mut::<BlobCourier>(b1).unwrap();
    for e in std::iter::from_fn(|| c.poll_event()) {
        if let BlobEvent::Completed { digest, .. } = e {
            seen.blob_done = Some(digest);
        }
    }
}

/// Runs one seed; panics (with the seed) on any violated property.
fn run_seed(seed: u64) {
    let sc = scenario(seed);
    let mut sim = Sim::with_fixture_nodes(seed, &["a", "b"], sc.link, EndpointConfig::default());
    let (a, b) = (sim.id(0), sim.id(1));
    let states = [AgentState::new(a), AgentState::new(b)];
    for s in &states {
        s.define(1, "x", 200, &0u32).unwrap();
    }
    let msg_cfg = StreamConfig::new(Delivery::ReliableOrdered);
    let register = |sim: &mut Sim, node: usize, peer, state: &AgentState| {
        let scope = CourierScope::Peer(peer);
        let ep = &mut sim.nodes[node].endpoint;
        let m = ep
            .register_courier(scope, MSG, Box::new(MessageCourier::new(msg_cfg, 100)))
            .unwrap();
        let blob = BlobCourier::new(BlobConfig {
            acceptor: Acceptor::Memory,
            ..BlobConfig::default()
        });
        let bl = ep.register_courier(scope, BLOB, Box::new(blob)).unwrap();
        ep.register_courier(
            scope,
            STATE,
            Box::new(state.courier(peer, AgentStateConfig::default())),
        )
        .unwrap();
        (m, bl)
    };
    let (m0, b0) = register(&mut sim, 0, b, &states[0]);
    let (mut m1, mut b1) = register(&mut sim, 1, a, &states[1]);
    let connected = sim.connect(0, 1, Duration::from_secs(120)).is_some();
    assert!(connected, "seed {seed}: no session ({sc:?})");

    let blob: Vec<u8> = (0..96 * 1024u32).map(|i| (i * 7 + seed as u32) as u8).collect();
    let now = sim.now();
    let blob_id = sim.nodes[0]
        .endpoint
        .courier_mut::<BlobCourier>(b0)
        .unwrap()
        .send(now, Box::new(blob.clone()), blob.len() as u64, "b", 1)
        .unwrap();
    let mut sent_ids = BTreeSet::new();
    let mut seen = Seen::default();
    let mut blob_failed = false;
    let mut next = 0u32;
    for step in 0..600 {
        let now = sim.now();
        // Writes from both sides, messages from node 0.
        if step % 10 == 0 {
            states[step % 20 / 10].set(now, 1, &(step as u32)).unwrap();
        }
        let tx = sim.nodes[0].endpoint.courier_mut::<MessageCourier>(m0).unwrap();
        while next < 400 {
            match tx.send(now, next.to_be_bytes().to_vec(), None) {
                Ok(id) => {
                    sent_ids.insert(id);
                    next += 1;
                }
                Err(_) => break,
            }
        }
        drain(seed, &mut sim, (m0, m1, b1), &mut seen);
        let c = sim.nodes[0].endpoint.courier_mut::<BlobCourier>(b0).unwrap();
        blob_failed |= std::iter::from_fn(|| c.poll_event())
            .any(|e| matches!(e, BlobEvent::Failed { id, .. } if id == blob_id));
        // The hostile events, mid-run.
        if step == 100 && sc.partition {
            sim.partition(0, 1, true);
            sim.run_for(Duration::from_secs(30));
            sim.partition(0, 1, false);
        }
        if step == 200 && sc.roam {
            sim.change_address(0, "127.0.2.9:6000".parse().unwrap());
        }
        if step == 300 && sc.restart {
            sim.restart(1);
            // The restarted node's couriers are gone with it; register anew.
            (m1, b1) = register(&mut sim, 1, a, &states[1]);
        }
        sim.run_for(Duration::from_millis(50));
    }
    // Heal the network and let everything settle.
    sim.set_link(0, 1, LinkConfig::default());
    sim.run_for(Duration::from_secs(60));
    drain(seed, &mut sim, (m0, m1, b1), &mut seen);
    let Seen {
        received,
        delivered,
        failed,
        blob_done,
    } = seen;

    let c = sim.nodes[0].endpoint.courier_mut::<BlobCourier>(b0).unwrap();
    blob_failed |= std::iter::from_fn(|| c.poll_event())
        .any(|e| matches!(e, BlobEvent::Failed { id, .. } if id == blob_id));
    // Blob integrity: it completes byte-exact, or its failure is reported
    // (a restart, or a partition past the idle timeout, ends the session).
    let expected: [u8; 32] = blake3::hash(&blob).into();
    match blob_done {
        Some(got) => assert_eq!(got, expected, "seed {seed}: corrupt blob"),
        None => assert!(
            blob_failed,
            "seed {seed}: blob {blob_id} neither completed nor failed ({sc:?})"
        ),
    }
    // Exactly once, or reported failed (failed messages are never re-sent,
    // so even across a restart nothing arrives twice or out of order).
    let unique: BTreeSet<u32> = received.iter().copied().collect();
    assert_eq!(
        unique.len(),
        received.len(),
        "seed {seed}: duplicate delivery ({sc:?})"
    );
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "seed {seed}: out of order ({sc:?})"
    );
    for id in &sent_ids {
        assert!(
            delivered.contains(id) || failed.contains(id),
            "seed {seed}: message {id} neither delivered nor reported failed ({sc:?})"
        );
    }
    for id in &delivered {
        assert!(
            unique.contains(&(*id as u32)),
            "seed {seed}: {id} confirmed but never received"
        );
    }
    // AgentState converges once the network has healed.
    assert_eq!(
        states[0].digest(),
        states[1].digest(),
        "seed {seed}: state diverged ({sc:?})"
    );
}

fn sweep(seeds: std::ops::Range<u64>) {
    let count = seeds.end - seeds.start;
    let mut slowest = (std::time::Duration::ZERO, 0);
    for seed in seeds {
        let before = live();
        let t = std::time::Instant::now();
        run_seed(seed);
        slowest = slowest.max((t.elapsed(), seed));
        let after = live();
        assert_eq!(
            after,
            before,
            "seed {seed}: {} allocations outlived the run",
            after - before
        );
    }
    eprintln!(
        "{count} seeds; slowest: seed {} in {:?}: {:?}",
        slowest.1,
        slowest.0,
        scenario(slowest.1)
    );
}

#[test]
fn quick_sweep() {
    sweep(0..100);
}

#[test]
#[ignore = "the full sweep: thousands of seeds, minutes in release mode"]
fn full_sweep() {
    sweep(0..2000);
}

#[test]
#[ignore = "debugging one seed"]
fn one_seed() {
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    eprintln!("{:?}", scenario(seed));
    run_seed(seed);
}
