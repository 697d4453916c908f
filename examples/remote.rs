//! The minimal app: connect to the agent, read its state, set a parameter,
//! send a command. Start `cargo run --example agent` first.

use std::time::{Duration, Instant};

use octolink::driver::{ChannelConfig, CommsChannel};
use octolink::sim::fixture_identity;
use octolink::{Event, NodeAssociate, Role};
use octolink_couriers::blob::BlobConfig;
use octolink_couriers::standard::StandardCouriers;
use octolink_couriers::{AgentState, CommandEvent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = ChannelConfig::new("127.0.0.1:0".parse()?, fixture_identity("b"));
    let agent = fixture_identity("a").public().clone();
    let agent_id = agent.id();
    let agent_addr = "127.0.0.1:7400".parse()?;
    config
        .trust
        .insert(NodeAssociate::new(agent, "agent", Role::Agent).with_address(agent_addr))?;
    let channel = CommsChannel::start(config)?;

    let state = AgentState::new(channel.node_id());
    state.define(1, "battery", 200, &1.0f32)?;
    state.define(2, "speed", 255, &0.0f32)?;
    let couriers = StandardCouriers::install(&channel, agent_id, &state, BlobConfig::default())?;

    channel.connect(agent_id)?;
    if channel
        .wait_for(Duration::from_secs(5), |e| matches!(e, Event::Connected { .. }))
        .is_none()
    {
        return Err("no agent at 127.0.0.1:7400 (run `cargo run --example agent`)".into());
    }
    println!("connected");
    state.set(Instant::now(), 2, &0.5f32)?;
    let id = couriers.send_command(&channel, b"wave".to_vec(), Some(Duration::from_secs(2)))?;

    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        let battery = state.get::<f32>(Instant::now(), 1)?;
        println!(
            "battery {:.4} (verified: {}, age {:?})",
            battery.value, battery.verified, battery.age
        );
        for e in couriers.take_command_events(&channel)? {
            if e == CommandEvent::Delivered(id) {
                println!("the agent got the command");
            }
        }
    }
    channel.shutdown()?;
    Ok(())
}
