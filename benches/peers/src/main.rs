//! The side-by-side benchmark: every library does the same work on
//! loopback, in one process, in one run.
//!
//! `cargo run --release --manifest-path benches/peers/Cargo.toml -- [--quick] [--only NAME]`
//! (`--repeat-bulk N`: the API's 64 MiB bulk N times, to catch a rare stall)

mod enet_peer;
mod kcp_peer;
mod octo_api;
mod octo_sansio;
mod quinn_peer;
mod relay;
mod renet_peer;
mod report;
mod stats;
mod tcp;
mod udp;
mod work;

use std::path::PathBuf;

use stats::Results;
use work::Work;

const USAGE: &str = "usage: octolink-peerbench [--quick] [--only NAME] | --repeat-bulk N
  --quick          small sizes, under a minute
  --only NAME      one contestant (and the raw-UDP floor; written under
                   target/peerbench/only): udp, tcp, octolink-sansio,
                   octolink-api, octolink-api-busy, octolink-inline, udp-jumbo,
                   octolink-api-jumbo, kcp, renet, enet, quinn
  --repeat-bulk N  the API's 64 MiB bulk N times, printing each goodput (finds stalls)";

type Contestant = (&'static str, fn(&Work) -> Results);
type MultiContestant = (&'static str, fn(&Work) -> Vec<Results>);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(bad) = args
        .iter()
        .skip(1)
        .find(|a| a.starts_with('-') && !["--quick", "--only", "--repeat-bulk"].contains(&a.as_str()))
    {
        if bad != "--help" && bad != "-h" {
            eprintln!("unknown option {bad}");
        }
        eprintln!("{USAGE}");
        std::process::exit(if bad == "--help" || bad == "-h" { 0 } else { 2 });
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let work = Work::new(quick);
    if let Some(n) = args
        .iter()
        .position(|a| a == "--repeat-bulk")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
    {
        octo_api::repeat_bulk(&work, n);
        return;
    }
    let contestants: Vec<Contestant> = vec![
        ("udp", udp::run),
        ("tcp", tcp::run),
        ("octolink-sansio", octo_sansio::run),
        ("octolink-api", |w| octo_api::run(w, false)),
        ("octolink-api-busy", |w| octo_api::run(w, true)),
        ("octolink-inline", octo_api::run_inline),
        ("udp-jumbo", udp::run_jumbo),
        ("octolink-api-jumbo", octo_api::run_jumbo),
        ("kcp", kcp_peer::run),
        ("renet", renet_peer::run),
        ("enet", enet_peer::run),
    ];
    let multi: Vec<MultiContestant> = vec![("quinn", quinn_peer::run)];
    if let Some(o) = only.as_deref() {
        let known = contestants.iter().map(|c| c.0).chain(multi.iter().map(|m| m.0));
        if !known.into_iter().any(|n| n == o) {
            eprintln!("unknown contestant {o}\n{USAGE}");
            std::process::exit(2);
        }
    }
    let mut results = Vec::new();
    for (name, run) in contestants {
        if only.as_deref().is_some_and(|o| o != name && name != "udp") {
            continue;
        }
        eprintln!("running {name}...");
        let r = run(&work);
        eprintln!("  {r:?}");
        results.push(r);
    }
    for (name, run) in multi {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        eprintln!("running {name}...");
        for r in run(&work) {
            eprintln!("  {r:?}");
            results.push(r);
        }
    }
    let table = report::table(&results);
    println!("{table}");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // A partial table (one contestant) must not replace a whole run's.
    let out = root.join(if only.is_some() {
        "target/peerbench/only"
    } else {
        "target/peerbench"
    });
    let _ = std::fs::create_dir_all(&out);
    let json = report::json(&results);
    let _ = std::fs::write(
        out.join("latest.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    );
    let _ = std::fs::write(out.join("latest.md"), &table);
    let rtt: Vec<(String, f64)> = results
        .iter()
        .filter_map(|r| r.rtt64.map(|p| (r.library.clone(), p.p50.as_secs_f64() * 1e6)))
        .collect();
    let rtt999: Vec<(String, f64)> = results
        .iter()
        .filter_map(|r| r.rtt64.map(|p| (r.library.clone(), p.p999.as_secs_f64() * 1e6)))
        .collect();
    let loss: Vec<(String, f64)> = results
        .iter()
        .filter_map(|r| r.lossy5_mib_s.map(|v| (r.library.clone(), v)))
        .collect();
    let _ = std::fs::write(
        out.join("rtt-p50.svg"),
        report::bars("64-byte ping-pong RTT, p50", "µs", &rtt),
    );
    let _ = std::fs::write(
        out.join("rtt-p999.svg"),
        report::bars("64-byte ping-pong RTT, p99.9", "µs", &rtt999),
    );
    let _ = std::fs::write(
        out.join("lossy5.svg"),
        report::bars("goodput at 5% loss, 20 ms delay", "MiB/s", &loss),
    );
    eprintln!("wrote {}", out.join("latest.json").display());
}
