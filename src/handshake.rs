//! Handshake cryptography: the running transcript hash, signing and
//! verifying messages over it, and the X25519 key agreement.
//!
//! Each message is signed with RSA-PSS-SHA256 over
//! `label || transcript-hash-so-far || header-and-fields`, and then folded
//! into the transcript together with its signature. Session keys come from
//! HKDF over the X25519 secret, salted with the transcript after SYN-ACK.

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use x25519_dalek::{EphemeralSecret, PublicKey as X25519Public};

use crate::crypto::{derive_session_keys, Identity, PublicKey, SessionKeys};
use crate::wire::{append_signature_to, HandshakeFields, SignedMessage, Writer, MAX_DATAGRAM};

pub const SYN_LABEL: &[u8] = b"octolink/1 SYN";
pub const SYN_ACK_LABEL: &[u8] = b"octolink/1 SYN-ACK";
pub const ACK_LABEL: &[u8] = b"octolink/1 ACK";

/// Bytes of a SYN besides its signature: header, fields, signature length.
pub const SYN_FIXED_LEN: usize = crate::wire::HEADER_LEN + 32 + 32 + 4 + 16 + 32 + 8 + 2 + 2;

/// The running hash of every handshake message so far.
#[derive(Clone, Debug)]
pub struct Transcript(Sha256);

impl Default for Transcript {
    fn default() -> Self {
        Self(Sha256::new_with_prefix(b"octolink/1 transcript"))
    }
}

impl Transcript {
    pub fn hash(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }

    fn absorb(&mut self, signed: &[u8], signature: &[u8]) {
        self.0.update((signed.len() as u32).to_be_bytes());
        self.0.update(signed);
        self.0.update((signature.len() as u32).to_be_bytes());
        self.0.update(signature);
    }

    fn to_be_signed(&self, label: &[u8], signed: &[u8]) -> Vec<u8> {
        let mut tbs = Vec::with_capacity(label.len() + 32 + signed.len());
        tbs.extend_from_slice(label);
        tbs.extend_from_slice(&self.hash());
        tbs.extend_from_slice(signed);
        tbs
    }
}

/// Encoded size of a signed message with a `sig_len`-byte signature.
pub fn message_len<M: HandshakeFields>(msg: &M, session_id: u32, sig_len: usize) -> usize {
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut w = Writer::new(&mut buf);
    msg.write_unsigned(session_id, &mut w)
        .map_or(usize::MAX, |n| n + 2 + sig_len)
}

/// Signs and encodes a handshake message; returns the datagram and the
/// transcript including it.
pub fn sign_message<M: HandshakeFields, R: RngCore + CryptoRng>(
    msg: &M,
    session_id: u32,
    label: &[u8],
    transcript: &Transcript,
    identity: &Identity,
    rng: &mut R,
    pad_to: usize,
) -> (Vec<u8>, Transcript) {
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut w = Writer::new(&mut buf);
    // Handshake fields are fixed-size and far below MAX_DATAGRAM.
    let signed_len = msg.write_unsigned(session_id, &mut w).unwrap_or(0);
    let signature = identity.sign(rng, &transcript.to_be_signed(label, w.written()));
    let mut next = transcript.clone();
    next.absorb(&w.written()[..signed_len], &signature);
    let pad_to = pad_to.min(MAX_DATAGRAM);
    let _ = append_signature_to(&mut w, &signature, pad_to);
    (w.written().to_vec(), next)
}

/// Verifies a decoded message against the transcript so far; returns the
/// transcript including it.
pub fn verify_message<M>(
    m: &SignedMessage<'_, M>,
    label: &[u8],
    transcript: &Transcript,
    key: &PublicKey,
) -> Option<Transcript> {
    if !key.verify(&transcript.to_be_signed(label, m.signed), m.signature) {
        return None;
    }
    let mut next = transcript.clone();
    next.absorb(m.signed, m.signature);
    Some(next)
}

/// A fresh X25519 key pair for one handshake.
pub fn ephemeral<R: RngCore + CryptoRng>(rng: &mut R) -> (EphemeralSecret, [u8; 32]) {
    let secret = EphemeralSecret::random_from_rng(rng);
    let public = X25519Public::from(&secret).to_bytes();
    (secret, public)
}

/// Completes the key agreement. `None` if the peer's key is a low-order
/// point (a non-contributory exchange, as a forged key would give).
pub fn agree(
    secret: EphemeralSecret,
    their_public: [u8; 32],
    transcript: &Transcript,
    initiator: bool,
) -> Option<SessionKeys> {
    let shared = secret.diffie_hellman(&X25519Public::from(their_public));
    if !shared.was_contributory() {
        return None;
    }
    Some(derive_session_keys(
        shared.as_bytes(),
        &transcript.hash(),
        initiator,
    ))
}
