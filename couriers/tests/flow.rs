//! Flow control: congestion control on a narrow link, user rate caps, and
//! the link quality signal.

use std::time::Duration;

use octolink::sim::{LinkConfig, Sim};
use octolink::{CourierHandle, CourierId, EndpointConfig, Event};
use octolink_couriers::blob::{Acceptor, BlobConfig, BlobSource};
use octolink_couriers::{BlobCourier, BlobEvent};

struct Zeros;
impl BlobSource for Zeros {
    fn read_at(&mut self, _offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
}

fn setup(link: LinkConfig) -> (Sim, CourierHandle, CourierHandle) {
    let cfg = EndpointConfig {
        max_datagram: 1452,
        ..EndpointConfig::default()
    };
    let mut sim = Sim::with_fixture_nodes(1, &["a", "b"], link, cfg);
    let rx_cfg = BlobConfig {
        acceptor: Acceptor::Custom(Box::new(|_, _| Ok(Box::new(Discard)))),
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
    (sim, tx, rx)
}

/// A sink that keeps nothing but can still be verified (all zeros).
struct Discard;
impl octolink_couriers::blob::BlobSink for Discard {
    fn write_at(&mut self, _offset: u64, _data: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn read_at(&mut self, _offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
}

/// Bytes node 1 has received on the session (goodput proxy).
fn received(sim: &Sim) -> u64 {
    sim.nodes[1].endpoint.stats().sessions[0].received.bytes
}

#[test]
fn congestion_control_backs_off_on_a_narrow_link_and_recovers_when_it_widens() {
    let link = LinkConfig {
        rate: Some(1_000_000),
        queue_bytes: 32 * 1024,
        ..LinkConfig::lossy(Duration::from_millis(10), 0.0)
    };
    let (mut sim, tx, _) = setup(link);
    let now = sim.now();
    sim.nodes[0]
        .endpoint
        .courier_mut::<BlobCourier>(tx)
        .unwrap()
        .send(now, Box::new(Zeros), 1 << 40, "endless", 1)
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    let before = received(&sim);
    sim.run_for(Duration::from_secs(5));
    let narrow = (received(&sim) - before) as f64 / 5.0;
    let s = sim.nodes[0].endpoint.stats().sessions[0].clone();
    assert!(
        s.congestion_events >= 3,
        "the queue overflowed and the sender backed off: {s:?}"
    );
    assert!(
        narrow > 0.8e6 && narrow <= 1.0e6,
        "uses the 1 MB/s link: {narrow:.0} B/s"
    );
    assert!(s.loss_rate < 0.05, "backing off keeps loss low: {}", s.loss_rate);
    // The link widens fourfold.
    for (a, b) in [(0, 1), (1, 0)] {
        sim.link_mut(a, b).rate = Some(4_000_000);
    }
    sim.run_for(Duration::from_secs(5));
    let before = received(&sim);
    sim.run_for(Duration::from_secs(5));
    let wide = (received(&sim) - before) as f64 / 5.0;
    assert!(wide > 3.0e6, "recovers to use the wider link: {wide:.0} B/s");
}

#[test]
fn per_courier_and_per_session_rate_caps_hold() {
    for per_session in [false, true] {
        let (mut sim, tx, _) = setup(LinkConfig::default());
        let b = sim.id(1);
        let now = sim.now();
        if per_session {
            sim.nodes[0]
                .endpoint
                .set_session_rate_cap(&b, Some(300_000))
                .unwrap();
        } else {
            sim.nodes[0]
                .endpoint
                .set_courier_rate_cap(now, tx, Some(300_000))
                .unwrap();
        }
        sim.nodes[0]
            .endpoint
            .courier_mut::<BlobCourier>(tx)
            .unwrap()
            .send(now, Box::new(Zeros), 1 << 40, "capped", 1)
            .unwrap();
        sim.run_for(Duration::from_secs(1));
        let before = received(&sim);
        sim.run_for(Duration::from_secs(4));
        let rate = (received(&sim) - before) as f64 / 4.0;
        assert!(
            rate > 250_000.0 && rate < 330_000.0,
            "session cap {per_session}: {rate:.0} B/s"
        );
    }
}

#[test]
fn a_slow_link_turns_the_quality_signal_bad_and_a_fast_one_good_again() {
    let (mut sim, _, _) = setup(LinkConfig::lossy(Duration::from_millis(200), 0.0));
    sim.run_for(Duration::from_secs(5));
    let b = sim.id(1);
    assert!(sim
        .events_of(0)
        .any(|e| matches!(e, Event::LinkQuality { peer, good: false } if *peer == b)));
    for (x, y) in [(0, 1), (1, 0)] {
        sim.link_mut(x, y).latency = Duration::from_millis(5);
    }
    sim.run_for(Duration::from_secs(10));
    assert!(sim
        .events_of(0)
        .any(|e| matches!(e, Event::LinkQuality { good: true, .. })));
    assert!(sim.nodes[0].endpoint.stats().sessions[0].link_good);
}

#[test]
fn blob_events_report_completion_on_a_capped_link() {
    let (mut sim, tx, rx) = setup(LinkConfig::default());
    let now = sim.now();
    let id = sim.nodes[0]
        .endpoint
        .courier_mut::<BlobCourier>(tx)
        .unwrap()
        .send(now, Box::new(Zeros), 1 << 20, "mib", 1)
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    let c = sim.nodes[1].endpoint.courier_mut::<BlobCourier>(rx).unwrap();
    let ev: Vec<BlobEvent> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(ev
        .iter()
        .any(|e| matches!(e, BlobEvent::Completed { id: i, .. } if *i == id)));
}
