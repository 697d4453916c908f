//! Driving the sans-IO engine from your own loop over `std::net::UdpSocket`
//! (no octolink thread): two endpoints in one single-threaded loop, a
//! handshake, and pings. The same shape fits an embedded main loop.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use octolink::sim::fixture_identity;
use octolink::{Endpoint, EndpointConfig, Event, NodeAssociate, Role, TrustStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sockets = [UdpSocket::bind("127.0.0.1:0")?, UdpSocket::bind("127.0.0.1:0")?];
    let names = ["a", "b"];
    let now = Instant::now();
    let mut endpoints = Vec::new();
    for i in 0..2 {
        let (me, other) = (names[i], names[1 - i]);
        let mut trust = TrustStore::new();
        let peer = NodeAssociate::new(fixture_identity(other).public().clone(), other, Role::Agent);
        trust.insert(peer.with_address(sockets[1 - i].local_addr()?))?;
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed); // never a fixed seed in production
        let unix_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros() as u64;
        endpoints.push(Endpoint::new(
            EndpointConfig::default(),
            fixture_identity(me),
            trust,
            seed,
            now,
            unix_us,
        )?);
        sockets[i].set_read_timeout(Some(Duration::from_millis(1)))?;
    }
    let b_id = endpoints[1].node_id();
    endpoints[0].connect(now, &b_id)?;

    let mut buf = [0u8; 1500];
    let mut pongs = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while pongs < 5 && Instant::now() < deadline {
        for i in 0..2 {
            let ep = &mut endpoints[i];
            // 1. Datagrams in (a real loop would wait on the socket or on
            //    poll_timeout(), whichever comes first).
            while let Ok((n, from)) = sockets[i].recv_from(&mut buf) {
                ep.handle_datagram(Instant::now(), from, &buf[..n]);
            }
            // 2. Timers.
            let now = Instant::now();
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
            // 3. Datagrams out.
            while let Some(t) = ep.poll_transmit(now, &mut buf) {
                sockets[i].send_to(&buf[..t.len], t.destination)?;
            }
            // 4. Events.
            while let Some(event) = ep.poll_event() {
                match event {
                    Event::Connected { peer, .. } => {
                        println!("node {i}: session with {}", peer.short());
                        if i == 0 {
                            ep.ping(&b_id)?;
                        }
                    }
                    Event::Pong { rtt, .. } => {
                        pongs += 1;
                        println!("pong in {rtt:?}");
                        ep.ping(&b_id)?;
                    }
                    _ => {}
                }
            }
        }
    }
    if pongs < 5 {
        return Err("no session".into());
    }
    Ok(())
}
