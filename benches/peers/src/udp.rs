//! Raw UDP: the physical floor. No reliability, no crypto:
//! `std::net::UdpSocket`, one thread per side, spinning on non-blocking
//! receives (the tightest loop, as the tight-loop contestants use).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::stats::{median_bulk, mib_per_s, payload, Percentiles, Results};
use crate::work::Work;
use octolink::wire::{ETHERNET_DATAGRAM, MAX_DATAGRAM};

fn rtt(size: usize, w: &Work) -> Option<Percentiles> {
    let server = UdpSocket::bind("127.0.0.1:0").ok()?;
    let addr = server.local_addr().ok()?;
    let total = w.warmup + w.round_trips;
    server.set_nonblocking(true).ok()?;
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let end = Instant::now() + Duration::from_secs(60);
        let mut done = 0;
        while done < total && Instant::now() < end {
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                let _ = server.send_to(&buf[..n], from);
                done += 1;
            }
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0").ok()?;
    client.connect(addr).ok()?;
    client.set_nonblocking(true).ok()?;
    let msg = vec![7u8; size];
    let mut buf = [0u8; 2048];
    let mut samples = Vec::with_capacity(w.round_trips);
    for i in 0..total {
        let t = Instant::now();
        client.send(&msg).ok()?;
        while client.recv(&mut buf).is_err() {
            if t.elapsed() > Duration::from_secs(1) {
                return None;
            }
        }
        if i >= w.warmup {
            samples.push(t.elapsed());
        }
    }
    echo.join().ok()?;
    Percentiles::of(samples)
}

/// Blasts `datagram`-byte datagrams; goodput is what arrives (loopback can
/// drop).
fn bulk(w: &Work, datagram: usize) -> Option<f64> {
    let server = UdpSocket::bind("127.0.0.1:0").ok()?;
    server.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    let addr = server.local_addr().ok()?;
    let total = w.bulk_bytes;
    let sink = std::thread::spawn(move || {
        let mut buf = vec![0u8; datagram];
        let mut got = 0usize;
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        while got < total {
            match server.recv(&mut buf) {
                Ok(n) => {
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                    got += n;
                }
                Err(_) => break,
            }
        }
        (got, first.map(|f| last - f))
    });
    let client = UdpSocket::bind("127.0.0.1:0").ok()?;
    client.connect(addr).ok()?;
    let data = payload(total);
    for chunk in data.chunks(datagram) {
        let _ = client.send(chunk);
    }
    let (got, took) = sink.join().ok()?;
    Some(mib_per_s(got, took?.max(Duration::from_nanos(1))))
}

pub fn run(w: &Work) -> Results {
    let b = median_bulk(w, || bulk(w, ETHERNET_DATAGRAM).map(|m| (m, true)));
    Results {
        library: "raw UDP".into(),
        mode: "std::net::UdpSocket, non-blocking receive in a spin loop, one thread per side; no reliability, no crypto".into(),
        rtt64: rtt(64, w),
        rtt512: rtt(512, w),
        bulk_mib_s: b.mib_s(),
        notes: std::iter::once("bulk: fire-and-forget 1452-byte datagrams; what arrives counts".into())
            .chain(b.note())
            .collect(),
        ..Results::default()
    }
}

/// The bulk floor with jumbo datagrams, for the octolink jumbo row.
pub fn run_jumbo(w: &Work) -> Results {
    let b = median_bulk(w, || bulk(w, MAX_DATAGRAM).map(|m| (m, true)));
    Results {
        library: format!("raw UDP, {MAX_DATAGRAM}-byte datagrams"),
        mode: format!("as raw UDP, bulk only, {MAX_DATAGRAM}-byte datagrams"),
        bulk_mib_s: b.mib_s(),
        notes: std::iter::once(format!(
            "bulk: fire-and-forget {MAX_DATAGRAM}-byte datagrams; what arrives counts"
        ))
        .chain(b.note())
        .collect(),
        ..Results::default()
    }
}
