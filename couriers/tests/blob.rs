//! BlobCourier on the simulator: integrity under loss, bounded receiver
//! memory, cancel, limits, priorities and malicious chunks.

use std::path::PathBuf;
use std::time::Duration;

use octolink::sim::{LinkConfig, Sim};
use octolink::{Courier, CourierContext, CourierHandle, CourierId, EndpointConfig};
use octolink_couriers::blob::{Acceptor, BlobConfig, BlobSource};
use octolink_couriers::{BlobCourier, BlobEvent};

const ID: CourierId = CourierId(5);

/// A blob whose bytes are computed from their offset: any size, no memory.
struct Pattern {
    size: u64,
}

fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

impl BlobSource for Pattern {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.size.saturating_sub(offset) as usize);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern_byte(offset + k as u64);
        }
        Ok(n)
    }
}

fn pattern_digest(size: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut p = Pattern { size };
    let mut off = 0;
    while off < size {
        let n = p.read_at(off, &mut buf).unwrap();
        h.update(&buf[..n]);
        off += n as u64;
    }
    h.finalize().into()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("octolink-blob-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Pair {
    sim: Sim,
    tx: CourierHandle,
    rx: CourierHandle,
}

fn pair(seed: u64, link: LinkConfig, receiver: BlobConfig) -> Pair {
    let cfg = EndpointConfig {
        max_datagram: 1452,
        ..EndpointConfig::default()
    };
    let mut sim = Sim::with_fixture_nodes(seed, &["a", "b"], link, cfg);
    let (tx, rx) = sim
        .register_each_way(
            ID,
            Box::new(BlobCourier::new(BlobConfig::default())),
            Box::new(BlobCourier::new(receiver)),
        )
        .unwrap();
    sim.connect(0, 1, Duration::from_secs(30)).expect("connects");
    Pair { sim, tx, rx }
}

fn blob(p: &mut Pair, node: usize) -> &mut BlobCourier {
    let h = if node == 0 { p.tx } else { p.rx };
    p.sim.nodes[node].endpoint.courier_mut::<BlobCourier>(h).unwrap()
}

fn events(p: &mut Pair, node: usize) -> Vec<BlobEvent> {
    let b = blob(p, node);
    std::iter::from_fn(|| b.poll_event()).collect()
}

/// Runs until node 0 sees its blob `id` complete or fail; returns the
/// events of both sides and the largest receiver bookkeeping seen.
fn run_transfer(p: &mut Pair, id: u64, limit: Duration) -> (Vec<BlobEvent>, Vec<BlobEvent>, usize) {
    let (mut ev0, mut ev1) = (Vec::new(), Vec::new());
    let mut max_book = 0;
    let deadline = p.sim.elapsed() + limit;
    while p.sim.elapsed() < deadline {
        p.sim.run_for(Duration::from_millis(200));
        max_book = max_book.max(blob(p, 1).bookkeeping());
        ev0.extend(events(p, 0));
        ev1.extend(events(p, 1));
        let done = ev0.iter().any(|e| {
            matches!(e, BlobEvent::Completed { id: i, outgoing: true, .. } | BlobEvent::Failed { id: i, outgoing: true, .. } if *i == id)
        });
        if done {
            break;
        }
    }
    (ev0, ev1, max_book)
}

#[test]
fn a_64_mib_blob_under_10_percent_loss_reorder_and_duplication_arrives_byte_identical() {
    let size = 64u64 << 20;
    let dir = temp_dir("64");
    let link = LinkConfig {
        reorder: 0.05,
        duplicate: 0.02,
        reorder_delay: Duration::from_millis(4),
        ..LinkConfig::lossy(Duration::from_millis(10), 0.10)
    };
    let receiver = BlobConfig {
        acceptor: Acceptor::Directory(dir.clone()),
        ..BlobConfig::default()
    };
    let mut p = pair(1, link, receiver);
    let now = p.sim.now();
    let id = blob(&mut p, 0)
        .send(now, Box::new(Pattern { size }), size, "map.bin", 10)
        .unwrap();
    let (ev0, ev1, max_book) = run_transfer(&mut p, id, Duration::from_secs(3600));
    let expected = pattern_digest(size);
    assert!(
        ev0.iter()
            .any(|e| matches!(e, BlobEvent::Completed { digest, outgoing: true, .. } if *digest == expected)),
        "sender: {:?}",
        ev0.iter()
            .filter(|e| !matches!(e, BlobEvent::Progress { .. }))
            .collect::<Vec<_>>()
    );
    let path = ev1
        .iter()
        .find_map(|e| match e {
            BlobEvent::Completed {
                path,
                outgoing: false,
                ..
            } => path.clone(),
            _ => None,
        })
        .expect("receiver completed");
    let mut f = std::fs::File::open(&path).unwrap();
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut f, &mut h).unwrap();
    assert_eq!(<[u8; 32]>::from(h.finalize()), expected, "byte-identical on disk");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    // The receiver never holds blob data, only range bookkeeping.
    assert!(
        max_book < 2_000,
        "receiver bookkeeping grew to {max_book} entries"
    );
    let stats = p.sim.nodes[0].endpoint.stats();
    assert!(stats.sessions[0].loss_rate > 0.05, "{:?}", stats.sessions[0]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_receiver_refuses_an_oversized_offer_before_allocating_anything() {
    let receiver = BlobConfig {
        acceptor: Acceptor::Memory,
        max_incoming_size: 1000,
        ..BlobConfig::default()
    };
    let mut p = pair(2, LinkConfig::default(), receiver);
    let now = p.sim.now();
    let id = blob(&mut p, 0)
        .send(now, Box::new(Pattern { size: 1 << 40 }), 1 << 40, "huge", 1)
        .unwrap();
    let (ev0, ev1, _) = run_transfer(&mut p, id, Duration::from_secs(5));
    assert!(ev1
        .iter()
        .any(|e| matches!(e, BlobEvent::Offered { accepted: false, .. })));
    assert!(ev0.iter().any(
        |e| matches!(e, BlobEvent::Failed { outgoing: true, reason, .. } if reason.contains("exceeds"))
    ));
    assert_eq!(blob(&mut p, 1).active(), (0, 0));
}

#[test]
fn either_side_can_cancel() {
    for canceller in [0usize, 1] {
        let receiver = BlobConfig {
            acceptor: Acceptor::Memory,
            ..BlobConfig::default()
        };
        let link = LinkConfig {
            rate: Some(200_000),
            ..LinkConfig::default()
        };
        let mut p = pair(3, link, receiver);
        let now = p.sim.now();
        let id = blob(&mut p, 0)
            .send(now, Box::new(Pattern { size: 10 << 20 }), 10 << 20, "x", 1)
            .unwrap();
        p.sim.run_for(Duration::from_secs(1));
        let now = p.sim.now();
        blob(&mut p, canceller).cancel(now, id, canceller == 0, "operator said so");
        let (ev0, ev1, _) = run_transfer(&mut p, id, Duration::from_secs(2));
        let other = if canceller == 0 { &ev1 } else { &ev0 };
        assert!(
            other
                .iter()
                .any(|e| matches!(e, BlobEvent::Cancelled { by_peer: true, .. })),
            "canceller {canceller}: {other:?}"
        );
        assert_eq!(blob(&mut p, 0).active(), (0, 0));
        assert_eq!(blob(&mut p, 1).active(), (0, 0));
    }
}

#[test]
fn the_higher_priority_blob_finishes_first() {
    let receiver = BlobConfig {
        acceptor: Acceptor::Memory,
        ..BlobConfig::default()
    };
    let mut p = pair(4, LinkConfig::default(), receiver);
    let now = p.sim.now();
    let size = 2 << 20;
    let low = blob(&mut p, 0)
        .send(now, Box::new(Pattern { size }), size, "low", 1)
        .unwrap();
    let high = blob(&mut p, 0)
        .send(now, Box::new(Pattern { size }), size, "high", 200)
        .unwrap();
    let (ev0, _, _) = run_transfer(&mut p, low, Duration::from_secs(60));
    let order: Vec<u64> = ev0
        .iter()
        .filter_map(|e| match e {
            BlobEvent::Completed {
                id, outgoing: true, ..
            } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![high, low]);
}

#[test]
fn progress_reports_rate_and_eta() {
    let receiver = BlobConfig {
        acceptor: Acceptor::Memory,
        ..BlobConfig::default()
    };
    let link = LinkConfig {
        rate: Some(1_000_000),
        ..LinkConfig::default()
    };
    let mut p = pair(5, link, receiver);
    let now = p.sim.now();
    let id = blob(&mut p, 0)
        .send(now, Box::new(Pattern { size: 4 << 20 }), 4 << 20, "p", 1)
        .unwrap();
    let (ev0, _, _) = run_transfer(&mut p, id, Duration::from_secs(30));
    let progress: Vec<_> = ev0
        .iter()
        .filter_map(|e| match e {
            BlobEvent::Progress {
                progress,
                outgoing: true,
                ..
            } => Some(*progress),
            _ => None,
        })
        .collect();
    assert!(
        progress.len() >= 90,
        "about one report per percent: {}",
        progress.len()
    );
    let mid = progress[progress.len() / 2];
    assert!(
        mid.rate > 500_000.0 && mid.rate < 1_100_000.0,
        "rate {}",
        mid.rate
    );
    let eta = mid.eta.unwrap().as_secs_f64();
    assert!((1.0..4.0).contains(&eta), "eta {eta}");
    assert!(progress.windows(2).all(|w| w[0].done <= w[1].done));
}

#[test]
fn chunks_outside_the_announced_size_or_for_unknown_blobs_are_refused() {
    let mut c = BlobCourier::new(BlobConfig {
        acceptor: Acceptor::Memory,
        ..BlobConfig::default()
    });
    let ctx = CourierContext {
        now: std::time::Instant::now(),
        peer: None,
        rtt: None,
    };
    // A chunk for blob 9, which was never offered.
    c.on_receive(&ctx, &[0x01, 9, 0, 1, 2, 3]);
    // Garbage.
    c.on_receive(&ctx, &[0x07, 1]);
    assert_eq!(c.refused_chunks, 2);
    assert_eq!(c.active(), (0, 0));
}

mod reassembly {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// Whatever the link does, a received blob equals the sent one
        /// byte for byte (the reference model is the source itself).
        #[test]
        fn blobs_reassemble_exactly_over_random_links(
            seed in any::<u64>(),
            size in 0u64..300_000,
            loss in 0.0..0.25f64,
            reorder in 0.0..0.3f64,
            duplicate in 0.0..0.2f64,
            jitter_ms in 0u64..15,
        ) {
            let link = LinkConfig {
                loss,
                reorder,
                duplicate,
                jitter: Duration::from_millis(jitter_ms),
                ..LinkConfig::lossy(Duration::from_millis(5), loss)
            };
            let receiver = BlobConfig { acceptor: Acceptor::Memory, ..BlobConfig::default() };
            let mut p = pair(seed, link, receiver);
            let data: Vec<u8> = (0..size).map(pattern_byte).collect();
            let now = p.sim.now();
            let id = blob(&mut p, 0).send(now, Box::new(data.clone()), size, "r", 1).unwrap();
            let (ev0, ev1, _) = run_transfer(&mut p, id, Duration::from_secs(600));
            let expected: [u8; 32] = blake3::hash(&data).into();
            let completed = |events: &[BlobEvent], side: bool| {
                events.iter().any(|e| matches!(e, BlobEvent::Completed { digest, outgoing, .. } if *digest == expected && *outgoing == side))
            };
            prop_assert!(completed(&ev0, true), "sender did not complete");
            prop_assert!(completed(&ev1, false), "receiver did not complete");
        }
    }
}
