//! Counters. Every dropped datagram is counted under exactly one reason, and
//! every reason says whether the datagram was *broken*, *whole* or *hacked*.

use std::time::Duration;

use crate::crypto::NodeId;
use crate::wire::DecodeError;

/// The seed's classification of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Does not follow the protocol's structure.
    Broken,
    /// Well formed (and, for sealed packets, authentic).
    Whole,
    /// Well formed but fails authentication, replay or tamper rules.
    Hacked,
}

macro_rules! drop_reasons {
    ($($name:ident => $verdict:ident, $doc:literal;)*) => {
        /// Why a received datagram (or part of one) was not acted on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum DropReason { $(#[doc = $doc] $name,)* }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            pub const COUNT: usize = Self::ALL.len();
            pub fn verdict(self) -> Verdict {
                match self { $(DropReason::$name => Verdict::$verdict,)* }
            }
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$name => stringify!($name),)* }
            }
        }
    };
}

drop_reasons! {
    Truncated => Broken, "Shorter than its structure requires.";
    BadMagic => Broken, "Not octolink traffic.";
    BadVersion => Broken, "Another protocol version.";
    BadPacketType => Broken, "Unknown packet type.";
    BadSessionId => Broken, "Session id zero where it must not be, or the reverse.";
    Oversized => Broken, "Larger than the configured datagram limit.";
    UnknownFrame => Broken, "An authentic packet held a frame type we cannot skip.";
    BadFrame => Broken, "An authentic packet held a malformed frame.";
    TrailingBytes => Broken, "Bytes after the last field.";
    BadHandshake => Broken, "A malformed handshake message.";
    UntrustedKey => Hacked, "A handshake from a node not in the trust store.";
    NotForUs => Hacked, "A SYN naming another node as responder.";
    BadSignature => Hacked, "A handshake signature that does not verify.";
    UnknownSession => Hacked, "A sealed packet for no session we have.";
    AuthFailed => Hacked, "A sealed packet that fails AES-GCM authentication.";
    Replayed => Hacked, "A packet number already received.";
    TooOld => Hacked, "A packet number behind the replay window.";
    UnexpectedHandshake => Hacked, "A SYN-ACK or ACK that matches no handshake in progress.";
    SynOnLiveSession => Hacked, "A newer SYN while the existing session is alive.";
    StaleSyn => Whole, "A SYN older than the established session.";
    DuelLost => Whole, "The peer's SYN lost the ID duel against our own attempt.";
    CrossedSyn => Whole, "A SYN that crossed a handshake which has just completed.";
    RateLimited => Whole, "An answer that would exceed the RSA signature rate limit.";
    AmplificationRefused => Whole, "An answer that would be larger than the request.";
    VerifyBudget => Whole, "Over the RSA verification budget.";
    SigningBusy => Whole, "A SYN while the endpoint's budget for signing answers is spent.";
    CookieRequired => Whole, "A SYN over its budget without a valid cookie: answered with a RETRY.";
    UnknownCourier => Whole, "A courier frame for no registered, receiving courier.";
}

/// Drop counters, one per [`DropReason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::COUNT]);

impl Default for DropCounters {
    fn default() -> Self {
        Self([0; DropReason::COUNT])
    }
}

impl DropCounters {
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize]
    }
    pub(crate) fn bump(&mut self, reason: DropReason) {
        self.0[reason as usize] += 1;
    }
    /// Sum over every reason with the given verdict.
    pub fn total(&self, verdict: Verdict) -> u64 {
        DropReason::ALL
            .iter()
            .filter(|r| r.verdict() == verdict)
            .map(|&r| self.get(r))
            .sum()
    }
    /// `(name, count)` for every non-zero counter.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r.name(), self.get(r)))
            .filter(|&(_, n)| n > 0)
    }
}

impl From<DecodeError> for DropReason {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Truncated => Self::Truncated,
            DecodeError::BadMagic => Self::BadMagic,
            DecodeError::BadVersion => Self::BadVersion,
            DecodeError::BadPacketType => Self::BadPacketType,
            DecodeError::BadSessionId => Self::BadSessionId,
            DecodeError::Oversized => Self::Oversized,
            DecodeError::UnknownFrame => Self::UnknownFrame,
            DecodeError::BadFrame => Self::BadFrame,
            DecodeError::TrailingBytes => Self::TrailingBytes,
            DecodeError::BadHandshake => Self::BadHandshake,
        }
    }
}

/// Traffic counters for one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

impl Traffic {
    pub(crate) fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

/// Round-trip time estimate (RFC 6298 / RFC 9002 §5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttStats {
    pub smoothed: Option<Duration>,
    pub variance: Duration,
    pub min: Option<Duration>,
    pub latest: Option<Duration>,
    pub samples: u64,
}

/// One session's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStats {
    pub peer: NodeId,
    pub sent: Traffic,
    pub received: Traffic,
    pub rtt: RttStats,
    pub courier_frames_sent: u64,
    pub courier_frames_received: u64,
    pub connected: bool,
    pub packets_lost: u64,
    /// Lost / (acknowledged + lost) ack-eliciting packets.
    pub loss_rate: f64,
    pub congestion_window: u64,
    /// Times the congestion controller cut its window.
    pub congestion_events: u64,
    /// Losses judged random (no queue, not heavy): re-sent, window kept.
    pub random_losses: u64,
    pub bytes_in_flight: u64,
    /// Current pacing rate, bytes/s.
    pub send_rate: u64,
    /// The seed's two-mode link quality signal.
    pub link_good: bool,
    pub link_penalty: std::time::Duration,
}

/// One courier's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CourierStats {
    pub id: u16,
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub frames_received: u64,
    pub bytes_received: u64,
    /// Frames whose packet the peer acknowledged.
    pub frames_delivered: u64,
    /// Frames whose packet was declared lost.
    pub frames_lost: u64,
    /// Messages waiting to be sent, as the courier reports it.
    pub queue_depth: usize,
}

/// Endpoint-wide counters, from [`crate::Endpoint::stats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub received: Traffic,
    pub sent: Traffic,
    /// Datagrams judged whole (authentic and well formed).
    pub whole: u64,
    pub drops: DropCounters,
    pub handshakes_started: u64,
    pub handshakes_completed: u64,
    pub handshakes_failed: u64,
    /// RSA private-key operations (signatures) performed.
    pub rsa_signatures: u64,
    /// Of those, SYNs signed ahead of need for our own attempts.
    pub presigned_syns: u64,
    /// RETRYs sent (return-routability cookies for SYNs over budget).
    pub retries_sent: u64,
    /// RSA signature verifications performed.
    pub rsa_verifications: u64,
    /// Events dropped because the application did not take them in time.
    pub events_dropped: u64,
    /// Datagrams the socket refused for good (reported by whoever owns the
    /// socket, through [`crate::Endpoint::note_send_failures`]); loss
    /// recovery re-sends what they carried.
    pub send_failures: u64,
    /// Peers the engine re-examines on every poll: probing, handshaking,
    /// or with a courier that took no waker. The rest cost nothing until
    /// something happens to them; many polled peers cost CPU per poll.
    pub polled_peers: usize,
    pub sessions: Vec<SessionStats>,
    pub couriers: Vec<CourierStats>,
}

impl Stats {
    pub fn broken(&self) -> u64 {
        self.drops.total(Verdict::Broken)
    }
    pub fn hacked(&self) -> u64 {
        self.drops.total(Verdict::Hacked)
    }
}
