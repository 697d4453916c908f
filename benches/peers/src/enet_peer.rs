//! rusty_enet 0.4 (a Rust port of ENet): one channel, reliable packets,
//! default HostSettings, `service()` every turn of a tight loop, one thread
//! per side. No crypto.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rusty_enet::{Event, Host, HostSettings, Packet};

use crate::relay::Relay;
use crate::stats::{
    checksum, mib_per_s, payload, reliable_results, spin_round_trips, Fnv, Percentiles, Results,
};
use crate::work::Work;

fn host(socket: UdpSocket) -> Host<UdpSocket> {
    Host::new(
        socket,
        HostSettings {
            peer_limit: 4,
            channel_limit: 1,
            ..HostSettings::default()
        },
    )
    .expect("enet host")
}

fn sockets(lossy: Option<(Duration, f64)>) -> (UdpSocket, UdpSocket, SocketAddr, Option<Relay>) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let relay = lossy.map(|(d, l)| Relay::start(s.local_addr().unwrap(), d, l, 7));
    let target = relay.as_ref().map_or(s.local_addr().unwrap(), |r| r.addr);
    (c, s, target, relay)
}

/// Services `h` once; calls `f` with each received payload and the peer.
fn turn(h: &mut Host<UdpSocket>, mut f: impl FnMut(&mut rusty_enet::Peer<UdpSocket>, &[u8])) -> bool {
    let mut connected = false;
    while let Ok(Some(e)) = h.service() {
        match e {
            Event::Connect { .. } => connected = true,
            Event::Receive { peer, packet, .. } => f(peer, packet.data()),
            Event::Disconnect { .. } => {}
        }
    }
    connected
}

fn client(c: UdpSocket, target: SocketAddr, t0: Instant) -> Option<Host<UdpSocket>> {
    let mut h = host(c);
    h.connect(target, 1, 0).ok()?;
    while !turn(&mut h, |_, _| {}) {
        if t0.elapsed() > Duration::from_secs(10) {
            return None;
        }
    }
    Some(h)
}

fn rtt(size: usize, w: &Work) -> (Option<Percentiles>, Option<Duration>) {
    let (c, s, target, _r) = sockets(None);
    let total = w.warmup + w.round_trips;
    let t0 = Instant::now();
    let (first_tx, first_rx) = crossbeam_channel::bounded(1);
    let echo = std::thread::spawn(move || {
        let mut h = host(s);
        let mut echoed = 0;
        let end = Instant::now() + Duration::from_secs(120);
        while echoed < total && Instant::now() < end {
            turn(&mut h, |peer, data| {
                if echoed == 0 {
                    let _ = first_tx.send(Instant::now());
                }
                let _ = peer.send(0, &Packet::reliable(data));
                echoed += 1;
            });
            h.flush();
        }
        let linger = Instant::now() + Duration::from_millis(100);
        while Instant::now() < linger {
            turn(&mut h, |_, _| {});
        }
    });
    let Some(mut h) = client(c, target, t0) else {
        return (None, None);
    };
    let msg = vec![7u8; size];
    let send = |h: &mut Host<UdpSocket>| {
        if let Some(p) = h.connected_peers_mut().next() {
            let _ = p.send(0, &Packet::reliable(msg.as_slice()));
        }
        h.flush();
    };
    let poll = |h: &mut Host<UdpSocket>| {
        let mut got = false;
        turn(h, |_, _| got = true);
        got
    };
    let Some(samples) = spin_round_trips(w, &mut h, send, poll) else {
        return (None, None);
    };
    let _ = echo.join();
    (
        Percentiles::of(samples),
        first_rx.try_recv().ok().map(|at| at - t0),
    )
}

fn bulk(bytes: usize, lossy: Option<(Duration, f64)>, budget: Duration) -> Option<(f64, bool)> {
    let (c, s, target, _relay) = sockets(lossy);
    let data = payload(bytes);
    let expected = checksum(&data);
    let sink = std::thread::spawn(move || {
        let mut h = host(s);
        let mut got = 0;
        let mut sum = Fnv::default();
        let end = Instant::now() + budget;
        while got < bytes && Instant::now() < end {
            turn(&mut h, |_, d| {
                sum.update(d);
                got += d.len();
            });
        }
        let done = Instant::now();
        let linger = Instant::now() + Duration::from_millis(200);
        while Instant::now() < linger {
            turn(&mut h, |_, _| {});
        }
        (got == bytes).then_some((done, sum.0))
    });
    let t = Instant::now();
    let mut h = client(c, target, t)?;
    if let Some(p) = h.connected_peers_mut().next() {
        for chunk in data.chunks(16 * 1024) {
            let _ = p.send(0, &Packet::reliable(chunk));
        }
    }
    while !sink.is_finished() {
        turn(&mut h, |_, _| {});
    }
    let (done, sum) = sink.join().ok()??;
    Some((mib_per_s(bytes, done - t), sum == expected))
}

pub fn run(w: &Work) -> Results {
    reliable_results(
        "rusty_enet",
        "rusty_enet 0.4, default HostSettings, one channel, reliable packets; service() every turn of a tight loop, flush after sends, one thread per side; no crypto",
        w,
        rtt,
        bulk,
    )
}
