//! The trust store: the NodeAssociates this node has paired with, persisted
//! with atomic writes. Only associates here can complete a handshake.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::crypto::{KeyError, NodeId, PublicKey};

/// The most addresses remembered per associate.
pub const MAX_ADDRESSES: usize = 8;

/// What an associate is to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A robot.
    #[default]
    Agent,
    /// An app that drives robots.
    Remote,
    /// A discovery hub.
    Hub,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "agent" => Ok(Self::Agent),
            "remote" => Ok(Self::Remote),
            "hub" => Ok(Self::Hub),
            _ => Err(format!("unknown role {s:?} (agent, remote or hub)")),
        }
    }
}

/// A last known address and how well it has worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressEntry {
    pub addr: SocketAddr,
    /// Up on each success, down on each failure, within ±100.
    pub score: i32,
    pub last_seen_ms: Option<u64>,
}

/// An address-book entry for one trusted node (the seed's NodeAssociate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAssociate {
    pub id: NodeId,
    #[serde(with = "pem_key")]
    pub public_key: PublicKey,
    pub name: String,
    pub role: Role,
    pub addresses: Vec<AddressEntry>,
    /// Unix ms of the first ever successful connection.
    pub first_success_ms: Option<u64>,
    /// Unix ms of the first ever connection attempt, successful or not.
    pub first_attempt_ms: Option<u64>,
    /// Unix ms of the last successful connection.
    pub last_success_ms: Option<u64>,
    /// Unix ms of the last unsuccessful connection attempt.
    pub last_failure_ms: Option<u64>,
}

impl NodeAssociate {
    /// A fresh associate for a key obtained by out-of-band pairing.
    pub fn new(public_key: PublicKey, name: impl Into<String>, role: Role) -> Self {
        Self {
            id: public_key.id(),
            public_key,
            name: name.into(),
            role,
            addresses: Vec::new(),
            first_success_ms: None,
            first_attempt_ms: None,
            last_success_ms: None,
            last_failure_ms: None,
        }
    }

    pub fn with_address(mut self, addr: SocketAddr) -> Self {
        self.note_address(addr, true, None);
        self
    }

    /// The best-scoring address, most recently seen first among equals.
    pub fn best_address(&self) -> Option<SocketAddr> {
        self.addresses
            .iter()
            .max_by_key(|a| (a.score, a.last_seen_ms))
            .map(|a| a.addr)
    }

    /// Records that `addr` worked (or failed), keeping at most
    /// [`MAX_ADDRESSES`] by dropping the worst.
    pub fn note_address(&mut self, addr: SocketAddr, worked: bool, now_ms: Option<u64>) {
        let delta = if worked { 1 } else { -1 };
        if let Some(e) = self.addresses.iter_mut().find(|e| e.addr == addr) {
            e.score = (e.score + delta).clamp(-100, 100);
            if worked {
                e.last_seen_ms = now_ms.or(e.last_seen_ms);
            }
            return;
        }
        if self.addresses.len() >= MAX_ADDRESSES {
            if let Some(worst) = (0..self.addresses.len()).min_by_key(|&i| {
                let e = &self.addresses[i];
                (e.score, e.last_seen_ms)
            }) {
                self.addresses.swap_remove(worst);
            }
        }
        self.addresses.push(AddressEntry {
            addr,
            score: delta,
            last_seen_ms: if worked { now_ms } else { None },
        });
    }

    pub(crate) fn note_attempt(&mut self, now_ms: u64) {
        self.first_attempt_ms.get_or_insert(now_ms);
    }

    pub(crate) fn note_success(&mut self, now_ms: u64) {
        self.first_attempt_ms.get_or_insert(now_ms);
        self.first_success_ms.get_or_insert(now_ms);
        self.last_success_ms = Some(now_ms);
    }

    pub(crate) fn note_failure(&mut self, now_ms: u64) {
        self.first_attempt_ms.get_or_insert(now_ms);
        self.last_failure_ms = Some(now_ms);
    }
}

mod pem_key {
    use super::PublicKey;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(k: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&k.to_pem())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let pem = String::deserialize(d)?;
        PublicKey::from_pem(&pem).map_err(serde::de::Error::custom)
    }
}

/// Errors from loading or saving the trust store.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read or write associates file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("associates file {path} is not valid: {reason}")]
    Format { path: String, reason: String },
    #[error(transparent)]
    Key(#[from] KeyError),
}

#[derive(Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    associates: Vec<NodeAssociate>,
}

/// The set of trusted associates, keyed by node ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    associates: BTreeMap<NodeId, NodeAssociate>,
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an associate (pairing). Its ID must match its key.
    pub fn insert(&mut self, associate: NodeAssociate) -> Result<(), KeyError> {
        if associate.id != associate.public_key.id() {
            return Err(KeyError::Format(
                "associate id does not match its public key".into(),
            ));
        }
        self.associates.insert(associate.id, associate);
        Ok(())
    }

    pub fn remove(&mut self, id: &NodeId) -> Option<NodeAssociate> {
        self.associates.remove(id)
    }

    pub fn get(&self, id: &NodeId) -> Option<&NodeAssociate> {
        self.associates.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &NodeId) -> Option<&mut NodeAssociate> {
        self.associates.get_mut(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &NodeAssociate> {
        self.associates.values()
    }

    pub fn len(&self) -> usize {
        self.associates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.associates.is_empty()
    }

    /// Loads a store; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::new()),
            Err(source) => {
                return Err(TrustError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let file: StoreFile = serde_json::from_str(&text).map_err(|e| TrustError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut store = Self::new();
        for a in file.associates {
            store.insert(a)?;
        }
        Ok(store)
    }

    /// Saves atomically (mode 0600: it says whom we trust and where they are).
    pub fn save(&self, path: &Path) -> Result<(), TrustError> {
        let file = StoreFile {
            version: 1,
            associates: self.associates.values().cloned().collect(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| TrustError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        crate::persist::write_atomic(path, text.as_bytes(), 0o600).map_err(|source| TrustError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}
