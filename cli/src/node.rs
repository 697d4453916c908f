//! A running node as the CLI uses it: the channel, the agent state with its
//! standard parameters, and the standard couriers for every associate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use octolink::driver::{ChannelConfig, CommsChannel};
use octolink::{Event, NodeId, TrustStore};
use octolink_couriers::blob::{Acceptor, BlobConfig};
use octolink_couriers::standard::StandardCouriers;
use octolink_couriers::AgentState;

use crate::error::{fail, Result};
use crate::home::Home;

/// The agent-state parameters every CLI node defines alike.
pub const PARAMS: &[(u16, &str, u8)] = &[
    (1, "battery", 200),
    (2, "speed", 255),
    (3, "heading", 150),
    (4, "mode", 255),
];

/// The agent's wall clock, in ms since the Unix epoch, set with every
/// publish. A remote whose clock agrees (the same host, or NTP/PTP) reads
/// the state's staleness from it.
pub const CLOCK_PARAM: u16 = 5;

pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn param_id(name: &str) -> Result<u16> {
    match PARAMS.iter().find(|(_, n, _)| *n == name) {
        Some((id, _, _)) => Ok(*id),
        None => {
            let names: Vec<&str> = PARAMS.iter().map(|p| p.1).collect();
            fail!("unknown parameter {name:?} (known: {})", names.join(", "))
        }
    }
}

pub fn define_params(state: &AgentState) {
    for &(id, name, importance) in PARAMS {
        // Defining fresh parameters on a fresh store cannot fail.
        let _ = if name == "mode" {
            state.define(id, name, importance, &String::from("idle"))
        } else {
            state.define(id, name, importance, &0.0f32)
        };
    }
    let _ = state.define(CLOCK_PARAM, "clock", 255, &0u64);
}

/// Renders a parameter's current value.
pub fn show_param(state: &AgentState, id: u16) -> String {
    let now = Instant::now();
    let (value, meta) = if id == 4 {
        match state.get::<String>(now, id) {
            Ok(v) => (v.value.clone(), (v.verified, v.age)),
            Err(_) => return "?".into(),
        }
    } else {
        match state.get::<f32>(now, id) {
            Ok(v) => (format!("{:.3}", v.value), (v.verified, v.age)),
            Err(_) => return "?".into(),
        }
    };
    let age = meta
        .1
        .map_or("never set".to_string(), |a| format!("age {}", fmt_duration(a)));
    format!(
        "{value} ({}, {age})",
        if meta.0 { "verified" } else { "unverified" }
    )
}

/// Sets a parameter from text.
pub fn set_param(state: &AgentState, name: &str, value: &str) -> Result<()> {
    let id = param_id(name)?;
    let now = Instant::now();
    if id == 4 {
        state.set(now, id, &value.to_string())?;
    } else {
        let v: f32 = value
            .parse()
            .map_err(|_| crate::error::CliError(format!("{name} needs a number, not {value:?}")))?;
        state.set(now, id, &v)?;
    }
    Ok(())
}

pub fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

pub struct Node {
    pub channel: CommsChannel,
    pub state: AgentState,
    pub couriers: BTreeMap<NodeId, StandardCouriers>,
    pub trust: TrustStore,
}

pub struct NodeOptions {
    pub bind: SocketAddr,
    pub connect_all: bool,
    pub inbox: Option<PathBuf>,
}

impl Node {
    pub fn start(home: &Home, opts: NodeOptions) -> Result<Self> {
        let identity = home.identity()?;
        let trust = home.trust()?;
        let mut cfg = ChannelConfig::new(opts.bind, identity);
        cfg.trust_path = Some(home.associates_path());
        cfg.endpoint.max_datagram = octolink::wire::ETHERNET_DATAGRAM;
        cfg.endpoint.connect_all = opts.connect_all;
        let channel = CommsChannel::start(cfg)?;
        let state = AgentState::new(channel.node_id());
        define_params(&state);
        let mut couriers = BTreeMap::new();
        for a in trust.iter() {
            let blob = BlobConfig {
                acceptor: match &opts.inbox {
                    Some(dir) => Acceptor::Directory(dir.clone()),
                    None => Acceptor::RejectAll,
                },
                max_incoming_size: 16 << 30,
                ..BlobConfig::default()
            };
            couriers.insert(a.id, StandardCouriers::install(&channel, a.id, &state, blob)?);
        }
        Ok(Self {
            channel,
            state,
            couriers,
            trust,
        })
    }

    /// A node that starts no contact and accepts no files: what `remote`,
    /// `ping` and `send` use.
    pub fn client(home: &Home, bind: SocketAddr) -> Result<Self> {
        Self::start(
            home,
            NodeOptions {
                bind,
                connect_all: false,
                inbox: None,
            },
        )
    }

    /// Finds a peer by name or by a prefix of its id.
    pub fn resolve(&self, name: &str) -> Result<NodeId> {
        resolve(&self.trust, name)
    }

    pub fn name_of(&self, id: &NodeId) -> String {
        self.trust.get(id).map_or_else(|| id.short(), |a| a.name.clone())
    }

    pub fn couriers_for(&self, peer: &NodeId) -> Result<StandardCouriers> {
        match self.couriers.get(peer) {
            Some(c) => Ok(*c),
            None => fail!("no couriers for {}", peer.short()),
        }
    }

    /// Connects and waits for the session, or fails after `timeout`.
    pub fn connect_and_wait(&self, peer: NodeId, timeout: Duration) -> Result<()> {
        self.channel.connect(peer)?;
        let ok = self.channel.wait_for(
            timeout,
            |e| matches!(e, Event::Connected { peer: p, .. } if *p == peer),
        );
        if ok.is_none() && !self.channel.is_connected(peer)? {
            fail!(
                "no answer from {} within {}s (is it running, and does it trust this node?)",
                self.name_of(&peer),
                timeout.as_secs()
            );
        }
        Ok(())
    }
}

pub fn resolve(trust: &TrustStore, name: &str) -> Result<NodeId> {
    if let Some(a) = trust.iter().find(|a| a.name == name) {
        return Ok(a.id);
    }
    let lower = name.to_ascii_lowercase();
    let matches: Vec<NodeId> = trust
        .iter()
        .filter(|a| lower.len() >= 4 && a.id.to_string().starts_with(&lower))
        .map(|a| a.id)
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => fail!("unknown peer {name:?}: not among the associates (see `octolink associates`)"),
        _ => fail!("{name:?} matches several associates; give more of the id"),
    }
}

/// A flag set by Ctrl-C, so long-running commands can shut down cleanly.
pub fn interrupted() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    // Only one handler per process; a second call keeps the first.
    let _ = ctrlc::set_handler(move || f.store(true, Ordering::SeqCst));
    flag
}

/// Whether to keep running: not interrupted and within `limit`.
pub fn keep_running(flag: &AtomicBool, started: Instant, limit: Option<Duration>) -> bool {
    !flag.load(Ordering::SeqCst) && limit.is_none_or(|l| started.elapsed() < l)
}
