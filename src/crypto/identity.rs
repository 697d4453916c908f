//! Node identity: an RSA key pair whose public key's SHA-256 is the node ID.
//!
//! Private-key use is limited to RSA-PSS signing of handshake messages. There
//! is no RSA decryption anywhere (RUSTSEC-2023-0071), and signing is gated by
//! the endpoint so that it only ever happens for a peer that has already
//! proven a trusted key.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rand::{CryptoRng, RngCore};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::pss::{BlindedSigningKey, Signature, VerifyingKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

/// Errors from loading, saving or generating keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a valid PEM-encoded RSA key: {0}")]
    Format(String),
    #[error("unsupported RSA key size {0} bits (use 2048, 3072 or 4096)")]
    Size(usize),
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// A node's identity: SHA-256 of its public key's DER (SPKI) encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub [u8; 32]);

/// Lexicographic byte order, as derived, but compared as four big-endian
/// words: ids are hashes, so the first word almost always decides, and the
/// session directory compares ids on every lookup.
impl Ord for NodeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let word = |id: &Self, i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&id.0[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        (0..4)
            .map(|i| word(self, i).cmp(&word(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A hasher for keys that are random already: node ids (SHA-256 outputs of
/// keys the endpoint chose to trust) and the session ids it drew itself.
/// It takes the first eight bytes and spreads them with one multiply
/// (hash maps use the top bits too), instead of hashing them again. Fixed,
/// so iteration order is the same on every run. Not for keys an attacker
/// chooses.
#[derive(Default)]
pub struct RandomKeyHasher(u64);

impl std::hash::Hasher for RandomKeyHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut w = [0u8; 8];
        let n = bytes.len().min(8);
        w[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(w);
    }
}

impl NodeId {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex(&self.0[..4])
    }

    /// The ID duel: both sides compute the same winner from the two IDs.
    /// The lower ID wins and keeps the initiator role.
    pub fn wins_duel_against(&self, other: &NodeId) -> bool {
        self < other
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bytes = unhex(s).ok_or_else(|| KeyError::Format("node id is not hex".into()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::Format("node id must be 64 hex digits".into()))?;
        Ok(NodeId(arr))
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A peer's RSA public key, as held in the trust store.
#[derive(Clone)]
pub struct PublicKey {
    key: RsaPublicKey,
    verifying: VerifyingKey<Sha256>,
    id: NodeId,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} bits, {:?})", self.bits(), self.id)
    }
}

impl PublicKey {
    fn from_rsa(key: RsaPublicKey) -> Result<Self, KeyError> {
        let bits = key.size() * 8;
        if !matches!(bits, 2048 | 3072 | 4096) {
            return Err(KeyError::Size(bits));
        }
        let der = key
            .to_public_key_der()
            .map_err(|e| KeyError::Format(e.to_string()))?;
        let id = NodeId(Sha256::digest(der.as_bytes()).into());
        Ok(Self {
            verifying: VerifyingKey::new(key.clone()),
            key,
            id,
        })
    }

    /// Parses a PEM `PUBLIC KEY` (SPKI) block.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key =
            RsaPublicKey::from_public_key_pem(pem.trim()).map_err(|e| KeyError::Format(e.to_string()))?;
        Self::from_rsa(key)
    }

    pub fn to_pem(&self) -> String {
        // Encoding a key we already hold as valid cannot fail.
        self.key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn bits(&self) -> usize {
        self.key.size() * 8
    }

    /// Length of this key's signatures in bytes.
    pub fn signature_len(&self) -> usize {
        self.key.size()
    }

    /// Verifies an RSA-PSS-SHA256 signature. Public-key work only.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.signature_len() {
            return false;
        }
        match Signature::try_from(signature) {
            Ok(sig) => self.verifying.verify(message, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// This node's key pair.
#[derive(Clone)]
pub struct Identity {
    signing: BlindedSigningKey<Sha256>,
    private: RsaPrivateKey,
    public: PublicKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({:?})", self.public)
    }
}

impl Identity {
    /// Generates a new key pair (slow: seconds for 3072 bits in debug builds).
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R, bits: usize) -> Result<Self, KeyError> {
        if !matches!(bits, 2048 | 3072 | 4096) {
            return Err(KeyError::Size(bits));
        }
        let private = RsaPrivateKey::new(rng, bits).map_err(|e| KeyError::Generate(e.to_string()))?;
        Self::from_private(private)
    }

    fn from_private(private: RsaPrivateKey) -> Result<Self, KeyError> {
        let public = PublicKey::from_rsa(private.to_public_key())?;
        Ok(Self {
            signing: BlindedSigningKey::new(private.clone()),
            private,
            public,
        })
    }

    /// Parses a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let private =
            RsaPrivateKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Format(e.to_string()))?;
        Self::from_private(private)
    }

    /// The private key as PKCS#8 PEM. Handle with care.
    pub fn to_pem(&self) -> String {
        self.private
            .to_pkcs8_pem(LineEnding::LF)
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    /// Loads a private key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pem(&pem)
    }

    /// Saves the private key with mode 0600, atomically.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        crate::persist::write_atomic(path, self.to_pem().as_bytes(), 0o600).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn id(&self) -> NodeId {
        self.public.id
    }

    /// Signs with RSA-PSS-SHA256. Blinded; the caller rate-limits.
    pub fn sign<R: RngCore + CryptoRng>(&self, rng: &mut R, message: &[u8]) -> Vec<u8> {
        self.signing.sign_with_rng(rng, message).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn node_ids_order_as_their_bytes(
            a in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            b in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            shared in 0usize..32,
        ) {
            // Often equal up to `shared` bytes, so every word is exercised.
            let mut b = b;
            b[..shared].copy_from_slice(&a[..shared]);
            proptest::prop_assert_eq!(NodeId(a).cmp(&NodeId(b)), a.cmp(&b));
        }
    }

    #[test]
    fn node_id_hex_round_trips() {
        let id = NodeId([0xab; 32]);
        let s = id.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<NodeId>().unwrap(), id);
        assert!("zz".parse::<NodeId>().is_err());
        assert!("abcd".parse::<NodeId>().is_err());
    }

    #[test]
    fn duel_has_exactly_one_winner() {
        let a = NodeId([1; 32]);
        let b = NodeId([2; 32]);
        assert!(a.wins_duel_against(&b));
        assert!(!b.wins_duel_against(&a));
    }
}
