//! Courier scheduling: priority order within packets, no starvation,
//! broadcast, acks without reverse traffic, and idle pings.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use octolink::sim::LinkConfig;
use octolink::{
    Courier, CourierContext, CourierId, CourierScope, DropReason, EndpointConfig, Mandate, PayloadWriter,
};

type Log = Arc<Mutex<Vec<(u16, Instant)>>>;

/// Sends `remaining` payloads of `size` bytes (always due while any remain)
/// and logs arrivals, tagged with its id, into a shared log.
struct Tagged {
    tag: u16,
    priority: u8,
    size: usize,
    remaining: usize,
    due: Option<Instant>,
    /// If set, the next payload falls due this long after the last.
    interval: Option<Duration>,
    log: Log,
}

impl Courier for Tagged {
    fn mandate(&self) -> Mandate {
        Mandate {
            priority: self.priority,
            next_send: if self.remaining > 0 { self.due } else { None },
            send_slack: Duration::ZERO,
            max_payload: self.size as u16,
            min_payload: 0,
            send_active: true,
            receive_active: true,
        }
    }
    fn on_send_opportunity(&mut self, _ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
        let mut payload = vec![0u8; self.size];
        payload[..2].copy_from_slice(&self.tag.to_be_bytes());
        if out.write(&payload).is_ok() {
            self.remaining -= 1;
            if let (Some(due), Some(i)) = (self.due, self.interval) {
                self.due = Some(due + i);
            }
        }
    }
    fn on_receive(&mut self, ctx: &CourierContext, payload: &[u8]) {
        let tag = u16::from_be_bytes([payload[0], payload[1]]);
        self.log.lock().unwrap().push((tag, ctx.now));
    }
}

fn tagged(tag: u16, priority: u8, size: usize, remaining: usize, due: Instant, log: &Log) -> Box<Tagged> {
    Box::new(Tagged {
        tag,
        priority,
        size,
        remaining,
        due: Some(due),
        interval: None,
        log: log.clone(),
    })
}

/// Registers the sender side on node 0 and a logging receiver on node 1.
fn setup(couriers: &[(u16, u8, usize, usize)]) -> (octolink::sim::Sim, Log) {
    let mut sim = pair(1, LinkConfig::default(), EndpointConfig::default());
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    let (a, b) = (id(&sim, 0), id(&sim, 1));
    let log: Log = Arc::default();
    let sink: Log = Arc::default();
    // Everything falls due at the same instant, a little in the future.
    let due = sim.now() + Duration::from_millis(10);
    for &(tag, priority, size, count) in couriers {
        sim.nodes[0]
            .endpoint
            .register_courier(
                CourierScope::Peer(b),
                CourierId(tag),
                tagged(tag, priority, size, count, due, &sink),
            )
            .unwrap();
        sim.nodes[1]
            .endpoint
            .register_courier(
                CourierScope::Peer(a),
                CourierId(tag),
                tagged(tag, 0, 2, 0, due, &log),
            )
            .unwrap();
    }
    (sim, log)
}

#[test]
fn couriers_share_a_packet_in_priority_order() {
    let (mut sim, log) = setup(&[(1, 10, 40, 1), (2, 200, 40, 1), (3, 100, 40, 1)]);
    sim.run_for(Duration::from_millis(100));
    let log = log.lock().unwrap();
    let tags: Vec<u16> = log.iter().map(|&(t, _)| t).collect();
    assert_eq!(tags, vec![2, 3, 1]);
    // All three arrived in one packet (at one instant).
    assert!(log.iter().all(|&(_, t)| t == log[0].1));
}

#[test]
fn what_does_not_fit_goes_in_the_next_packet_by_priority() {
    // 512-byte datagrams hold ~470 bytes of frames: two 200-byte payloads.
    let (mut sim, log) = setup(&[(1, 10, 200, 1), (2, 200, 200, 1), (3, 100, 200, 1)]);
    sim.run_for(Duration::from_millis(100));
    let log = log.lock().unwrap();
    let tags: Vec<u16> = log.iter().map(|&(t, _)| t).collect();
    assert_eq!(tags, vec![2, 3, 1]);
    assert_eq!(log[0].1, log[1].1, "the top two share a packet");
}

#[test]
fn low_priority_is_never_starved_by_a_saturating_high_priority_courier() {
    // The high-priority courier has far more data than the pacer lets out
    // in the test window; the low-priority one must still get through.
    let (mut sim, log) = setup(&[(1, 255, 400, 1_000_000), (2, 0, 400, 3)]);
    sim.run_for(Duration::from_secs(2));
    let log = log.lock().unwrap();
    let low = log.iter().filter(|&&(t, _)| t == 2).count();
    let high = log.iter().filter(|&&(t, _)| t == 1).count();
    assert_eq!(
        low, 3,
        "low priority starved ({high} high-priority payloads went)"
    );
    assert!(high > 100 * low);
}

