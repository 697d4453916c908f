//! quinn 0.11 (QUIC over rustls/ring, TLS 1.3) on a two-worker tokio
//! runtime: a bidirectional stream for ping-pong, a unidirectional stream
//! for bulk, and datagrams for an unreliable ping-pong.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{ClientConfig, Endpoint, ServerConfig};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::relay::Relay;
use crate::stats::{checksum, median_bulk, mib_per_s, payload, Fnv, Percentiles, Results};
use crate::work::Work;

fn configs() -> (ServerConfig, ClientConfig) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let der = CertificateDer::from(cert.cert);
    let key = PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let server = ServerConfig::with_single_cert(vec![der.clone()], key.into()).expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).expect("root");
    let client = ClientConfig::with_root_certificates(Arc::new(roots)).expect("client config");
    (server, client)
}

struct Pair {
    server: Endpoint,
    client: Endpoint,
    target: SocketAddr,
    _relay: Option<Relay>,
}

fn pair(lossy: Option<(Duration, f64)>) -> Pair {
    let (sc, cc) = configs();
    let server = Endpoint::server(sc, "127.0.0.1:0".parse().unwrap()).expect("server");
    let saddr = server.local_addr().unwrap();
    let relay = lossy.map(|(d, l)| Relay::start(saddr, d, l, 7));
    let target = relay.as_ref().map_or(saddr, |r| r.addr);
    let mut client = Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("client");
    client.set_default_client_config(cc);
    Pair {
        server,
        client,
        target,
        _relay: relay,
    }
}

async fn rtt_stream(size: usize, w: Work) -> Option<(Percentiles, Duration)> {
    let p = pair(None);
    let total = w.warmup + w.round_trips;
    let server = p.server.clone();
    let t0 = Instant::now();
    let echo = tokio::spawn(async move {
        let conn = server.accept().await?.await.ok()?;
        let (mut send, mut recv) = conn.accept_bi().await.ok()?;
        let mut buf = vec![0u8; size];
        let mut first = None;
        for _ in 0..total {
            recv.read_exact(&mut buf).await.ok()?;
            first.get_or_insert_with(Instant::now);
            send.write_all(&buf).await.ok()?;
        }
        let _ = conn.closed().await;
        first
    });
    let conn = p.client.connect(p.target, "localhost").ok()?.await.ok()?;
    let (mut send, mut recv) = conn.open_bi().await.ok()?;
    let msg = vec![7u8; size];
    let mut buf = vec![0u8; size];
    let mut samples = Vec::with_capacity(w.round_trips);
    for i in 0..total {
        let t = Instant::now();
        send.write_all(&msg).await.ok()?;
        recv.read_exact(&mut buf).await.ok()?;
        if i >= w.warmup {
            samples.push(t.elapsed());
        }
    }
    conn.close(0u32.into(), b"done");
    let first = echo.await.ok()??;
    Some((Percentiles::of(samples)?, first - t0))
}

async fn rtt_datagram(w: Work) -> Option<Percentiles> {
    let p = pair(None);
    let total = w.warmup + w.round_trips;
    let server = p.server.clone();
    tokio::spawn(async move {
        let conn = server.accept().await?.await.ok()?;
        while let Ok(d) = conn.read_datagram().await {
            let _ = conn.send_datagram(d);
        }
        Some(())
    });
    let conn = p.client.connect(p.target, "localhost").ok()?.await.ok()?;
    let msg = bytes::Bytes::from(vec![7u8; 64]);
    let mut samples = Vec::with_capacity(w.round_trips);
    for i in 0..total {
        let t = Instant::now();
        conn.send_datagram(msg.clone()).ok()?;
        // Unreliable: a lost datagram is a missing sample, not a stall.
        match tokio::time::timeout(Duration::from_millis(200), conn.read_datagram()).await {
            Ok(Ok(_)) if i >= w.warmup => samples.push(t.elapsed()),
            _ => {}
        }
    }
    conn.close(0u32.into(), b"done");
    Percentiles::of(samples)
}

async fn bulk(bytes: usize, lossy: Option<(Duration, f64)>, budget: Duration) -> Option<(f64, bool)> {
    let p = pair(lossy);
    let server = p.server.clone();
    let data = payload(bytes);
    let expected = checksum(&data);
    let sink = tokio::spawn(async move {
        let conn = server.accept().await?.await.ok()?;
        let mut recv = conn.accept_uni().await.ok()?;
        let mut sum = Fnv::default();
        let mut got = 0;
        while let Ok(Some(chunk)) = recv.read_chunk(1 << 20, true).await {
            sum.update(&chunk.bytes);
            got += chunk.bytes.len();
        }
        let done = Instant::now();
        // Keep the connection until the client has seen everything acked.
        tokio::spawn(async move { conn.closed().await });
        (got == bytes).then_some((done, sum.0))
    });
    let conn = p.client.connect(p.target, "localhost").ok()?.await.ok()?;
    let t = Instant::now();
    let mut send = conn.open_uni().await.ok()?;
    let sending = async {
        send.write_all(&data).await.ok()?;
        send.finish().ok()?;
        let _ = send.stopped().await;
        Some(())
    };
    tokio::time::timeout(budget, sending).await.ok()??;
    let (done, sum) = tokio::time::timeout(budget, sink).await.ok()?.ok()??;
    conn.close(0u32.into(), b"done");
    Some((mib_per_s(bytes, done - t), sum == expected))
}

pub fn run(w: &Work) -> Vec<Results> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let w = *w;
    let s64 = rt.block_on(rtt_stream(64, w));
    let s512 = rt.block_on(rtt_stream(512, w));
    let b = median_bulk(&w, || rt.block_on(bulk(w.bulk_bytes, None, w.clean_budget)));
    let l1 = rt.block_on(bulk(w.lossy_bytes, Some((w.relay_delay, 0.01)), w.budget));
    let l5 = rt.block_on(bulk(w.lossy_bytes, Some((w.relay_delay, 0.05)), w.budget));
    let dgram = rt.block_on(rtt_datagram(w));
    vec![
        Results {
            library: "quinn".into(),
            mode: "quinn 0.11 + rustls (ring), default transport config, tokio multi-thread runtime (2 workers); bi-stream ping-pong, uni-stream bulk".into(),
            rtt64: s64.map(|s| s.0),
            rtt512: s512.map(|s| s.0),
            bulk_mib_s: b.mib_s(),
            bulk_checksum_ok: b.checksum_ok(),
            lossy1_mib_s: l1.map(|x| x.0),
            lossy5_mib_s: l5.map(|x| x.0),
            handshake: s64.map(|s| s.1),
            notes: b.note().into_iter().collect(),
        },
        Results {
            library: "quinn datagrams (unreliable)".into(),
            mode: "QUIC DATAGRAM frames echoed; unreliable, so not comparable to reliable modes".into(),
            rtt64: dgram,
            ..Results::default()
        },
    ]
}
