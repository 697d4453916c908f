//! The runtime over real UDP sockets on loopback.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::identity;
use octolink::driver::{ChannelConfig, ChannelError, CommsChannel};
use octolink::sim::fixture_associate;
use octolink::{DisconnectReason, Event, NodeId, Role};

const WAIT: Duration = Duration::from_secs(10);

fn start(name: &str, bind: &str) -> CommsChannel {
    let config = ChannelConfig::new(bind.parse().unwrap(), identity(name));
    CommsChannel::start(config).expect("channel starts")
}

/// Two channels that trust each other, each knowing the other's address.
fn paired(bind: &str) -> (CommsChannel, CommsChannel) {
    let (a, b) = (start("a", bind), start("b", bind));
    introduce(&a, "b", b.local_addr());
    introduce(&b, "a", a.local_addr());
    (a, b)
}

fn introduce(ch: &CommsChannel, name: &str, addr: SocketAddr) {
    ch.add_associate(fixture_associate(name, Role::Agent).with_address(addr))
        .unwrap();
}

fn connected(ch: &CommsChannel, peer: NodeId) -> bool {
    ch.wait_for(
        WAIT,
        |e| matches!(e, Event::Connected { peer: p, .. } if *p == peer),
    )
    .is_some()
}

#[test]
fn handshake_and_ping_over_ipv4_loopback() {
    let (a, b) = paired("127.0.0.1:0");
    a.connect(b.node_id()).unwrap();
    assert!(connected(&a, b.node_id()));
    assert!(connected(&b, a.node_id()));
    let token = a.ping(b.node_id()).unwrap();
    let pong = a.wait_for(WAIT, |e| matches!(e, Event::Pong { token: t, .. } if *t == token));
    let Some(Event::Pong { rtt, .. }) = pong else {
        panic!("no pong")
    };
    assert!(rtt < Duration::from_millis(100), "loopback RTT {rtt:?}");
}

#[test]
fn handshake_over_ipv6_loopback() {
    let (a, b) = paired("[::1]:0");
    assert!(a.local_addr().is_ipv6());
    a.connect(b.node_id()).unwrap();
    assert!(connected(&a, b.node_id()));
}

#[test]
fn clear_errors_for_address_in_use_and_unknown_peer() {
    let a = start("a", "127.0.0.1:0");
    let config = ChannelConfig::new(a.local_addr(), identity("b"));
    match CommsChannel::start(config) {
        Err(ChannelError::AddressInUse(addr)) => assert_eq!(addr, a.local_addr()),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("bound twice"),
    }
    let stranger = identity("c").id();
    let err = a.connect(stranger).unwrap_err();
    assert!(err.to_string().contains("not in the trust store"), "{err}");
}

#[test]
fn graceful_close_and_reconnect() {
    let (a, b) = paired("127.0.0.1:0");
    a.connect(b.node_id()).unwrap();
    assert!(connected(&b, a.node_id()));
    a.close(b.node_id()).unwrap();
    let closed = b.wait_for(WAIT, |e| {
        matches!(
            e,
            Event::Disconnected {
                reason: DisconnectReason::ClosedByPeer { .. },
                ..
            }
        )
    });
    assert!(closed.is_some(), "the peer hears the close");
    // connect() ends celibacy at once.
    a.connect(b.node_id()).unwrap();
    assert!(connected(&b, a.node_id()), "re-connects after a close");
}

#[test]
fn shutdown_closes_sessions_and_saves_the_associates() {
    let dir = std::env::temp_dir().join(format!("octolink-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("associates.json");
    let _ = std::fs::remove_file(&path);
    let b = start("b", "127.0.0.1:0");
    let mut config = ChannelConfig::new("127.0.0.1:0".parse().unwrap(), identity("a"));
    config.trust_path = Some(path.clone());
    let a = CommsChannel::start(config).unwrap();
    introduce(&a, "b", b.local_addr());
    introduce(&b, "a", a.local_addr());
    a.connect(b.node_id()).unwrap();
    assert!(connected(&b, a.node_id()));
    a.shutdown().unwrap();
    assert!(b
        .wait_for(WAIT, |e| matches!(e, Event::Disconnected { .. }))
        .is_some());
    let saved = octolink::TrustStore::load(&path).unwrap();
    let peer = saved.get(&b.node_id()).expect("associate saved");
    assert!(peer.last_success_ms.is_some());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn courier_data_events_stop_when_the_courier_asks_for_none() {
    use octolink::stream::{Delivery, StreamConfig};
    use octolink::{CourierId, CourierScope};
    use octolink_couriers::MessageCourier;
    let (a, b) = paired("127.0.0.1:0");
    let courier = || {
        Box::new(MessageCourier::new(
            StreamConfig::new(Delivery::ReliableOrdered),
            100,
        ))
    };
    let tx = a
        .register_courier(CourierScope::Peer(b.node_id()), CourierId(1), courier())
        .unwrap();
    let rx = b
        .register_courier(CourierScope::Peer(a.node_id()), CourierId(1), courier())
        .unwrap();
    a.connect(b.node_id()).unwrap();
    assert!(connected(&a, b.node_id()));
    let send = |body: &'static [u8]| {
        a.with_courier::<MessageCourier, _>(tx, move |c, now| c.send(now, body.to_vec(), None))
            .unwrap()
            .unwrap();
    };
    send(b"first");
    let data = |e: &Event| matches!(e, Event::CourierData { .. });
    assert!(b.wait_for(WAIT, data).is_some(), "reported by default");

    b.set_courier_notify(rx, false).unwrap();
    while b.events().try_recv().is_ok() {}
    send(b"second");
    let deadline = std::time::Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < 2 && std::time::Instant::now() < deadline {
        if let Some(m) = b.with_courier::<MessageCourier, _>(rx, |c, _| c.recv()).unwrap() {
            got.push(m.body);
        }
    }
    assert_eq!(got, vec![b"first".to_vec(), b"second".to_vec()]);
    // Events of the turn that received "second" were handed over before
    // the command that read it ran.
    assert!(
        !b.events().try_iter().any(|e| data(&e)),
        "no event once turned off"
    );
}
