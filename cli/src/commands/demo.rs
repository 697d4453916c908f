//! demo: an agent and a remote on loopback in one process, with fresh keys
//! in a temporary home. Handshake, state sync, a verified blob, a summary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use octolink::{Event, Identity, NodeAssociate, Role, Stats};
use octolink_couriers::BlobEvent;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use super::flood::{peak_rss_kib, Flood};
use super::relay::Relay;
use super::transfer::progress_bar;
use crate::commands::run::hex;
use crate::error::{fail, Result};
use crate::home::{create_private_dir, Home};
use crate::node::{Node, NodeOptions};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Blob size: 64MiB, 500KiB, 1GiB, or bytes.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    size: u64,
    /// Random loss, in percent, through an in-process relay.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Seconds of state sync.
    #[arg(long, default_value_t = 3.0)]
    sync: f64,
    /// Flood the agent's socket with junk and forged SYNs throughout.
    #[arg(long)]
    flood: bool,
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit {unit:?} (KiB, MiB, GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} too large"))
}

/// Prints a step unless the output is JSON.
struct Say(bool);
impl Say {
    fn line(&self, s: impl AsRef<str>) {
        if !self.0 {
            println!("{}", s.as_ref());
        }
    }
}

struct TempTree(PathBuf);
impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Writes `size` pseudo-random bytes; returns their SHA-256.
fn make_blob(path: &Path, size: u64) -> Result<[u8; 32]> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0c7a);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        h.update(&buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(h.finalize().into())
}

fn file_sha256(path: &Path) -> Result<[u8; 32]> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().into())
}

