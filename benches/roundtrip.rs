//! The sans-IO round trip without sockets: a 64-byte reliable message from
//! one engine to another and back, through MessageCouriers, as the peer
//! bench's sans-IO loop drives them (poll_timeout / handle_timeout /
//! poll_transmit / handle_datagram / courier_mut). What the engine adds to
//! a round trip, syscalls aside.
//!
//! `cargo bench --features sim --bench roundtrip`

use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use octolink::sim::{fixture_associate, fixture_identity};
use octolink::stream::{Delivery, StreamConfig};
use octolink::{CourierHandle, CourierId, CourierScope, Endpoint, EndpointConfig, Role, TrustStore};
use octolink_couriers::MessageCourier;

struct Node {
    ep: Endpoint,
    courier: CourierHandle,
}

fn node(name: &str, other: &str, other_addr: SocketAddr, t0: Instant) -> Node {
    let mut trust = TrustStore::new();
    trust
        .insert(fixture_associate(other, Role::Agent).with_address(other_addr))
        .unwrap();
    let cfg = EndpointConfig {
        max_datagram: octolink::wire::ETHERNET_DATAGRAM,
        // Back-to-back round trips would otherwise meet the default send
        // cap, as the peer bench's would.
        max_send_rate: 1 << 40,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(cfg, fixture_identity(name), trust, [7; 32], t0, 0).unwrap();
    let peer = fixture_identity(other).id();
    let courier = ep
        .register_courier(
            CourierScope::Peer(peer),
            CourierId(1),
            Box::new(MessageCourier::new(
                StreamConfig::new(Delivery::ReliableOrdered),
                100,
            )),
        )
        .unwrap();
    Node { ep, courier }
}

/// One turn of a node's loop at `now`; returns what it sent.
fn turn(n: &mut Node, now: Instant, buf: &mut [u8], out: &mut Vec<Vec<u8>>) {
    if n.ep.poll_timeout().is_some_and(|t| t <= now) {
        n.ep.handle_timeout(now);
    }
    while let Some(t) = n.ep.poll_transmit(now, buf) {
        out.push(buf[..t.len].to_vec());
    }
}

fn deliver(to: &mut Node, from: SocketAddr, now: Instant, datagrams: &mut Vec<Vec<u8>>) {
    for d in datagrams.drain(..) {
        to.ep.handle_datagram(now, from, &d);
    }
}

fn roundtrip(c: &mut Criterion) {
    let t0 = Instant::now();
    let (a_addr, b_addr): (SocketAddr, SocketAddr) =
        ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
    let mut a = node("a", "b", b_addr, t0);
    let mut b = node("b", "a", a_addr, t0);
    a.ep.connect(t0, &b.ep.node_id()).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut wire = Vec::new();
    // Real time throughout: the measured turns use `Instant::now()`, and
    // the engine must never see time go backwards.
    for _ in 0..200 {
        let now = Instant::now();
        turn(&mut a, now, &mut buf, &mut wire);
        deliver(&mut b, a_addr, now, &mut wire);
        turn(&mut b, now, &mut buf, &mut wire);
        deliver(&mut a, b_addr, now, &mut wire);
    }
    assert!(a.ep.is_connected(&b.ep.node_id()), "handshake");
    let msg = vec![7u8; 64];
    let mut g = c.benchmark_group("roundtrip");
    g.bench_function("64 B reliable message there and back (engine only)", |bch| {
        bch.iter(|| {
            let now = Instant::now();
            let (ca, cb) = (a.courier, b.courier);
            a.ep.courier_mut::<MessageCourier>(ca)
                .unwrap()
                .send(now, msg.clone(), None)
                .unwrap();
            turn(&mut a, now, &mut buf, &mut wire);
            deliver(&mut b, a_addr, now, &mut wire);
            let got =
                b.ep.courier_mut::<MessageCourier>(cb)
                    .unwrap()
                    .recv()
                    .expect("arrived");
            b.ep.courier_mut::<MessageCourier>(cb)
                .unwrap()
                .send(now, got.body, None)
                .unwrap();
            turn(&mut b, now, &mut buf, &mut wire);
            deliver(&mut a, b_addr, now, &mut wire);
            a.ep.courier_mut::<MessageCourier>(ca)
                .unwrap()
                .recv()
                .expect("echoed")
        })
    });
    g.finish();
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
