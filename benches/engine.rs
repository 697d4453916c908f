//! Micro-benchmarks of the engine's hot paths: packet encode/decode,
//! seal/open, a scheduler fill (a whole packet built and sealed), and the
//! handshake's steps.
//!
//! `cargo bench --bench engine`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use octolink::crypto::derive_session_keys;
use octolink::handshake::{self as hs, Transcript, SYN_LABEL};
use octolink::sim::fixture_identity;
use octolink::wire::{self, FrameIter, Header, PacketType, Syn, Writer};
use octolink::{
    Courier, CourierContext, CourierId, CourierScope, Endpoint, EndpointConfig, Mandate, NodeAssociate,
    PayloadWriter, Role, TrustStore,
};

fn codec(c: &mut Criterion) {
    let header = Header {
        packet_type: PacketType::Data,
        session_id: 0x1234_5678,
        packet_number: 1 << 40,
    };
    let mut body = [0u8; 480];
    let mut w = Writer::new(&mut body);
    wire::write_ack(&mut w, 250, [(90, 100), (50, 80), (10, 20)].into_iter(), 16).unwrap();
    for i in 0..4 {
        wire::write_courier(&mut w, i, 100, |b| {
            b[..100].fill(7);
            (100, true)
        })
        .unwrap();
    }
    let n = w.len();
    let hbytes = header.to_bytes();
    let mut g = c.benchmark_group("codec");
    g.bench_function("header encode+decode", |b| {
        b.iter(|| Header::decode(&black_box(header).to_bytes()).unwrap())
    });
    g.bench_function("header decode", |b| {
        b.iter(|| Header::decode(black_box(&hbytes)).unwrap())
    });
    g.throughput(Throughput::Bytes(n as u64));
    g.bench_function("frames validate+iterate (ack + 4 couriers)", |b| {
        b.iter(|| {
            FrameIter::validate(black_box(&body[..n])).unwrap();
            FrameIter::new(&body[..n]).count()
        })
    });
    g.finish();
}

fn aead(c: &mut Criterion) {
    let tx = derive_session_keys(&[7; 32], &[9; 32], true);
    let rx = derive_session_keys(&[7; 32], &[9; 32], false);
    let header = [1u8; 14];
    let mut g = c.benchmark_group("aead");
    for size in [64usize, 482, 1422] {
        let mut buf = vec![5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("seal+open {size} B"), |b| {
            let mut pn = 0u64;
            b.iter(|| {
                pn += 1;
                let tag = tx.send.seal(pn, &header, &mut buf);
                rx.recv.open(pn, &header, &mut buf, &tag).unwrap();
            })
        });
    }
    g.finish();
}

/// Four couriers, always due, 100 bytes each.
struct Busy(u8, Instant);
impl Courier for Busy {
    fn mandate(&self) -> Mandate {
        Mandate {
            priority: self.0,
            next_send: Some(self.1),
            send_slack: Duration::ZERO,
            max_payload: 100,
            min_payload: 100,
            send_active: true,
            receive_active: true,
        }
    }
    fn on_send_opportunity(&mut self, _: &CourierContext, out: &mut PayloadWriter<'_>) {
        let _ = out.write(&[self.0; 100]);
    }
    fn on_receive(&mut self, _: &CourierContext, _: &[u8]) {}
}

