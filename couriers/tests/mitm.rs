//! A man in the middle between two real endpoints on loopback: it forwards
//! everything, and for every sealed packet also sends a replay, a bit-flipped
//! copy, a truncated copy, and a copy reflected to its sender. Every one must
//! be rejected and counted as hacked or broken, and not one may change the
//! data delivered.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use octolink::driver::{ChannelConfig, CommsChannel};
use octolink::sim::{fixture_associate, fixture_identity};
use octolink::stream::{Delivery, StreamConfig};
use octolink::{CourierId, CourierScope, Event, Role};
use octolink_couriers::PipeCourier;

/// Forwards between one client and `server`, adding four forgeries per
/// sealed packet. Returns its address, and the count of forgeries sent.
fn tamper_relay(server: SocketAddr, stop: Arc<AtomicBool>) -> (SocketAddr, Arc<AtomicU64>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let addr = sock.local_addr().unwrap();
    let forged = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&forged);
    std::thread::spawn(move || {
        let mut client: Option<SocketAddr> = None;
        let mut buf = [0u8; 2048];
        let mut n_seen = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let (to, back) = if from == server {
                let Some(c) = client else { continue };
                (c, server)
            } else {
                client = Some(from);
                (server, from)
            };
            let pkt = buf[..n].to_vec();
            let _ = sock.send_to(&pkt, to);
            // Only sealed packets (DATA, CLOSE) are tampered with.
            if n < 30 || !(pkt[3] == 4 || pkt[3] == 5) {
                continue;
            }
            n_seen += 1;
            let mut flipped = pkt.clone();
            let at = 14 + (n_seen as usize * 13) % (n - 14);
            flipped[at] ^= 1 << (n_seen % 8);
            let truncated = pkt[..n - 1 - (n_seen as usize % 16)].to_vec();
            for (bytes, dest) in [(pkt.clone(), to), (flipped, to), (truncated, to), (pkt, back)] {
                // The reflected copy goes to whoever sent it; it arrives from
                // the relay's address like everything else.
                let dest = if dest == back && dest == server {
                    server
                } else {
                    dest
                };
                if sock.send_to(&bytes, dest).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    (addr, forged)
}

#[test]
fn every_replayed_or_tampered_packet_is_rejected_and_delivered_data_is_unchanged() {
    let start = |name: &str| {
        let cfg = ChannelConfig::new("127.0.0.1:0".parse().unwrap(), fixture_identity(name));
        CommsChannel::start(cfg).unwrap()
    };
    let (client, server) = (start("a"), start("b"));
    let stop = Arc::new(AtomicBool::new(false));
    let (relay, forged) = tamper_relay(server.local_addr(), Arc::clone(&stop));
    client
        .add_associate(fixture_associate("b", Role::Agent).with_address(relay))
        .unwrap();
    server
        .add_associate(fixture_associate("a", Role::Remote))
        .unwrap();
    let cfg = StreamConfig::new(Delivery::ReliableOrdered);
    let (cc, ctx, _crx) = PipeCourier::new(cfg, 100, 1024, client.notifier());
    let (sc, _stx, srx) = PipeCourier::new(cfg, 100, 1024, server.notifier());
    client
        .register_courier(CourierScope::Peer(server.node_id()), CourierId(1), Box::new(cc))
        .unwrap();
    server
        .register_courier(CourierScope::Peer(client.node_id()), CourierId(1), Box::new(sc))
        .unwrap();
    client.connect(server.node_id()).unwrap();
    assert!(client
        .wait_for(Duration::from_secs(10), |e| matches!(e, Event::Connected { .. }))
        .is_some());

    let mut got = Vec::new();
    for i in 0..300u32 {
        let mut msg = i.to_be_bytes().to_vec();
        msg.extend_from_slice(&[i as u8; 60]);
        ctx.send(msg).unwrap();
        if let Ok(m) = srx.recv_timeout(Duration::from_secs(10)) {
            got.push(m);
        }
    }
    // Let the last forgeries land.
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(50));

    assert_eq!(got.len(), 300, "every message arrived");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(&m[..4], &(i as u32).to_be_bytes(), "in order, exactly once");
        assert!(m[4..].iter().all(|&b| b == i as u8), "unchanged");
    }
    let (sa, sb) = (client.stats().unwrap(), server.stats().unwrap());
    let rejected = sa.hacked() + sa.broken() + sb.hacked() + sb.broken();
    let forged = forged.load(Ordering::Relaxed);
    assert!(forged > 1000, "the relay forged {forged} packets");
    assert_eq!(
        rejected,
        forged,
        "every forgery rejected and counted (client {:?}, server {:?})",
        sa.drops.nonzero().collect::<Vec<_>>(),
        sb.drops.nonzero().collect::<Vec<_>>()
    );
}
