//! What the scale examples share: the clients' RSA identities, generated
//! once and cached, and the agent-state view a fleet server keeps of each.

use std::time::Duration;

use octolink::{Identity, NodeId};
use octolink_couriers::{AgentState, AgentStateConfig, AgentStateCourier};
use rand::SeedableRng;

/// The one parameter every client publishes: its pose, as a counter.
pub const POSE: u16 = 1;

/// Client `i`'s identity, generated once (about 0.1 s) and kept under
/// target/scale-keys so that later runs start at once.
fn client_identity(i: usize) -> Identity {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scale-keys");
    let path = dir.join(format!("client{i}.pem"));
    if let Some(id) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|p| Identity::from_pem(&p).ok())
    {
        return id;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
    let id = Identity::generate(&mut rng, 2048).expect("keygen");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&path, id.to_pem());
    id
}

/// The first `n` clients' identities; key generation, which dominates a
/// first run, is spread over the cores.
pub fn client_identities(n: usize) -> Vec<Identity> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, client_identity(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Identity)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("keygen"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, id)| id).collect()
    })
}

/// `owner`'s agent state with the pose defined, as published by `owner`
/// and mirrored by the side that tracks it (their digests agree once in
/// sync), and its courier towards `peer`.
pub fn pose_state(owner: NodeId, peer: NodeId) -> (AgentState, AgentStateCourier) {
    let state = AgentState::new(owner);
    state.define(POSE, "pose", 200, &0u64).expect("define");
    let courier = state.courier(peer, AgentStateConfig::default());
    (state, courier)
}

/// The fleet sizes named on the command line, or `default`.
pub fn sizes(default: &[usize]) -> Vec<usize> {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        default.to_vec()
    } else {
        sizes
    }
}

/// `SCALE_ACK_DELAY_MS`: the server's `max_ack_delay` (a fleet server's
/// setting: one acknowledgement per two updates at 100 ms); the engine's
/// default otherwise.
pub fn server_max_ack_delay() -> Duration {
    env_number("SCALE_ACK_DELAY_MS").map_or(octolink::DEFAULT_MAX_ACK_DELAY, Duration::from_millis)
}

/// `SCALE_SECONDS`: how long the steady phase is measured, or `default`.
pub fn measured_seconds(default: u64) -> u64 {
    env_number("SCALE_SECONDS").unwrap_or(default)
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}