#[test]
fn a_courier_is_served_at_its_due_time_with_sub_millisecond_resolution() {
    let mut sim = pair(2, LinkConfig::default(), EndpointConfig::default());
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    let b = id(&sim, 1);
    let h = sim.nodes[0]
        .endpoint
        .register_courier(CourierScope::Peer(b), CourierId(1), Box::new(Probe::new(1, 16)))
        .unwrap();
    let due = sim.now() + Duration::from_micros(12_300);
    {
        let p = sim.nodes[0].endpoint.courier_mut::<Probe>(h).unwrap();
        p.outbox.push_back(b"tick".to_vec());
        p.due = Some(due);
    }
    sim.run_for(Duration::from_millis(50));
    let sent = &sim.nodes[0].endpoint.courier::<Probe>(h).unwrap().sent_at;
    assert_eq!(sent.as_slice(), &[due], "served exactly when due, no tick");
}

#[test]
fn broadcast_courier_sends_the_same_data_to_every_session() {
    let mut sim = octolink::sim::Sim::new(3);
    for name in ["a", "b", "c"] {
        sim.add_node(
            identity(name),
            octolink::TrustStore::new(),
            EndpointConfig::default(),
        );
    }
    sim.pair(0, 1);
    sim.pair(0, 2);
    let (b, c) = (id(&sim, 1), id(&sim, 2));
    let now = sim.now();
    sim.nodes[0].endpoint.connect(now, &b).unwrap();
    sim.nodes[0].endpoint.connect(now, &c).unwrap();
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| connected(s, 0, 1)
        && connected(s, 0, 2)));
    let a = id(&sim, 0);
    let log: Log = Arc::default();
    let due = sim.now();
    sim.nodes[0]
        .endpoint
        .register_courier(
            CourierScope::Broadcast,
            CourierId(9),
            tagged(77, 50, 32, 5, due, &log),
        )
        .unwrap();
    let mut handles = Vec::new();
    for n in [1, 2] {
        let sink = Arc::new(Mutex::new(Vec::new()));
        sim.nodes[n]
            .endpoint
            .register_courier(
                CourierScope::Peer(a),
                CourierId(9),
                tagged(0, 0, 2, 0, due, &sink),
            )
            .unwrap();
        handles.push(sink);
    }
    sim.run_for(Duration::from_millis(200));
    for sink in handles {
        let got = sink.lock().unwrap();
        assert_eq!(got.len(), 5, "each control gets every broadcast payload");
        assert!(got.iter().all(|&(tag, _)| tag == 77));
    }
}

#[test]
fn one_way_traffic_is_still_acknowledged_and_measures_rtt() {
    let mut sim = pair(1, LinkConfig::default(), EndpointConfig::default());
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    let b = id(&sim, 1);
    let log: Log = Arc::default();
    let mut sender = tagged(1, 10, 100, 25, sim.now(), &log);
    sender.interval = Some(Duration::from_millis(20));
    sim.nodes[0]
        .endpoint
        .register_courier(CourierScope::Peer(b), CourierId(1), sender)
        .unwrap();
    sim.run_for(Duration::from_millis(500));
    let stats = sim.nodes[0].endpoint.stats();
    let s = &stats.sessions[0];
    assert!(
        s.rtt.samples >= 10,
        "acks must flow with no reverse courier data: {:?}",
        s.rtt
    );
    let rtt = s.rtt.smoothed.unwrap();
    // 1 ms each way, plus up to the 5 ms ack delay.
    assert!(
        rtt >= Duration::from_millis(2) && rtt <= Duration::from_millis(8),
        "{rtt:?}"
    );
}

#[test]
fn an_idle_session_pings_to_stay_alive_and_keep_rtt_fresh() {
    let mut sim = pair(
        4,
        LinkConfig::lossy(Duration::from_millis(20), 0.0),
        EndpointConfig::default(),
    );
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(connected(&sim, 0, 1), "an idle session must not time out");
    let samples: u64 = (0..2)
        .map(|n| sim.nodes[n].endpoint.stats().sessions[0].rtt.samples)
        .sum();
    assert!(samples >= 50, "about one ping a second: {samples}");
    let rtt = sim.nodes[0].endpoint.stats().sessions[0].rtt.smoothed.unwrap();
    assert!(
        rtt >= Duration::from_millis(40) && rtt < Duration::from_millis(50),
        "{rtt:?}"
    );
}

#[test]
fn frames_for_unknown_couriers_are_counted_and_dropped() {
    let mut sim = pair(5, LinkConfig::default(), EndpointConfig::default());
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    let b = id(&sim, 1);
    let h = sim.nodes[0]
        .endpoint
        .register_courier(
            CourierScope::Peer(b),
            CourierId(1234),
            Box::new(Probe::new(1, 16)),
        )
        .unwrap();
    let now = sim.now();
    sim.nodes[0]
        .endpoint
        .courier_mut::<Probe>(h)
        .unwrap()
        .push(now, b"hello".to_vec());
    sim.run_for(Duration::from_millis(50));
    assert_eq!(
        sim.nodes[1]
            .endpoint
            .stats()
            .drops
            .get(DropReason::UnknownCourier),
        1
    );
    assert!(connected(&sim, 0, 1));
}
