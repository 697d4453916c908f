//! The minimal robot: publish state, obey commands, until Ctrl-C.
//!
//! `cargo run --example agent` (then, in another terminal,
//! `cargo run --example remote`). Uses the repository's *test* keys; a real
//! robot uses its own from `octolink keygen`.

use std::time::{Duration, Instant};

use octolink::driver::{ChannelConfig, CommsChannel};
use octolink::sim::fixture_identity;
use octolink::{Event, NodeAssociate, Role};
use octolink_couriers::blob::BlobConfig;
use octolink_couriers::standard::StandardCouriers;
use octolink_couriers::AgentState;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = ChannelConfig::new("127.0.0.1:7400".parse()?, fixture_identity("a"));
    // Pairing: trust the remote's public key (exchanged out of band).
    let remote = fixture_identity("b").public().clone();
    let remote_id = remote.id();
    config
        .trust
        .insert(NodeAssociate::new(remote, "remote", Role::Remote))?;
    let channel = CommsChannel::start(config)?;

    // The agent's state: what every control sees and may set.
    let state = AgentState::new(channel.node_id());
    state.define(1, "battery", 200, &1.0f32)?;
    state.define(2, "speed", 255, &0.0f32)?;
    let couriers = StandardCouriers::install(&channel, remote_id, &state, BlobConfig::default())?;
    println!("agent listening on {}", channel.local_addr());

    let start = Instant::now();
    loop {
        while let Ok(event) = channel.events().recv_timeout(Duration::from_millis(100)) {
            match event {
                Event::Connected { addr, .. } => println!("remote connected from {addr}"),
                Event::Disconnected { reason, .. } => println!("remote gone: {reason:?}"),
                _ => {}
            }
        }
        let battery = 1.0 - start.elapsed().as_secs_f32() / 3600.0;
        state.set(Instant::now(), 1, &battery)?;
        for command in couriers.take_commands(&channel)? {
            println!("command: {}", String::from_utf8_lossy(&command.body));
        }
        if let Ok(speed) = state.get::<f32>(Instant::now(), 2) {
            if speed.age.is_some_and(|a| a < Duration::from_millis(150)) {
                println!("speed set to {} by a control", speed.value);
            }
        }
    }
}
