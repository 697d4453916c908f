//! Session keys: HKDF-SHA256 over the X25519 shared secret, salted with the
//! handshake transcript hash, gives one AES-256-GCM key and IV per direction.

use hkdf::Hkdf;
use sha2::Sha256;

use super::gcm::Aes256Gcm;
use crate::wire::TAG_LEN;

/// The packet failed authentication (tampered, wrong key, or forged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("packet failed authentication")]
pub struct OpenError;

/// One direction's AEAD key and IV.
#[derive(Clone)]
pub struct DirectionKeys {
    cipher: Aes256Gcm,
    iv: [u8; 12],
}

impl std::fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectionKeys(..)")
    }
}

impl DirectionKeys {
    fn new(key: &[u8; 32], iv: [u8; 12]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key),
            iv,
        }
    }

    /// The per-packet nonce: the IV XOR the packet number (RFC 9001 §5.3),
    /// unique as long as packet numbers never repeat under this key.
    fn nonce(&self, packet_number: u64) -> [u8; 12] {
        let mut n = self.iv;
        for (dst, src) in n[4..].iter_mut().zip(packet_number.to_be_bytes()) {
            *dst ^= src;
        }
        n
    }

    /// Encrypts `body` in place with `header` as associated data and returns
    /// the tag.
    pub fn seal(&self, packet_number: u64, header: &[u8], body: &mut [u8]) -> [u8; TAG_LEN] {
        // GCM only refuses texts over 64 GiB; bodies fit in a datagram.
        self.cipher
            .seal(&self.nonce(packet_number), header, body)
            .unwrap_or([0; TAG_LEN])
    }

    /// Decrypts `body` in place if `tag` authenticates it and `header`.
    pub fn open(
        &self,
        packet_number: u64,
        header: &[u8],
        body: &mut [u8],
        tag: &[u8],
    ) -> Result<(), OpenError> {
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError)?;
        self.cipher
            .open(&self.nonce(packet_number), header, body, tag)
            .map_err(|_| OpenError)
    }
}

/// The keys of one session, from this endpoint's point of view.
#[derive(Debug, Clone)]
pub struct SessionKeys {
    pub send: DirectionKeys,
    pub recv: DirectionKeys,
}

/// Derives both directions' keys. `initiator` says which side we are, so
/// the two ends agree on which key is whose.
pub fn derive_session_keys(
    shared_secret: &[u8; 32],
    transcript_hash: &[u8; 32],
    initiator: bool,
) -> SessionKeys {
    let hk = Hkdf::<Sha256>::new(Some(transcript_hash), shared_secret);
    let mut okm = [0u8; 2 * (32 + 12)];
    // 88 bytes is far below HKDF-SHA256's 8160-byte limit.
    let _ = hk.expand(b"octolink/1 session keys", &mut okm);
    let (i2r, r2i) = okm.split_at(44);
    let dir = |m: &[u8]| {
        let mut key = [0u8; 32];
        let mut iv = [0u8; 12];
        key.copy_from_slice(&m[..32]);
        iv.copy_from_slice(&m[32..44]);
        DirectionKeys::new(&key, iv)
    };
    let (i2r, r2i) = (dir(i2r), dir(r2i));
    if initiator {
        SessionKeys { send: i2r, recv: r2i }
    } else {
        SessionKeys { send: r2i, recv: i2r }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_derive_matching_keys_and_tampering_fails() {
        let a = derive_session_keys(&[7; 32], &[9; 32], true);
        let b = derive_session_keys(&[7; 32], &[9; 32], false);
        let header = [1u8; 14];
        let mut body = *b"hello robot";
        let tag = a.send.seal(5, &header, &mut body);
        assert_ne!(&body, b"hello robot");
        let mut copy = body;
        b.recv.open(5, &header, &mut copy, &tag).unwrap();
        assert_eq!(&copy, b"hello robot");
        // Wrong packet number, header or direction must all fail.
        let mut copy = body;
        assert!(b.recv.open(6, &header, &mut copy, &tag).is_err());
        let mut copy = body;
        assert!(b.recv.open(5, &[2u8; 14], &mut copy, &tag).is_err());
        let mut copy = body;
        assert!(a.recv.open(5, &header, &mut copy, &tag).is_err());
    }
}
