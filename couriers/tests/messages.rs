//! Reliable delivery, back-pressure and command lifespans, on the simulator.

use std::time::Duration;

use octolink::sim::{BurstLoss, LinkConfig, Sim};
use octolink::stream::{Delivery, PushError, StreamConfig, StreamEvent};
use octolink::{CourierHandle, CourierId, EndpointConfig};
use octolink_couriers::{CommandCourier, CommandEvent, MessageCourier};

const ID: CourierId = CourierId(3);

/// Nodes 0 and 1, connected, each with courier `make()` for the other.
fn setup<C: octolink::Courier>(
    seed: u64,
    link: LinkConfig,
    make: impl Fn() -> C,
) -> (Sim, CourierHandle, CourierHandle) {
    let mut sim = Sim::with_fixture_nodes(seed, &["a", "b"], link, EndpointConfig::default());
    let (h0, h1) = sim
        .register_each_way(ID, Box::new(make()), Box::new(make()))
        .unwrap();
    sim.connect(0, 1, Duration::from_secs(60)).expect("connects");
    (sim, h0, h1)
}

#[test]
fn reliable_ordered_delivers_exactly_once_in_order_under_20_percent_burst_loss() {
    let link = LinkConfig {
        // Stationary bad share 0.05 / (0.05 + 0.2) = 20 %, all lost in bad.
        burst: Some(BurstLoss {
            enter_bad: 0.05,
            leave_bad: 0.2,
            bad_loss: 1.0,
        }),
        reorder: 0.05,
        duplicate: 0.02,
        ..LinkConfig::lossy(Duration::from_millis(10), 0.0)
    };
    let mut cfg = StreamConfig::new(Delivery::ReliableOrdered);
    cfg.max_queued = 64;
    let (mut sim, h0, h1) = setup(1, link, || MessageCourier::new(cfg, 100));
    let total = 3000u32;
    let mut pushed = 0u32;
    let mut got: Vec<u32> = Vec::new();
    let mut delivered_events = 0;
    for _ in 0..20_000 {
        let now = sim.now();
        let tx = sim.nodes[0].endpoint.courier_mut::<MessageCourier>(h0).unwrap();
        while pushed < total {
            match tx.send(now, pushed.to_be_bytes().to_vec(), None) {
                Ok(_) => pushed += 1,
                Err(PushError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        while let Some(e) = tx.poll_event() {
            if !matches!(e, StreamEvent::Delivered(_)) {
                for n in 0..2 {
                    let st = sim.nodes[n].endpoint.stats();
                    eprintln!(
                        "node {n}: in {:?} out {:?} whole {} drops {:?} sessions {:?}",
                        st.received,
                        st.sent,
                        st.whole,
                        st.drops.nonzero().collect::<Vec<_>>(),
                        st.sessions
                    );
                }
                panic!("{e:?} at {:?}", sim.elapsed());
            }
            delivered_events += 1;
        }
        let rx = sim.nodes[1].endpoint.courier_mut::<MessageCourier>(h1).unwrap();
        while let Some(m) = rx.recv() {
            got.push(u32::from_be_bytes(m.body.try_into().unwrap()));
        }
        if got.len() == total as usize && delivered_events == total {
            break;
        }
        sim.run_for(Duration::from_millis(20));
    }
    assert_eq!(got, (0..total).collect::<Vec<_>>(), "exactly once, in order");
    assert_eq!(delivered_events, total);
    let stats = sim.nodes[0].endpoint.stats();
    assert!(
        stats.sessions[0].packets_lost > 100,
        "the link really lost packets"
    );
}

#[test]
fn a_full_queue_reports_back_pressure_and_loses_nothing_accepted() {
    let make = || {
        let mut cfg = StreamConfig::new(Delivery::ReliableOrdered);
        cfg.max_queued = 8;
        CommandCourier::with_config(cfg, 240)
    };
    let (mut sim, h0, h1) = setup(2, LinkConfig::default(), make);
    // Cut the link so nothing drains, then overfill.
    sim.partition(0, 1, true);
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..40u8 {
        let now = sim.now();
        let tx = sim.nodes[0].endpoint.courier_mut::<CommandCourier>(h0).unwrap();
        match tx.send(now, vec![i], None) {
            Ok(_) => accepted.push(i),
            Err(PushError::Full { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
        // Let the engine take some into flight between pushes.
        sim.run_for(Duration::from_millis(1));
    }
    assert!(refused > 0, "the queue must push back");
    // A partition shorter than the idle timeout: the session survives.
    sim.run_for(Duration::from_secs(2));
    sim.partition(0, 1, false);
    sim.run_for(Duration::from_secs(3));
    assert!(sim.connected(0, 1), "a full queue never disconnects");
    let rx = sim.nodes[1].endpoint.courier_mut::<CommandCourier>(h1).unwrap();
    let mut got = Vec::new();
    while let Some(c) = rx.recv() {
        got.push(c.body[0]);
    }
    assert_eq!(got, accepted, "every accepted command arrives, in order, once");
    let tx = sim.nodes[0].endpoint.courier_mut::<CommandCourier>(h0).unwrap();
    let mut delivered = 0;
    while let Some(e) = tx.poll_event() {
        assert!(matches!(e, CommandEvent::Delivered(_)), "{e:?}");
        delivered += 1;
    }
    assert_eq!(delivered, accepted.len());
}

#[test]
fn a_command_past_its_lifespan_is_never_delivered() {
    let (mut sim, h0, h1) = setup(
        3,
        LinkConfig::lossy(Duration::from_millis(5), 0.0),
        CommandCourier::new,
    );
    sim.partition(0, 1, true);
    let now = sim.now();
    let tx = sim.nodes[0].endpoint.courier_mut::<CommandCourier>(h0).unwrap();
    let short = tx
        .send(now, b"go left".to_vec(), Some(Duration::from_millis(500)))
        .unwrap();
    let long = tx
        .send(now, b"stop".to_vec(), Some(Duration::from_secs(30)))
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    sim.partition(0, 1, false);
    sim.run_for(Duration::from_secs(2));
    let rx = sim.nodes[1].endpoint.courier_mut::<CommandCourier>(h1).unwrap();
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| rx.recv()).map(|c| c.body).collect();
    assert_eq!(got, vec![b"stop".to_vec()], "the expired command must never run");
    let tx = sim.nodes[0].endpoint.courier_mut::<CommandCourier>(h0).unwrap();
    let events: Vec<CommandEvent> = std::iter::from_fn(|| tx.poll_event()).collect();
    assert!(events.contains(&CommandEvent::Expired(short)), "{events:?}");
    assert!(events.contains(&CommandEvent::Delivered(long)), "{events:?}");
    assert!(!events.contains(&CommandEvent::Delivered(short)));
}

#[test]
fn a_command_that_cannot_make_its_lifespan_in_transit_is_dropped_on_arrival() {
    // 300 ms each way, 100 ms lifespan: it would arrive stale.
    let (mut sim, h0, h1) = setup(
        4,
        LinkConfig::lossy(Duration::from_millis(300), 0.0),
        CommandCourier::new,
    );
    // Let the RTT estimate settle.
    sim.run_for(Duration::from_secs(3));
    let now = sim.now();
    let tx = sim.nodes[0].endpoint.courier_mut::<CommandCourier>(h0).unwrap();
    tx.send(now, b"too late".to_vec(), Some(Duration::from_millis(100)))
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    let rx = sim.nodes[1].endpoint.courier_mut::<CommandCourier>(h1).unwrap();
    assert!(rx.recv().is_none());
    assert_eq!(rx.expired_on_arrival(), 1);
}

#[test]
fn commands_jump_ahead_of_bulk_traffic() {
    // A saturating low-priority stream and a command sent in the middle:
    // the command arrives within a few packet times, not behind the queue.
    // A 2 MB/s bottleneck with a 16 KB buffer (8 ms of queueing at most).
    let link = LinkConfig {
        rate: Some(2_000_000),
        queue_bytes: 16 * 1024,
        ..LinkConfig::default()
    };
    let mut sim = Sim::with_fixture_nodes(5, &["a", "b"], link, EndpointConfig::default());
    let mut bulk_cfg = StreamConfig::new(Delivery::ReliableOrdered);
    bulk_cfg.max_queued = 10_000;
    bulk_cfg.max_queued_bytes = 4 << 20;
    let (bulk, _) = sim
        .register_each_way(
            CourierId(1),
            Box::new(MessageCourier::new(bulk_cfg, 10)),
            Box::new(MessageCourier::new(bulk_cfg, 10)),
        )
        .unwrap();
    let (cmd, cmd_rx) = sim
        .register_each_way(
            CourierId(2),
            Box::new(CommandCourier::new()),
            Box::new(CommandCourier::new()),
        )
        .unwrap();
    sim.connect(0, 1, Duration::from_secs(5)).unwrap();
    let now = sim.now();
    for i in 0..5000u32 {
        let c = sim.nodes[0].endpoint.courier_mut::<MessageCourier>(bulk).unwrap();
        c.send(now, vec![(i % 256) as u8; 300], None).unwrap();
    }
    sim.run_for(Duration::from_millis(50));
    let now = sim.now();
    let start = sim.elapsed();
    sim.nodes[0]
        .endpoint
        .courier_mut::<CommandCourier>(cmd)
        .unwrap()
        .send(now, b"e-stop".to_vec(), None)
        .unwrap();
    let mut latency = None;
    for _ in 0..2000 {
        sim.run_for(Duration::from_micros(500));
        if sim.nodes[1]
            .endpoint
            .courier_mut::<CommandCourier>(cmd_rx)
            .unwrap()
            .recv()
            .is_some()
        {
            latency = Some(sim.elapsed() - start);
            break;
        }
    }
    let latency = latency.expect("the command arrives");
    assert!(
        latency <= Duration::from_millis(20),
        "command waited {latency:?} behind bulk data"
    );
    let queued = sim.nodes[0]
        .endpoint
        .stats()
        .couriers
        .iter()
        .find(|c| c.id == 1)
        .unwrap()
        .queue_depth;
    assert!(
        queued > 1000,
        "bulk data was still queued ({queued}) when the command overtook it"
    );
}

#[test]
fn a_message_no_packet_can_carry_fails_and_the_stream_goes_on() {
    // 1024-byte messages allowed, on the default 512-byte datagrams.
    let mut cfg = StreamConfig::new(Delivery::ReliableOrdered);
    cfg.max_message = 1024;
    let (mut sim, h0, h1) = setup(5, LinkConfig::default(), || MessageCourier::new(cfg, 100));
    let now = sim.now();
    let tx = sim.nodes[0].endpoint.courier_mut::<MessageCourier>(h0).unwrap();
    let big = tx.send(now, vec![1; 600], None).unwrap();
    tx.send(now, vec![2; 16], None).unwrap();
    sim.run_for(Duration::from_secs(1));
    let rx = sim.nodes[1].endpoint.courier_mut::<MessageCourier>(h1).unwrap();
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| rx.recv()).map(|r| r.body).collect();
    assert_eq!(got, vec![vec![2; 16]], "the message behind it arrived");
    let tx = sim.nodes[0].endpoint.courier_mut::<MessageCourier>(h0).unwrap();
    let events: Vec<StreamEvent> = std::iter::from_fn(|| tx.poll_event()).collect();
    assert!(events.contains(&StreamEvent::Failed(big)), "{events:?}");
    assert_eq!(tx.send_stats().oversized, 1);
}