pub fn demo(args: DemoArgs) -> Result<()> {
    if !(0.0..100.0).contains(&args.loss) {
        fail!("--loss must be a percentage below 100");
    }
    let say = Say(args.json);
    let root = std::env::temp_dir().join(format!(
        "octolink-demo-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    create_private_dir(&root)?;
    let _cleanup = TempTree(root.clone());
    let (agent_home, remote_home) = (
        Home {
            dir: root.join("agent"),
        },
        Home {
            dir: root.join("remote"),
        },
    );

    // 1. Keys and pairing.
    let t = Instant::now();
    let (agent_id, remote_id) = (
        Identity::generate(&mut rand::rngs::OsRng, 2048)?,
        Identity::generate(&mut rand::rngs::OsRng, 2048)?,
    );
    say.line(format!(
        "keys      two RSA-2048 key pairs in {:.2} s",
        t.elapsed().as_secs_f64()
    ));
    for (home, me, other, name) in [
        (&agent_home, &agent_id, &remote_id, "remote"),
        (&remote_home, &remote_id, &agent_id, "agent"),
    ] {
        home.ensure_dir()?;
        me.save(&home.key_path())?;
        let mut store = octolink::TrustStore::new();
        store.insert(NodeAssociate::new(other.public().clone(), name, Role::Agent))?;
        store.save(&home.associates_path())?;
    }

    // 2. The agent, the optional lossy relay, then the remote.
    let inbox = root.join("inbox");
    create_private_dir(&inbox)?;
    let bind = "127.0.0.1:0".parse().expect("a valid address");
    let agent = Node::start(
        &agent_home,
        NodeOptions {
            bind,
            connect_all: false,
            inbox: Some(inbox.clone()),
        },
    )?;
    let relay = if args.loss > 0.0 {
        Some(Relay::start(agent.channel.local_addr(), args.loss / 100.0, 42)?)
    } else {
        None
    };
    let agent_addr = relay.as_ref().map_or(agent.channel.local_addr(), |r| r.addr);
    // The flood goes to the agent's own socket, not through the relay: the
    // relay would give it the remote's source address and route replies to it.
    let flood = if args.flood {
        say.line("flood     junk and SYNs forged in the remote's name, at full speed");
        Some(Flood::start(
            agent.channel.local_addr(),
            remote_id.id(),
            agent_id.id(),
        )?)
    } else {
        None
    };
    let mut store = remote_home.trust()?;
    let agent_entry = store.iter().next().cloned();
    if let Some(a) = agent_entry {
        store.insert(a.with_address(agent_addr))?;
    }
    store.save(&remote_home.associates_path())?;
    let remote = Node::start(
        &remote_home,
        NodeOptions {
            bind,
            connect_all: false,
            inbox: None,
        },
    )?;
    say.line(format!(
        "paired    agent {} on {}, remote {} on {}{}",
        agent.channel.node_id().short(),
        agent.channel.local_addr(),
        remote.channel.node_id().short(),
        remote.channel.local_addr(),
        if relay.is_some() {
            format!(" (through a relay losing {}%)", args.loss)
        } else {
            String::new()
        }
    ));

    // 3. Handshake.
    let peer = agent.channel.node_id();
    let t = Instant::now();
    remote.connect_and_wait(peer, Duration::from_secs(20))?;
    let handshake = t.elapsed();
    say.line(format!(
        "handshake SYN → SYN-ACK → ACK in {:.2} ms (RSA-PSS signatures, X25519, AES-256-GCM)",
        handshake.as_secs_f64() * 1e3
    ));

    // 4. State sync, with pings for RTT percentiles.
    let sync_until = Instant::now() + Duration::from_secs_f64(args.sync);
    let mut rtts = Vec::new();
    let mut updates = 0u64;
    let mut last_set = Instant::now() - Duration::from_secs(1);
    remote.state.set(Instant::now(), 4, &"explore".to_string())?;
    while Instant::now() < sync_until {
        if last_set.elapsed() >= Duration::from_millis(20) {
            last_set = Instant::now();
            updates += 1;
            agent.state.set(last_set, 3, &((updates % 360) as f32))?;
            agent.state.set(last_set, 1, &(1.0 - updates as f32 * 1e-4))?;
        }
        let token = remote.channel.ping(peer)?;
        if let Some(Event::Pong { rtt, .. }) = remote.channel.wait_for(
            Duration::from_millis(20),
            |e| matches!(e, Event::Pong { token: t, .. } if *t == token),
        ) {
            rtts.push(rtt);
        }
    }
    let synced_at = Instant::now();
    let in_sync = loop {
        if agent.state.digest() == remote.state.digest() {
            break true;
        }
        if synced_at.elapsed() > Duration::from_secs(5) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    rtts.sort();
    say.line(format!(
        "state     {updates} agent updates at 50 Hz for {:.0} s; the remote's view {} the agent's; mode set by the remote: {}",
        args.sync,
        if in_sync { "matches" } else { "does NOT match" },
        crate::node::show_param(&agent.state, 4)
    ));
    say.line(format!(
        "rtt       {} pings: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        rtts.len(),
        percentile(&rtts, 0.5).as_secs_f64() * 1e6,
        percentile(&rtts, 0.99).as_secs_f64() * 1e6,
        percentile(&rtts, 0.999).as_secs_f64() * 1e6
    ));

    // 5. A blob, remote → agent, verified on disk.
    let src = root.join("payload.bin");
    let sha = make_blob(&src, args.size)?;
    let couriers = remote.couriers_for(&peer)?;
    let agent_couriers = agent.couriers_for(&remote.channel.node_id())?;
    let t = Instant::now();
    let id = couriers
        .send_file(&remote.channel, &src, 10)
        .map_err(|e| crate::error::CliError(e.to_string()))?;
    let bar = (!args.json).then(|| progress_bar(args.size));
    let mut received: Option<PathBuf> = None;
    let mut sent_ok = false;
    let mut last_progress = Instant::now();
    while received.is_none() || !sent_ok {
        std::thread::sleep(Duration::from_millis(20));
        for e in couriers.take_blob_events(&remote.channel)? {
            match e {
                BlobEvent::Progress { id: i, progress, .. } if i == id => {
                    if let Some(b) = &bar {
                        b.set_position(progress.done);
                    }
                    last_progress = Instant::now();
                }
                BlobEvent::Completed { id: i, .. } if i == id => sent_ok = true,
                BlobEvent::Failed { reason, .. } | BlobEvent::Cancelled { reason, .. } => {
                    fail!("blob transfer failed: {reason}")
                }
                _ => {}
            }
        }
        for e in agent_couriers.take_blob_events(&agent.channel)? {
            if let BlobEvent::Completed { path, .. } = e {
                received = path;
            }
        }
        if last_progress.elapsed() > Duration::from_secs(30) {
            fail!("blob transfer stalled");
        }
    }
    let took = t.elapsed();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let on_disk = file_sha256(received.as_deref().unwrap_or(Path::new("")))?;
    if on_disk != sha {
        fail!("the received file does not match the sent one");
    }
    let goodput = args.size as f64 / took.as_secs_f64() / (1 << 20) as f64;
    say.line(format!(
        "blob      {} MiB in {:.2} s = {goodput:.1} MiB/s, SHA-256 verified on disk ({})",
        args.size as f64 / (1 << 20) as f64,
        took.as_secs_f64(),
        &hex(&sha)[..16]
    ));

    // 6. Summary.
    let flooded = flood.map(|f| {
        let sent = f.sent.load(std::sync::atomic::Ordering::Relaxed);
        drop(f);
        sent
    });
    let (sa, sr) = (agent.channel.stats()?, remote.channel.stats()?);
    let summary = Summary {
        handshake,
        rtts: &rtts,
        size: args.size,
        took,
        goodput,
        agent: &sa,
        remote: &sr,
        relay: relay.as_ref(),
        in_sync,
        flooded,
    };
    if args.json {
        println!("{}", summary.json());
    } else {
        summary.table();
    }
    remote.channel.shutdown()?;
    agent.channel.shutdown()?;
    if !in_sync {
        fail!("state did not converge");
    }
    Ok(())
}

struct Summary<'a> {
    handshake: Duration,
    rtts: &'a [Duration],
    size: u64,
    took: Duration,
    goodput: f64,
    agent: &'a Stats,
    remote: &'a Stats,
    relay: Option<&'a Relay>,
    in_sync: bool,
    flooded: Option<u64>,
}

impl Summary<'_> {
    fn us(d: Duration) -> f64 {
        (d.as_secs_f64() * 1e7).round() / 10.0
    }

    fn lost(s: &Stats) -> u64 {
        s.sessions.iter().map(|x| x.packets_lost).sum()
    }

    fn table(&self) {
        let relay = self.relay.map(|r| {
            (
                r.forwarded.load(std::sync::atomic::Ordering::Relaxed),
                r.dropped.load(std::sync::atomic::Ordering::Relaxed),
            )
        });
        println!();
        println!("| figure | value |");
        println!("|---|---|");
        println!("| handshake | {:.2} ms |", self.handshake.as_secs_f64() * 1e3);
        println!(
            "| RTT p50 / p99 / p99.9 ({} pings) | {} / {} / {} µs |",
            self.rtts.len(),
            Self::us(percentile(self.rtts, 0.5)),
            Self::us(percentile(self.rtts, 0.99)),
            Self::us(percentile(self.rtts, 0.999))
        );
        println!(
            "| blob | {:.1} MiB in {:.2} s |",
            self.size as f64 / (1 << 20) as f64,
            self.took.as_secs_f64()
        );
        println!("| blob goodput | {:.1} MiB/s |", self.goodput);
        println!("| state in sync | {} |", self.in_sync);
        for (name, s) in [("agent", self.agent), ("remote", self.remote)] {
            println!(
                "| {name} packets out / in | {} / {} |",
                s.sent.packets, s.received.packets
            );
            println!(
                "| {name} packets lost / broken / hacked | {} / {} / {} |",
                Self::lost(s),
                s.broken(),
                s.hacked()
            );
        }
        if let Some((f, d)) = relay {
            println!("| relay forwarded / dropped | {f} / {d} |");
        }
        if let Some(n) = self.flooded {
            println!("| flood datagrams sent | {n} |");
        }
        println!(
            "| agent RSA verifications / signatures | {} / {} |",
            self.agent.rsa_verifications, self.agent.rsa_signatures
        );
        if let Some(kib) = peak_rss_kib() {
            println!("| process peak RSS | {:.1} MiB |", kib as f64 / 1024.0);
        }
    }

    fn json(&self) -> String {
        let side = |s: &Stats| {
            serde_json::json!({
                "packets_out": s.sent.packets, "packets_in": s.received.packets,
                "bytes_out": s.sent.bytes, "bytes_in": s.received.bytes,
                "packets_lost": Self::lost(s), "broken": s.broken(), "hacked": s.hacked(),
                "rsa_signatures": s.rsa_signatures,
            })
        };
        serde_json::json!({
            "handshake_ms": self.handshake.as_secs_f64() * 1e3,
            "rtt_samples": self.rtts.len(),
            "rtt_p50_us": Self::us(percentile(self.rtts, 0.5)),
            "rtt_p99_us": Self::us(percentile(self.rtts, 0.99)),
            "rtt_p999_us": Self::us(percentile(self.rtts, 0.999)),
            "blob_bytes": self.size,
            "blob_seconds": self.took.as_secs_f64(),
            "blob_mib_s": self.goodput,
            "state_in_sync": self.in_sync,
            "relay_dropped": self.relay.map(|r| r.dropped.load(std::sync::atomic::Ordering::Relaxed)),
            "flood_datagrams": self.flooded,
            "agent_rsa_verifications": self.agent.rsa_verifications,
            "peak_rss_kib": peak_rss_kib(),
            "agent": side(self.agent),
            "remote": side(self.remote),
        })
        .to_string()
    }
}
