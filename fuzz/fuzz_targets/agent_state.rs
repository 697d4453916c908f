//! The AgentState courier's decoder and merge on arbitrary payloads: no
//! panic, and values never exceed their bound.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use octolink::{Courier, CourierContext, NodeId};
use octolink_couriers::{AgentState, AgentStateConfig};

fuzz_target!(|data: &[u8]| {
    let state = AgentState::new(NodeId([1; 32]));
    let _ = state.define(1, "speed", 200, &0.0f32);
    let _ = state.define(2, "mode", 255, &String::new());
    let mut courier = state.courier(NodeId([2; 32]), AgentStateConfig::default());
    let ctx = CourierContext {
        now: Instant::now(),
        peer: Some(NodeId([2; 32])),
        rtt: None,
    };
    courier.on_session_start(&ctx);
    courier.on_receive(&ctx, data);
    // Whatever arrived, reading stays well-defined.
    let _ = state.get::<f32>(ctx.now, 1);
    let _ = state.get::<String>(ctx.now, 2);
});
