//! TelemetryCourier: latest value, deadlines and lifespans.

use std::time::Duration;

use octolink::sim::{LinkConfig, Sim};
use octolink::{CourierHandle, CourierId, EndpointConfig};
use octolink_couriers::{TelemetryConfig, TelemetryCourier, TelemetryEvent};

fn setup(link: LinkConfig, cfg: TelemetryConfig) -> (Sim, CourierHandle, CourierHandle) {
    let mut sim = Sim::with_fixture_nodes(1, &["a", "b"], link, EndpointConfig::default());
    let (tx, rx) = sim
        .register_each_way(
            CourierId(9),
            Box::new(TelemetryCourier::new(cfg)),
            Box::new(TelemetryCourier::new(cfg)),
        )
        .unwrap();
    sim.connect(0, 1, Duration::from_secs(10)).unwrap();
    (sim, tx, rx)
}

fn publish_for(sim: &mut Sim, tx: CourierHandle, period: Duration, count: u32) {
    for i in 0..count {
        let now = sim.now();
        let c = sim.nodes[0].endpoint.courier_mut::<TelemetryCourier>(tx).unwrap();
        c.publish(now, i.to_be_bytes().to_vec()).unwrap();
        sim.run_for(period);
    }
}

#[test]
fn samples_arrive_in_order_and_a_silent_publisher_misses_deadlines() {
    let link = LinkConfig {
        reorder: 0.3,
        reorder_delay: Duration::from_millis(30),
        ..LinkConfig::lossy(Duration::from_millis(5), 0.1)
    };
    let (mut sim, tx, rx) = setup(link, TelemetryConfig::default());
    let mut seen = Vec::new();
    for i in 0..100u32 {
        let now = sim.now();
        sim.nodes[0]
            .endpoint
            .courier_mut::<TelemetryCourier>(tx)
            .unwrap()
            .publish(now, i.to_be_bytes().to_vec())
            .unwrap();
        sim.run_for(Duration::from_millis(20));
        let now = sim.now();
        let c = sim.nodes[1].endpoint.courier_mut::<TelemetryCourier>(rx).unwrap();
        if let Some(s) = c.latest(now) {
            seen.push(u32::from_be_bytes(s.body.clone().try_into().unwrap()));
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "never older than what was delivered: {seen:?}"
    );
    let c = sim.nodes[1].endpoint.courier_mut::<TelemetryCourier>(rx).unwrap();
    let misses_while_publishing = c.deadline_misses;
    // The publisher stops: one miss per 200 ms deadline period.
    sim.run_for(Duration::from_secs(1));
    let c = sim.nodes[1].endpoint.courier_mut::<TelemetryCourier>(rx).unwrap();
    let misses = c.deadline_misses - misses_while_publishing;
    assert!((4..=5).contains(&misses), "{misses} misses in 1 s of silence");
    let events: Vec<TelemetryEvent> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(e, TelemetryEvent::DeadlineMissed { since_last } if *since_last >= Duration::from_millis(200))));
}

#[test]
fn stale_samples_are_never_delivered() {
    // 300 ms each way, 100 ms lifespan: every sample is stale on arrival.
    let cfg = TelemetryConfig {
        lifespan: Some(Duration::from_millis(100)),
        ..TelemetryConfig::default()
    };
    let (mut sim, tx, rx) = setup(LinkConfig::lossy(Duration::from_millis(300), 0.0), cfg);
    sim.run_for(Duration::from_secs(3)); // RTT estimate settles
    publish_for(&mut sim, tx, Duration::from_millis(50), 40);
    let now = sim.now();
    let c = sim.nodes[1].endpoint.courier_mut::<TelemetryCourier>(rx).unwrap();
    assert!(c.latest(now).is_none());
    assert!(!std::iter::from_fn(|| c.poll_event()).any(|e| e == TelemetryEvent::Sample));
}

#[test]
fn the_latest_sample_expires_with_its_lifespan() {
    let cfg = TelemetryConfig {
        lifespan: Some(Duration::from_millis(100)),
        ..TelemetryConfig::default()
    };
    let (mut sim, tx, rx) = setup(LinkConfig::default(), cfg);
    publish_for(&mut sim, tx, Duration::from_millis(20), 1);
    let now = sim.now();
    assert!(sim.nodes[1]
        .endpoint
        .courier::<TelemetryCourier>(rx)
        .unwrap()
        .latest(now)
        .is_some());
    sim.run_for(Duration::from_millis(150));
    let now = sim.now();
    assert!(sim.nodes[1]
        .endpoint
        .courier::<TelemetryCourier>(rx)
        .unwrap()
        .latest(now)
        .is_none());
}
