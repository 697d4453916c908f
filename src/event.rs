//! What the engine tells the application, via [`crate::Endpoint::poll_event`].

use std::net::SocketAddr;
use std::time::Duration;

use crate::crypto::NodeId;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// [`crate::Endpoint::close`] was called.
    ClosedLocally,
    /// The peer sent a close frame.
    ClosedByPeer { code: u16, reason: String },
    /// Nothing authenticated arrived for the idle timeout.
    IdleTimeout,
    /// A newer session with the same peer replaced this one (peer restart).
    Replaced,
    /// The session used up its 2^48 packet numbers; a new handshake follows.
    PacketNumbersExhausted,
}

/// Why a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// No answer within the handshake timeout.
    TimedOut,
}

/// Security-relevant observations the user should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// A valid, newer SYN arrived while the existing session is still alive:
    /// someone holding a copy of the peer's key, or a replay, is trying to
    /// take over the session. The SYN was ignored.
    SynOnLiveSession { peer: NodeId, from: SocketAddr },
}

/// An engine event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A session is established (or came back after a disconnect).
    Connected {
        peer: NodeId,
        addr: SocketAddr,
        /// Whether this side sent the SYN.
        initiator: bool,
    },
    /// A connection attempt gave up; probing continues per the liveness
    /// schedule.
    ConnectFailed { peer: NodeId, error: ConnectError },
    /// A session stopped carrying traffic.
    Disconnected { peer: NodeId, reason: DisconnectReason },
    /// A disconnected session's state was discarded.
    SessionRemoved { peer: NodeId },
    /// The peer's authenticated traffic now comes from a new address.
    AddressChanged { peer: NodeId, addr: SocketAddr },
    /// The seed's two-mode link quality signal changed (see
    /// `EndpointConfig::link_quality`).
    LinkQuality { peer: NodeId, good: bool },
    /// A courier registered with notification on
    /// ([`crate::Endpoint::set_courier_notify`]) received data.
    CourierData { peer: NodeId, courier: crate::CourierId },
    /// Answer to [`crate::Endpoint::ping`].
    Pong { peer: NodeId, token: u64, rtt: Duration },
    /// See [`Alert`].
    Alert(Alert),
}
