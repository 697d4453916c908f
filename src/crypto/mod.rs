//! Cryptography: node identities (RSA), session key agreement (X25519 +
//! HKDF-SHA256), packet protection (AES-256-GCM) and the replay window.

mod gcm;
mod identity;
mod keys;
mod replay;

pub use identity::{Identity, KeyError, NodeId, PublicKey, RandomKeyHasher};
pub use keys::{derive_session_keys, DirectionKeys, OpenError, SessionKeys};
pub use replay::{ReplayVerdict, ReplayWindow};
