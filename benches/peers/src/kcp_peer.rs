//! kcp in turbo settings (nodelay, 10 ms interval, fast resend 2, no
//! congestion window, 1024-packet windows, 10 ms minimum RTO), driven by a
//! tight loop over a non-blocking UDP socket, one thread per side. No crypto.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kcp::Kcp;

use crate::relay::Relay;
use crate::stats::{
    checksum, mib_per_s, payload, reliable_results, spin_round_trips, Fnv, Percentiles, Results,
};
use crate::work::Work;

struct Out {
    sock: Arc<UdpSocket>,
    to: SocketAddr,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.sock.send_to(buf, self.to);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Side {
    kcp: Kcp<Out>,
    sock: Arc<UdpSocket>,
    epoch: Instant,
    buf: Vec<u8>,
}

impl Side {
    fn new(sock: UdpSocket, to: SocketAddr) -> Self {
        sock.set_nonblocking(true).expect("nonblocking");
        let sock = Arc::new(sock);
        let mut kcp = Kcp::new(
            7,
            Out {
                sock: Arc::clone(&sock),
                to,
            },
        );
        kcp.set_nodelay(true, 10, 2, true);
        kcp.set_wndsize(1024, 1024);
        let _ = kcp.set_mtu(1400);
        kcp.set_rx_minrto(10);
        Self {
            kcp,
            sock,
            epoch: Instant::now(),
            buf: vec![0; 65536],
        }
    }

    /// Everything readable in, then kcp's clock (the bulk loops).
    fn turn(&mut self) {
        while self.receive_one() {}
        let _ = self.kcp.update(self.epoch.elapsed().as_millis() as u32);
    }

    /// At most one datagram in, then kcp's clock: the round-trip loops,
    /// where a second, empty receive would sit between arrival and reply
    /// (octolink's sans-IO loop receives the same way there).
    fn turn_once(&mut self) {
        self.receive_one();
        let _ = self.kcp.update(self.epoch.elapsed().as_millis() as u32);
    }

    fn receive_one(&mut self) -> bool {
        let Ok(n) = self.sock.recv(&mut self.buf) else {
            return false;
        };
        let _ = self.kcp.input(&self.buf[..n]);
        true
    }
}

/// Client and server sockets; the client talks to the server (or relay).
fn sockets(lossy: Option<(Duration, f64)>) -> (UdpSocket, UdpSocket, SocketAddr, Option<Relay>) {
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let relay = lossy.map(|(d, l)| Relay::start(server.local_addr().unwrap(), d, l, 7));
    let target = relay.as_ref().map_or(server.local_addr().unwrap(), |r| r.addr);
    // The server answers whoever spoke: through the relay, that is the relay.
    let back = relay.as_ref().map_or(client.local_addr().unwrap(), |r| r.addr);
    client.connect(target).expect("connect");
    (client, server, back, relay)
}

fn rtt(size: usize, w: &Work) -> (Option<Percentiles>, Option<Duration>) {
    let (c, s, back, _r) = sockets(None);
    let target = c.peer_addr().unwrap();
    let total = w.warmup + w.round_trips;
    let t0 = Instant::now();
    let (first_tx, first_rx) = crossbeam_channel::bounded(1);
    let echo = std::thread::spawn(move || {
        let mut server = Side::new(s, back);
        let mut buf = vec![0u8; 4096];
        let mut echoed = 0;
        let end = Instant::now() + Duration::from_secs(120);
        while echoed < total && Instant::now() < end {
            server.turn_once();
            while let Ok(n) = server.kcp.recv(&mut buf) {
                if echoed == 0 {
                    let _ = first_tx.send(Instant::now());
                }
                let _ = server.kcp.send(&buf[..n]);
                let _ = server.kcp.flush();
                echoed += 1;
            }
        }
        let linger = Instant::now() + Duration::from_millis(100);
        while Instant::now() < linger {
            server.turn();
        }
    });
    let mut client = Side::new(c, target);
    let msg = vec![7u8; size];
    let mut buf = vec![0u8; 4096];
    let send = |c: &mut Side| {
        let _ = c.kcp.send(&msg);
        let _ = c.kcp.flush();
    };
    let poll = |c: &mut Side| {
        c.turn_once();
        c.kcp.recv(&mut buf).is_ok()
    };
    let Some(samples) = spin_round_trips(w, &mut client, send, poll) else {
        return (None, None);
    };
    let _ = echo.join();
    (
        Percentiles::of(samples),
        first_rx.try_recv().ok().map(|at| at - t0),
    )
}

fn bulk(bytes: usize, lossy: Option<(Duration, f64)>, budget: Duration) -> Option<(f64, bool)> {
    let (c, s, back, _relay) = sockets(lossy);
    let target = c.peer_addr().ok()?;
    let data = payload(bytes);
    let expected = checksum(&data);
    let t = Instant::now();
    let sink = std::thread::spawn(move || {
        let mut server = Side::new(s, back);
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        let mut sum = Fnv::default();
        let end = Instant::now() + budget;
        while got < bytes && Instant::now() < end {
            server.turn();
            while let Ok(n) = server.kcp.recv(&mut buf) {
                sum.update(&buf[..n]);
                got += n;
            }
        }
        let done = Instant::now();
        // Keep acknowledging so the sender can finish.
        let linger = Instant::now() + Duration::from_millis(200);
        while Instant::now() < linger {
            server.turn();
        }
        (got == bytes).then_some((done, sum.0))
    });
    let mut client = Side::new(c, target);
    let mut off = 0;
    while !sink.is_finished() {
        while off < bytes && client.kcp.wait_snd() < 2048 {
            let end = (off + 16 * 1024).min(bytes);
            let _ = client.kcp.send(&data[off..end]);
            off = end;
        }
        client.turn();
    }
    let (done, sum) = sink.join().ok()??;
    Some((mib_per_s(bytes, done - t), sum == expected))
}

pub fn run(w: &Work) -> Results {
    let mut results = reliable_results(
        "kcp (turbo)",
        "kcp 0.6, nodelay(true, 10, 2, nc), wnd 1024/1024, mtu 1400, min RTO 10 ms; update() every turn of a tight loop over a non-blocking UDP socket (ping-pong: one datagram in per turn), flush after each send; one thread per side; no crypto",
        w,
        rtt,
        bulk,
    );
    results.notes =
        vec!["no handshake: \"handshake\" is create-and-send to the first byte at the server".into()];
    results
}
