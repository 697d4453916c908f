//! agent and remote: long-running nodes that print what happens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use octolink::Event;
use octolink_couriers::{BlobEvent, CommandEvent, StateEvent};

use crate::error::Result;
use crate::home::{create_private_dir, Home};
use crate::node::{
    fmt_duration, interrupted, keep_running, set_param, show_param, wall_ms, Node, NodeOptions, CLOCK_PARAM,
    PARAMS,
};

/// Prints one engine event in a stable, greppable form.
pub fn print_event(node: &Node, e: &Event) {
    match e {
        Event::Connected { peer, addr, .. } => println!("connected {} {addr}", node.name_of(peer)),
        Event::Disconnected { peer, reason } => println!("disconnected {} {reason:?}", node.name_of(peer)),
        Event::ConnectFailed { peer, .. } => {
            println!("no answer from {} yet; still trying", node.name_of(peer))
        }
        Event::AddressChanged { peer, addr } => println!("{} moved to {addr}", node.name_of(peer)),
        Event::Alert(a) => println!("ALERT {a:?}"),
        Event::LinkQuality { peer, good } => {
            println!(
                "link to {} is {}",
                node.name_of(peer),
                if *good { "good" } else { "bad" }
            )
        }
        _ => {}
    }
}

/// Drains couriers' news: commands, blobs and state changes.
fn print_courier_news(node: &Node) -> Result<()> {
    for (peer, c) in &node.couriers {
        let name = node.name_of(peer);
        for cmd in c.take_commands(&node.channel)? {
            println!("command from {name}: {}", String::from_utf8_lossy(&cmd.body));
        }
        for e in c.take_command_events(&node.channel)? {
            match e {
                CommandEvent::Delivered(id) => println!("command {id} delivered to {name}"),
                CommandEvent::Expired(id) => println!("command {id} expired before delivery"),
                CommandEvent::Failed(id) => println!("command {id} not confirmed: session ended"),
            }
        }
        for e in c.take_blob_events(&node.channel)? {
            match e {
                BlobEvent::Offered {
                    name: file,
                    size,
                    accepted,
                    ..
                } => {
                    println!(
                        "{name} offers {file} ({size} bytes): {}",
                        if accepted { "accepted" } else { "refused" }
                    )
                }
                BlobEvent::Completed {
                    outgoing: false,
                    path,
                    digest,
                    ..
                } => println!(
                    "received {} blake3 {}",
                    path.map_or("(memory)".into(), |p| p.display().to_string()),
                    hex(&digest)
                ),
                BlobEvent::Failed { reason, .. } => println!("transfer failed: {reason}"),
                _ => {}
            }
        }
    }
    while let Some(StateEvent::Changed { param, .. }) = node.state.poll_event() {
        if param == CLOCK_PARAM {
            continue;
        }
        let name = PARAMS.iter().find(|p| p.0 == param).map_or("?", |p| p.1);
        println!("state {name} = {}", show_param(&node.state, param));
    }
    Ok(())
}

/// The agent publishes its state at 20 Hz.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(50);

/// How old the agent's state is at the remote, from the agent's clock
/// parameter: a histogram in milliseconds (the last bucket holds the rest).
struct Staleness {
    counts: Vec<u64>,
    max_ms: u64,
}

impl Staleness {
    fn new() -> Self {
        Self {
            counts: vec![0; 10_001],
            max_ms: 0,
        }
    }

    fn sample(&mut self, state: &octolink_couriers::AgentState) {
        let Ok(v) = state.get::<u64>(Instant::now(), CLOCK_PARAM) else {
            return;
        };
        if v.value == 0 {
            return;
        }
        let ms = wall_ms().saturating_sub(v.value);
        self.max_ms = self.max_ms.max(ms);
        let last = self.counts.len() - 1;
        self.counts[(ms as usize).min(last)] += 1;
    }

    fn percentile(&self, p: f64) -> u64 {
        let total: u64 = self.counts.iter().sum();
        let want = ((total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return ms as u64;
            }
        }
        self.max_ms
    }

    /// One line for the end of a run, if anything was sampled.
    fn summary(&self) -> Option<String> {
        let total: u64 = self.counts.iter().sum();
        (total > 0).then(|| {
            let ms = |v: u64| fmt_duration(Duration::from_millis(v));
            format!(
                "staleness of the agent's state over {total} samples: p50 {}, p99 {}, max {} (by the agent's clock)",
                ms(self.percentile(0.5)),
                ms(self.percentile(0.99)),
                ms(self.max_ms)
            )
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn agent(home: &Home, bind: SocketAddr, dir: Option<PathBuf>, limit: Option<Duration>) -> Result<()> {
    let inbox = dir.unwrap_or_else(|| home.inbox());
    create_private_dir(&inbox)?;
    let node = Node::start(
        home,
        NodeOptions {
            bind,
            connect_all: true,
            inbox: Some(inbox.clone()),
        },
    )?;
    println!(
        "agent {} on {} (files into {})",
        node.channel.node_id().short(),
        node.channel.local_addr(),
        inbox.display()
    );
    let stop = interrupted();
    let started = Instant::now();
    let mut last_publish = Instant::now();
    let mut battery = 1.0f32;
    while keep_running(&stop, started, limit) {
        if let Ok(e) = node.channel.events().recv_timeout(Duration::from_millis(50)) {
            print_event(&node, &e);
            while let Ok(e) = node.channel.events().try_recv() {
                print_event(&node, &e);
            }
        }
        if last_publish.elapsed() >= PUBLISH_INTERVAL {
            last_publish = Instant::now();
            battery = (battery - 0.00025).max(0.0);
            let t = started.elapsed().as_secs_f32();
            let now = Instant::now();
            node.state.set(now, 1, &battery)?;
            node.state.set(now, 3, &((t * 20.0) % 360.0))?;
            node.state.set(now, CLOCK_PARAM, &wall_ms())?;
        }
        print_courier_news(&node)?;
    }
    node.channel.shutdown()?;
    Ok(())
}

pub fn remote(
    home: &Home,
    peer: &str,
    bind: SocketAddr,
    sets: &[String],
    commands: &[String],
    limit: Option<Duration>,
) -> Result<()> {
    let node = Node::client(home, bind)?;
    let peer = node.resolve(peer)?;
    let name = node.name_of(&peer);
    node.connect_and_wait(peer, Duration::from_secs(10))?;
    println!("connected {name}");
    let couriers = node.couriers_for(&peer)?;
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            crate::error::fail!("--set wants NAME=VALUE, not {s:?}");
        };
        set_param(&node.state, k, v)?;
    }
    for c in commands {
        couriers
            .send_command(
                &node.channel,
                c.as_bytes().to_vec(),
                Some(Duration::from_secs(10)),
            )
            .map_err(|e| crate::error::CliError(e.to_string()))?;
    }
    let stop = interrupted();
    let started = Instant::now();
    let mut last_show = Instant::now();
    let mut staleness = Staleness::new();
    while keep_running(&stop, started, limit) {
        if let Ok(e) = node.channel.events().recv_timeout(Duration::from_millis(20)) {
            print_event(&node, &e);
        }
        staleness.sample(&node.state);
        print_courier_news(&node)?;
        if last_show.elapsed() >= Duration::from_secs(1) {
            last_show = Instant::now();
            let line: Vec<String> = PARAMS
                .iter()
                .map(|&(id, n, _)| format!("{n}={}", show_param(&node.state, id)))
                .collect();
            println!("{name}: {}", line.join("  "));
        }
    }
    if let Some(line) = staleness.summary() {
        println!("{line}");
    }
    node.channel.shutdown()?;
    Ok(())
}
