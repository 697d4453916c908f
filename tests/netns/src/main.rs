//! `octolink-netem`: a userspace `tc netem` between two interfaces.
//!
//! Run it in a router namespace holding one end of each of two veth pairs;
//! it copies Ethernet frames between them, impairing each direction alike
//! (with its own random stream). The endpoints see an ordinary Ethernet
//! link, so real kernels and real `octolink` processes talk across it.
//!
//! ```text
//! octolink-netem --a wa --b wr --delay-ms 50 --loss 10
//! ```

mod frame;
mod impair;
mod raw;

use std::time::{Duration, Instant};

use clap::Parser;

use impair::{Impairments, Link};
use raw::PacketSocket;

#[derive(Parser)]
#[command(
    about = "Bridges two interfaces with delay, jitter, loss, reordering, duplication, corruption and a rate"
)]
struct Args {
    #[arg(long)]
    a: String,
    #[arg(long)]
    b: String,
    /// One-way delay, each direction.
    #[arg(long, default_value_t = 0.0)]
    delay_ms: f64,
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    /// Percentages.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    #[arg(long, default_value_t = 0.0)]
    corrupt: f64,
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Megabits per second; 0 is unlimited.
    #[arg(long, default_value_t = 0.0)]
    rate_mbit: f64,
    /// Bytes that may queue for the rate.
    #[arg(long, default_value_t = 256 * 1024)]
    queue_bytes: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds between counter reports on stdout.
    #[arg(long, default_value_t = 5.0)]
    report_secs: f64,
}

fn share(pct: f64, what: &str) -> f64 {
    if !(0.0..=100.0).contains(&pct) {
        eprintln!("--{what} is a percentage, 0 to 100");
        std::process::exit(2);
    }
    pct / 100.0
}

fn main() {
    let args = Args::parse();
    let cfg = Impairments {
        delay: Duration::from_secs_f64(args.delay_ms.max(0.0) / 1e3),
        jitter: Duration::from_secs_f64(args.jitter_ms.max(0.0) / 1e3),
        loss: share(args.loss, "loss"),
        duplicate: share(args.duplicate, "duplicate"),
        corrupt: share(args.corrupt, "corrupt"),
        reorder: share(args.reorder, "reorder"),
        rate: (args.rate_mbit.max(0.0) * 1e6) as u64,
        queue_limit: args.queue_bytes,
    };
    let open = |name: &str| {
        PacketSocket::bind(name).unwrap_or_else(|e| {
            eprintln!("cannot open a packet socket on {name}: {e}");
            std::process::exit(1);
        })
    };
    let sockets = [open(&args.a), open(&args.b)];
    let now = Instant::now();
    // links[0] carries a -> b, links[1] b -> a.
    let mut links = [
        Link::new(cfg.clone(), args.seed, now),
        Link::new(cfg, args.seed.wrapping_add(1), now),
    ];
    println!("bridging {} <-> {}", args.a, args.b);
    let report_every = Duration::from_secs_f64(args.report_secs.max(0.1));
    let mut next_report = now + report_every;
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        for (from, link) in links.iter_mut().enumerate() {
            // Read what is waiting, but not forever: the other side and the
            // releases must get their turn under a flood.
            for _ in 0..256 {
                match sockets[from].recv(&mut buf) {
                    Ok(Some(n)) => link.arrive(now, &buf[..n]),
                    Ok(None) => break,
                    // A downed interface (a partition) reports errors; the
                    // socket works again when it comes back up.
                    Err(_) => break,
                }
            }
        }
        let now = Instant::now();
        for (from, link) in links.iter_mut().enumerate() {
            while let Some(frame) = link.pop_due(now) {
                // A send to a downed interface is a lost frame, as on a wire.
                let _ = sockets[1 - from].send(&frame);
            }
        }
        if now >= next_report {
            next_report = now + report_every;
            println!("{} -> {}: {:?}", args.a, args.b, links[0].counters);
            println!("{} -> {}: {:?}", args.b, args.a, links[1].counters);
        }
        let next = links
            .iter()
            .filter_map(Link::next_release)
            .chain([next_report])
            .min()
            .unwrap_or(next_report);
        let wait = next.saturating_duration_since(Instant::now());
        if raw::wait_readable(&[&sockets[0], &sockets[1]], wait).is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
