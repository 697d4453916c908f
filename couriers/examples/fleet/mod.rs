//! What the scale examples share: the clients' RSA identities, generated
//! once and cached, and the agent-state view a fleet server keeps of each.

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
