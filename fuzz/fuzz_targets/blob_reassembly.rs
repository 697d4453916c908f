//! BlobCourier on arbitrary sequences of payloads: offers, control
//! messages and chunks at any offsets. No panic, no write outside the
//! announced size, bounded memory.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use octolink::{Courier, CourierContext, NodeId};
use octolink_couriers::blob::{Acceptor, BlobConfig};
use octolink_couriers::BlobCourier;

fuzz_target!(|data: &[u8]| {
    let mut courier = BlobCourier::new(BlobConfig {
        acceptor: Acceptor::Memory,
        max_incoming_size: 1 << 20,
        ..BlobConfig::default()
    });
    let ctx = CourierContext {
        now: Instant::now(),
        peer: Some(NodeId([2; 32])),
        rtt: None,
    };
    courier.on_session_start(&ctx);
    // The input is a run of length-prefixed payloads.
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        courier.on_receive(&ctx, &tail[..n]);
        rest = &tail[n..];
    }
    assert!(courier.bookkeeping() < 100_000);
    while courier.poll_event().is_some() {}
});
