//! The standard octolink couriers.
//!
//! Each courier here is built only on the public [`octolink::Courier`]
//! trait and the [`octolink::stream`] delivery modes, exactly as an
//! application's own courier would be.
//!
//! | courier | delivery | for |
//! |---|---|---|
//! | [`AgentStateCourier`] | versioned state sync with digests | the agent's parameters, written by several controls |
//! | [`BlobCourier`] | chunked, selectively acknowledged | files and other large objects |
//! | [`CommandCourier`] | reliable, ordered, high priority | commands such as an emergency stop |
//! | [`TelemetryCourier`] | unreliable-sequenced, latest value | sensor streams with deadlines |
//! | [`MessageCourier`] | any [`octolink::stream::Delivery`] | an application's own messages |
//! | [`PipeCourier`] | any, through channels | the lowest latency from application threads |
#![forbid(unsafe_code)]

mod agent_state;
pub mod blob;
mod command;
mod message;
mod pipe;
pub mod standard;
mod telemetry;

pub use agent_state::{AgentState, AgentStateConfig, AgentStateCourier, ParamView, StateError, StateEvent};
pub use blob::{BlobConfig, BlobCourier, BlobEvent};
pub use command::{Command, CommandCourier, CommandEvent, COMMAND_PRIORITY};
pub use message::MessageCourier;
pub use octolink::{Courier, CourierId, Mandate};
pub use pipe::{recv_spinning, PipeCourier, PipeReceiver, PipeSender};
pub use telemetry::{Sample, TelemetryConfig, TelemetryCourier, TelemetryEvent};
