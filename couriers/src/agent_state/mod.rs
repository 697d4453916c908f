//! AgentStateCourier: the agent's state, shared with every control.
//!
//! Parameters are typed (serde + postcard) and identified by a `u16` that
//! both ends define alike. Each carries metadata: the value to assume when
//! comms fail, whether every peer in session has *verified* (holds) the
//! current value, and how fresh it is.
//!
//! Several controls may write at once. Every write gets a version from a
//! Lamport clock, and the writer's id breaks ties, so every node keeps the
//! value with the largest `(version, writer)`: a deterministic order that
//! survives reordering and clock skew, and all nodes converge.

mod courier;
mod store;
mod wire;

pub use courier::{AgentStateConfig, AgentStateCourier};
pub use store::{AgentState, ParamView, StateError, StateEvent};
