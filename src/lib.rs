//! # octolink
//!
//! Low-latency, authenticated and encrypted robot communications over UDP.
//!
//! The heart of the crate is [`Endpoint`], a sans-IO CommsChannel engine:
//! it keeps a directory of sessions with trusted peers (each established by
//! a signed SYN / SYN-ACK / ACK handshake with ephemeral X25519 keys) and
//! fills each small packet with data from registered [`Courier`]s, chosen by
//! their [`Mandate`]s. It does no I/O of its own: feed it datagrams and
//! time, and send what it gives back.
//!
//! See `docs/architecture.md` for the layers and `docs/protocol.md` for the
//! wire format.
#![forbid(unsafe_code)]

pub mod config;
pub mod courier;
pub mod crypto;
pub mod driver;
mod endpoint;
pub mod event;
pub mod handshake;
pub mod liveness;
mod persist;
pub mod scheduler;
pub mod session;
pub mod stats;
pub mod stream;
pub mod trust;
mod waker;
pub mod wire;

#[cfg(feature = "sim")]
pub mod sim;

pub use config::{ConfigError, EndpointConfig, DEFAULT_MAX_ACK_DELAY};
pub use courier::{
    Courier, CourierContext, CourierId, CourierScope, CourierWaker, Mandate, PayloadFull, PayloadWriter,
};
pub use crypto::{Identity, KeyError, NodeId, PublicKey};
pub use endpoint::{ApiError, CourierHandle, Endpoint, Transmit};
pub use event::{Alert, ConnectError, DisconnectReason, Event};
pub use stats::{DropReason, SessionStats, Stats, Verdict};
pub use trust::{NodeAssociate, Role, TrustError, TrustStore};
pub use waker::WakeHook;
