//! Engine configuration. Every duration has a default chosen for a robot on
//! a LAN or Wi-Fi link; all are plain fields so tests can shrink them.

use std::time::Duration;

use crate::wire::{MAX_DATAGRAM, MIN_DATAGRAM};

/// Settings for an [`crate::Endpoint`].
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Largest datagram this endpoint emits or accepts, 512..=8952
    /// ([`crate::wire::ETHERNET_DATAGRAM`], 1452, on a 1500-byte MTU link).
    /// A session uses the smaller of the two ends' values.
    pub max_datagram: usize,
    /// First handshake re-send delay; doubles on each re-send.
    pub handshake_initial_rto: Duration,
    /// Cap on the handshake re-send delay.
    pub handshake_max_rto: Duration,
    /// An attempt that has not completed after this long fails with an event.
    pub handshake_timeout: Duration,
    /// Minimum spacing of RSA signatures made for one peer, for answers to
    /// its SYNs and for our own new attempts (the seed's 3 s rule).
    pub signature_interval: Duration,
    /// RSA signatures per second the endpoint spends answering SYNs, all
    /// peers together (a tenth of that, at least one, may go at once). Each
    /// costs over a millisecond of the loop's core: a fleet reconnecting at
    /// once must not starve the sessions already up. A SYN beyond the pace
    /// is given a slot, first come first served, and answered then; with
    /// the slots of the next half `handshake_timeout` all taken it is
    /// dropped before any RSA work, and its initiator's re-send tries again
    /// (both counted as `SigningBusy`).
    pub answer_signatures_per_second: u32,
    /// With nothing else to send, a session pings after this much quiet.
    pub keepalive_interval: Duration,
    /// A session with no authenticated packet for this long is disconnected.
    pub idle_timeout: Duration,
    /// A disconnected session is removed after this much further silence.
    pub session_expiry: Duration,
    /// A live session that has heard nothing for this long counts as silent,
    /// so a new SYN from its peer (a restart) replaces it.
    pub restart_silence: Duration,
    /// Longest an ack-eliciting packet waits for its acknowledgement to ride
    /// on other data (at most 1 s). A value other than
    /// [`DEFAULT_MAX_ACK_DELAY`] is announced to each peer, whose probe
    /// timeout allows for it. A server of many periodic publishers raises
    /// it (say to 100 ms) so that one acknowledgement covers two packets
    /// (one goes at once after every second ack-eliciting packet) and goes
    /// while the session is still in the caches; the price is slower loss
    /// detection for the peer's last packet in a burst.
    pub max_ack_delay: Duration,
    /// Honeymoon length at start-up.
    pub honeymoon: Duration,
    /// Probe interval for inactive associates during honeymoon.
    pub honeymoon_interval: Duration,
    /// Outside honeymoon the probe interval starts here...
    pub probe_min_interval: Duration,
    /// ...doubles for every this-much time since the peer's last activity...
    pub probe_doubling: Duration,
    /// ...and is capped here.
    pub probe_max_interval: Duration,
    /// The last active peer is probed as if no older than this.
    pub last_active_age_cap: Duration,
    /// After an explicit close, a peer is left alone this long.
    pub celibacy: Duration,
    /// Try to connect to every associate with a known address from the start
    /// (an agent contacting its trusted controls).
    pub connect_all: bool,
    /// Events beyond this many, unpolled, are dropped and counted.
    pub max_queued_events: usize,
    /// Cap on one session's send rate, bytes per second (pacing).
    pub max_send_rate: u64,
    /// Thresholds of the good/bad link quality signal.
    pub link_quality: crate::session::LinkQualityConfig,
}

/// How long a node that announces nothing holds acknowledgements at most
/// (docs/protocol.md).
pub const DEFAULT_MAX_ACK_DELAY: Duration = Duration::from_millis(5);

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            max_datagram: MIN_DATAGRAM,
            handshake_initial_rto: Duration::from_millis(250),
            handshake_max_rto: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(8),
            signature_interval: Duration::from_secs(3),
            answer_signatures_per_second: 200,
            keepalive_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            session_expiry: Duration::from_secs(30),
            restart_silence: Duration::from_secs(2),
            max_ack_delay: DEFAULT_MAX_ACK_DELAY,
            honeymoon: Duration::from_secs(30),
            honeymoon_interval: Duration::from_secs(1),
            probe_min_interval: Duration::from_secs(1),
            probe_doubling: Duration::from_secs(600),
            probe_max_interval: Duration::from_secs(900),
            last_active_age_cap: Duration::from_secs(3600),
            celibacy: Duration::from_secs(60),
            connect_all: false,
            max_queued_events: 4096,
            max_send_rate: 50_000_000,
            link_quality: crate::session::LinkQualityConfig::default(),
        }
    }
}

/// A configuration value out of its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl EndpointConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_DATAGRAM..=MAX_DATAGRAM).contains(&self.max_datagram) {
            return Err(ConfigError(format!(
                "max_datagram {} is outside {MIN_DATAGRAM}..={MAX_DATAGRAM}",
                self.max_datagram
            )));
        }
        if self.handshake_initial_rto.is_zero() || self.keepalive_interval.is_zero() {
            return Err(ConfigError(
                "re-send and keepalive intervals must be non-zero".into(),
            ));
        }
        if self.idle_timeout <= self.keepalive_interval {
            return Err(ConfigError("idle_timeout must exceed keepalive_interval".into()));
        }
        if self.max_ack_delay.as_micros() > u128::from(crate::wire::MAX_ANNOUNCED_ACK_DELAY_US) {
            return Err(ConfigError("max_ack_delay must be at most 1 s".into()));
        }
        if self.answer_signatures_per_second == 0 {
            return Err(ConfigError(
                "answer_signatures_per_second must be non-zero".into(),
            ));
        }
        if self.probe_min_interval.is_zero() || self.honeymoon_interval.is_zero() {
            return Err(ConfigError("probe intervals must be non-zero".into()));
        }
        Ok(())
    }
}
