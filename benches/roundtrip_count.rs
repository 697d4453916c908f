//! The round trip of `benches/roundtrip.rs` N times in a plain loop, for
//! instruction counts, which are stable where times are not:
//!
//! ```sh
//! cargo bench --features sim --bench roundtrip_count --no-run
//! valgrind --tool=callgrind --toggle-collect='roundtrip_count::measured' \
//!     target/release/deps/roundtrip_count-* 20000
//! ```
//!
//! Instructions per round trip = the collected total / N (the run may
//! include one background SYN signature, ~50 M instructions: the engine
//! re-signs its presigned SYN on a timer). Without valgrind it prints the
//! mean time per round trip.

use std::time::Instant;

mod common;

#[inline(never)]
fn measured(pair: &mut common::Pair, msg: &[u8], n: u32) {
    for _ in 0..n {
        pair.round_trip(msg);
    }
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut pair = common::Pair::connected();
    let msg = [7u8; 64];
    let start = Instant::now();
    measured(&mut pair, &msg, n);
    println!("{n} round trips, {:?} each", start.elapsed() / n);
}
