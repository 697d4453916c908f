//! TCP with TCP_NODELAY: blocking std sockets, one thread per side.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use crate::stats::{checksum, median_bulk, mib_per_s, payload, Percentiles, Results};
use crate::work::Work;

fn pair() -> Option<(TcpStream, TcpStream, std::time::Duration)> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = listener.local_addr().ok()?;
    let t = Instant::now();
    let accept = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().ok()?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).ok()?;
        Some((s, t.elapsed()))
    });
    let mut c = TcpStream::connect(addr).ok()?;
    c.write_all(&[1]).ok()?;
    let (s, handshake) = accept.join().ok()??;
    c.set_nodelay(true).ok()?;
    s.set_nodelay(true).ok()?;
    Some((c, s, handshake))
}

fn rtt(size: usize, w: &Work) -> Option<Percentiles> {
    let (mut c, mut s, _) = pair()?;
    let total = w.warmup + w.round_trips;
    let echo = std::thread::spawn(move || {
        let mut buf = vec![0u8; size];
        for _ in 0..total {
            if s.read_exact(&mut buf).is_err() || s.write_all(&buf).is_err() {
                return;
            }
        }
    });
    let msg = vec![7u8; size];
    let mut buf = vec![0u8; size];
    let mut samples = Vec::with_capacity(w.round_trips);
    for i in 0..total {
        let t = Instant::now();
        c.write_all(&msg).ok()?;
        c.read_exact(&mut buf).ok()?;
        if i >= w.warmup {
            samples.push(t.elapsed());
        }
    }
    echo.join().ok()?;
    Percentiles::of(samples)
}

fn bulk(w: &Work) -> Option<(f64, bool)> {
    let (mut c, mut s, _) = pair()?;
    let total = w.bulk_bytes;
    let data = payload(total);
    let expected = checksum(&data);
    let t = Instant::now();
    let sink = std::thread::spawn(move || {
        let mut got = vec![0u8; total];
        s.read_exact(&mut got).ok()?;
        Some((checksum(&got), t.elapsed()))
    });
    c.write_all(&data).ok()?;
    let (sum, took) = sink.join().ok()??;
    Some((mib_per_s(total, took), sum == expected))
}

pub fn run(w: &Work) -> Results {
    let bulk = median_bulk(w, || bulk(w));
    Results {
        library: "TCP".into(),
        mode: "TCP_NODELAY, blocking std::net::TcpStream, one thread per side; no crypto".into(),
        rtt64: rtt(64, w),
        rtt512: rtt(512, w),
        bulk_mib_s: bulk.mib_s(),
        bulk_checksum_ok: bulk.checksum_ok(),
        handshake: pair().map(|p| p.2),
        notes: std::iter::once("lossy bulk: not run (TCP cannot go through the UDP relay)".into())
            .chain(bulk.note())
            .collect(),
        ..Results::default()
    }
}
