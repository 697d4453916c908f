//! A node's acknowledgement delay, announced: a server that holds its acks
//! longer acknowledges a periodic publisher's packets in pairs, and the
//! publisher's probe timer waits for it instead of probing.

mod common;

use std::time::Duration;

use common::*;
use octolink::sim::{LinkConfig, Sim};
use octolink::{CourierId, EndpointConfig, TrustStore};

/// Node 0 (the server) holds acks up to `server_delay`; node 1 publishes
/// one reliable message every 50 ms for 2 s. Returns the datagrams each
/// sent meanwhile, and the messages delivered.
fn publish_for_two_seconds(server_delay: Duration) -> (u64, u64, usize) {
    let mut sim = Sim::new(11);
    sim.set_default_link(LinkConfig::default());
    let server = EndpointConfig {
        max_ack_delay: server_delay,
        ..EndpointConfig::default()
    };
    sim.add_node(identity("a"), TrustStore::new(), server);
    sim.add_node(identity("b"), TrustStore::new(), EndpointConfig::default());
    sim.pair(0, 1);
    let (on_server, on_client) = probes_both_ways(&mut sim, CourierId(1), || Probe::new(1, 64));
    establish(&mut sim, Duration::from_secs(5)).expect("connects");
    sim.run_for(Duration::from_millis(500));
    let sent = |sim: &Sim, n: usize| sim.nodes[n].endpoint.stats().sent.packets;
    let (server_before, client_before) = (sent(&sim, 0), sent(&sim, 1));
    for i in 0..40u8 {
        let now = sim.now();
        let probe = sim.nodes[1]
            .endpoint
            .courier_mut::<Probe>(on_client)
            .expect("probe");
        probe.push(now, vec![i; 32]);
        sim.run_for(Duration::from_millis(50));
    }
    let delivered = sim.nodes[0]
        .endpoint
        .courier::<Probe>(on_server)
        .expect("probe")
        .inbox
        .len();
    (
        sent(&sim, 0) - server_before,
        sent(&sim, 1) - client_before,
        delivered,
    )
}

#[test]
fn a_longer_announced_ack_delay_halves_acks_without_spurious_probes() {
    let (server, client, delivered) = publish_for_two_seconds(octolink::DEFAULT_MAX_ACK_DELAY);
    assert_eq!(delivered, 40);
    assert!(
        (38..=44).contains(&server),
        "default: an ack per message ({server})"
    );
    assert!(client <= 44, "{client} datagrams for 40 messages");

    let (server, client, delivered) = publish_for_two_seconds(Duration::from_millis(100));
    assert_eq!(delivered, 40);
    assert!(server <= 24, "one ack per two messages ({server})");
    // Had the client not heard the delay, its probe timer (about 5 ms past
    // the RTT) would fire before every held ack and send a probe.
    assert!(client <= 44, "{client} datagrams for 40 messages: no probes");
}