fn scheduler_fill(c: &mut Criterion) {
    let addrs = ["127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap()];
    let names = ["a", "b"];
    let t0 = Instant::now();
    let mut eps: Vec<Endpoint> = (0..2)
        .map(|i| {
            let mut trust = TrustStore::new();
            let other = fixture_identity(names[1 - i]).public().clone();
            trust
                .insert(NodeAssociate::new(other, "p", Role::Agent).with_address(addrs[1 - i]))
                .unwrap();
            let cfg = EndpointConfig {
                max_send_rate: u64::MAX / 4,
                // Acknowledge every packet at once, so the window stays open.
                max_ack_delay: std::time::Duration::ZERO,
                ..EndpointConfig::default()
            };
            Endpoint::new(cfg, fixture_identity(names[i]), trust, [i as u8; 32], t0, 0).unwrap()
        })
        .collect();
    let ids = [eps[0].node_id(), eps[1].node_id()];
    for p in 0..4u8 {
        eps[0]
            .register_courier(
                CourierScope::Peer(ids[1]),
                CourierId(u16::from(p)),
                Box::new(Busy(p * 50, t0)),
            )
            .unwrap();
    }
    // The receiver has a courier with nothing to say, as most do most of
    // the time.
    eps[1]
        .register_courier(CourierScope::Peer(ids[0]), CourierId(9), Box::new(Quiet))
        .unwrap();
    eps[0].connect(t0, &ids[1]).unwrap();
    let mut buf = [0u8; 1500];
    // Handshake.
    for _ in 0..20 {
        for i in 0..2 {
            let now = Instant::now();
            while let Some(t) = eps[i].poll_transmit(now, &mut buf) {
                eps[1 - i].handle_datagram(now, addrs[i], &buf[..t.len]);
            }
        }
    }
    assert!(eps[0].is_connected(&ids[1]));
    let mut g = c.benchmark_group("engine");
    g.bench_function(
        "one packet: rank 4 couriers, fill, seal, open, deliver, ack back",
        |b| {
            // Each measured iteration is one packet actually delivered.
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut moved = 0;
                while moved < iters {
                    let now = Instant::now();
                    // The receiver's acks keep the window open.
                    while let Some(t) = eps[1].poll_transmit(now, &mut buf) {
                        eps[0].handle_datagram(now, addrs[1], &buf[..t.len]);
                    }
                    if let Some(t) = eps[0].poll_transmit(now, &mut buf) {
                        eps[1].handle_datagram(now, addrs[0], &buf[..t.len]);
                        moved += 1;
                    }
                }
                start.elapsed()
            })
        },
    );
    // What a spinning loop pays per turn when nothing happens: the wait for
    // the next datagram is made of these.
    g.bench_function("idle turn: poll_timeout + poll_transmit, nothing due", |b| {
        b.iter(|| {
            let now = Instant::now();
            let timeout = eps[1].poll_timeout();
            if timeout.is_some_and(|t| t <= now) {
                eps[1].handle_timeout(now);
            }
            while let Some(t) = eps[1].poll_transmit(now, &mut buf) {
                eps[0].handle_datagram(now, addrs[1], &buf[..t.len]);
            }
            timeout
        })
    });
    g.finish();
}

/// A courier with nothing to send.
struct Quiet;

impl Courier for Quiet {
    fn mandate(&self) -> Mandate {
        Mandate::idle()
    }
    fn on_send_opportunity(&mut self, _: &CourierContext, _: &mut PayloadWriter<'_>) {}
    fn on_receive(&mut self, _: &CourierContext, _: &[u8]) {}
}

fn handshake_steps(c: &mut Criterion) {
    let a = fixture_identity("a");
    let b = fixture_identity("b");
    let mut rng = rand::rngs::OsRng;
    let (_, eph) = hs::ephemeral(&mut rng);
    let syn = Syn {
        initiator: a.id().0,
        responder: b.id().0,
        session_id: 1,
        nonce: [1; 16],
        ephemeral: eph,
        timestamp_us: 1,
        max_datagram: 512,
    };
    let (datagram, _) = hs::sign_message(&syn, 0, SYN_LABEL, &Transcript::default(), &a, &mut rng, 0);
    let mut g = c.benchmark_group("handshake");
    g.sample_size(20);
    g.bench_function("RSA-2048 PSS sign (one handshake message)", |bch| {
        bch.iter(|| hs::sign_message(&syn, 0, SYN_LABEL, &Transcript::default(), &a, &mut rng, 0))
    });
    g.bench_function("RSA-2048 PSS verify", |bch| {
        bch.iter(|| {
            let m = <Syn as wire::HandshakeFields>::decode(&datagram).unwrap();
            hs::verify_message(&m, SYN_LABEL, &Transcript::default(), a.public()).unwrap()
        })
    });
    g.bench_function("X25519 + HKDF session keys", |bch| {
        bch.iter(|| {
            let (secret, _) = hs::ephemeral(&mut rng);
            hs::agree(secret, eph, &Transcript::default(), true).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, codec, aead, scheduler_fill, handshake_steps);
criterion_main!(benches);
