//! The sans-IO round trip without sockets: a 64-byte reliable message from
//! one engine to another and back, through MessageCouriers, as the peer
//! bench's sans-IO loop drives them (poll_transmit / poll_timeout /
//! handle_timeout / handle_datagram / courier_mut). What the engine adds to
//! a round trip, syscalls aside.
//!
//! `cargo bench --features sim --bench roundtrip`

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

fn roundtrip(c: &mut Criterion) {
    let mut pair = common::Pair::connected();
    let msg = [7u8; 64];
    let mut g = c.benchmark_group("roundtrip");
    g.bench_function("64 B reliable message there and back (engine only)", |b| {
        b.iter(|| pair.round_trip(&msg))
    });
    g.finish();
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
