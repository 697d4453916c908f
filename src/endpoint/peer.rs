//! Everything the endpoint knows about one associate: its session, the
//! handshake in progress either way, and its liveness schedule.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use x25519_dalek::EphemeralSecret;

use crate::handshake::Transcript;
use crate::liveness::Liveness;
use crate::session::Session;

/// A SYN signed before it is needed, so that connecting puts one RSA
/// signature fewer on the handshake's critical path.
pub struct Presigned {
    pub local_id: u32,
    pub secret: EphemeralSecret,
    pub ephemeral: [u8; 32],
    pub syn: Vec<u8>,
    pub transcript: Transcript,
    pub signed_at: Instant,
}

/// Our SYN, waiting for its SYN-ACK.
pub struct Outgoing {
    pub local_id: u32,
    pub addr: SocketAddr,
    pub secret: Option<EphemeralSecret>,
    pub ephemeral: [u8; 32],
    /// The signed SYN, re-sent byte for byte so the peer can answer from its
    /// cache instead of signing again.
    pub syn: Vec<u8>,
    pub transcript: Transcript,
    pub started: Instant,
    pub next_resend: Instant,
    pub rto: Duration,
    /// RETRYs followed (each adds or replaces the SYN's cookie).
    pub retries_followed: u32,
}

/// What the responder keeps while it waits for the initiator's ACK.
pub struct Confirming {
    pub transcript: Transcript,
    pub initiator_ephemeral: [u8; 32],
}

/// The SYN we last answered, and our answer, so that a re-sent identical
/// SYN gets the same SYN-ACK rather than a new signature.
pub struct AnsweredSyn {
    pub digest: [u8; 32],
    pub syn_ack: Vec<u8>,
    pub local_id: u32,
}

/// A verified SYN we may not answer yet (signature rate limit).
pub struct DeferredSyn {
    pub at: Instant,
    pub from: SocketAddr,
    pub datagram: Vec<u8>,
    /// `at` is a slot reserved among the endpoint's answer signatures.
    pub reserved: bool,
}

#[derive(Default)]
pub struct Peer {
    /// The established session (confirmed), if any.
    pub session: Option<Box<Session>>,
    /// A responder session awaiting the ACK, with what confirming it needs.
    pub pending: Option<Box<(Session, Confirming)>>,
    pub outgoing: Option<Box<Outgoing>>,
    pub answered: Option<AnsweredSyn>,
    pub deferred: Option<DeferredSyn>,
    pub liveness: Liveness,
    /// When we last signed a SYN-ACK for this peer.
    pub last_answer_signature: Option<Instant>,
    /// When we last started an attempt of our own (signed a SYN, or took
    /// the presigned one).
    pub last_attempt_signature: Option<Instant>,
    pub presigned: Option<Box<Presigned>>,
    /// Courier slots scoped to this peer.
    pub courier_slots: Vec<usize>,
    /// Its place in the endpoint's schedule.
    pub sched: super::schedule::PeerSlot,
}

impl Peer {
    pub fn active_session(&self) -> Option<&Session> {
        self.session.as_deref().filter(|s| s.is_active())
    }

    /// The session (established or pending) with this local id.
    pub fn session_by_local_id(&mut self, local_id: u32) -> Option<&mut Session> {
        if let Some(s) = self.session.as_deref_mut().filter(|s| s.local_id == local_id) {
            return Some(s);
        }
        self.pending
            .as_deref_mut()
            .map(|(s, _)| s)
            .filter(|s| s.local_id == local_id)
    }
}
