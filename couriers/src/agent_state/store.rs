//! The shared parameter store: values, versions and who holds what.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use octolink::{CourierWaker, NodeId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Errors from the parameter API (never from the network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("parameter {0} is not defined")]
    Unknown(u16),
    #[error("parameter {0} is already defined")]
    Duplicate(u16),
    #[error("value of {len} bytes exceeds the {max}-byte parameter limit")]
    TooLarge { len: usize, max: usize },
    #[error("value does not encode or decode as the requested type: {0}")]
    Codec(String),
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateEvent {
    /// A peer's write replaced a parameter's value. One event per
    /// parameter waits at most: writes that arrive before it is read update
    /// it (`writer` is the latest), so an application that reads events
    /// seldom holds at most one per parameter.
    Changed { param: u16, writer: u64 },
}

impl StateEvent {
    /// The parameter it is about.
    pub fn param(&self) -> u16 {
        match self {
            Self::Changed { param, .. } => *param,
        }
    }
}

/// A parameter's value with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamView<T> {
    /// The current value (the failsafe until anyone has written).
    pub value: T,
    /// The value to assume when comms fail.
    pub failsafe: T,
    /// Every peer in session holds exactly this value (false with none).
    pub verified: bool,
    /// Time since the value last changed here, if it ever did.
    pub age: Option<Duration>,
    /// Time since any peer last confirmed holding this value.
    pub since_confirmed: Option<Duration>,
    pub version: u64,
    /// Who wrote it (first 8 bytes of the writer's node id; 0: nobody yet).
    pub writer: u64,
}

/// Largest encoded parameter value.
pub const MAX_VALUE: usize = 256;

#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub name: String,
    pub importance: u8,
    pub failsafe: Vec<u8>,
    pub value: Vec<u8>,
    pub version: u64,
    pub writer: u64,
    pub changed_at: Option<Instant>,
    pub confirmed_by: BTreeSet<NodeId>,
    pub last_confirmed: Option<Instant>,
    /// A [`StateEvent::Changed`] for it waits in the store's queue.
    pub event_queued: bool,
}

impl Param {
    pub fn stamp(&self) -> (u64, u64) {
        (self.version, self.writer)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub writer: u64,
    pub clock: u64,
    pub params: BTreeMap<u16, Param>,
    /// Peers with a session now.
    pub peers: BTreeSet<NodeId>,
    pub events: VecDeque<StateEvent>,
    pub ignored_updates: u64,
    /// The couriers' wakers (by courier number): a change to the state
    /// makes every courier's mandate worth reading again.
    pub wakers: BTreeMap<u64, CourierWaker>,
    pub next_courier: u64,
}

impl Store {
    /// Tells the engine that every courier of this state may have
    /// something new to send.
    pub fn wake_couriers(&self) {
        self.wake_couriers_but(None);
    }

    /// [`Self::wake_couriers`], except courier `but`: the one the engine is
    /// calling, whose mandate it reads again anyway.
    pub fn wake_couriers_but(&self, but: Option<u64>) {
        for (&n, w) in &self.wakers {
            if Some(n) != but {
                w.wake();
            }
        }
    }

    /// Digest of every `(id, version, writer)`: equal digests, equal state.
    pub fn digest(&self) -> u64 {
        let mut h = Sha256::new();
        for (id, p) in &self.params {
            h.update(id.to_be_bytes());
            h.update(p.version.to_be_bytes());
            h.update(p.writer.to_be_bytes());
        }
        let d = h.finalize();
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    /// Merges a value from `peer`, received by courier `receiver`; returns
    /// whether it replaced ours.
    #[allow(clippy::too_many_arguments)]
    pub fn merge(
        &mut self,
        now: Instant,
        receiver: Option<u64>,
        peer: NodeId,
        id: u16,
        version: u64,
        writer: u64,
        value: &[u8],
    ) -> bool {
        let Some(p) = self.params.get_mut(&id) else {
            self.ignored_updates += 1;
            return false;
        };
        if value.len() > MAX_VALUE {
            self.ignored_updates += 1;
            return false;
        }
        self.clock = self.clock.max(version);
        match (version, writer).cmp(&p.stamp()) {
            std::cmp::Ordering::Greater => {
                // In place: a stream of updates allocates nothing.
                p.value.clear();
                p.value.extend_from_slice(value);
                p.version = version;
                p.writer = writer;
                p.changed_at = Some(now);
                if !(p.confirmed_by.len() == 1 && p.confirmed_by.contains(&peer)) {
                    p.confirmed_by.clear();
                    p.confirmed_by.insert(peer);
                }
                p.last_confirmed = Some(now);
                let event = StateEvent::Changed { param: id, writer };
                if std::mem::replace(&mut p.event_queued, true) {
                    if let Some(queued) = self.events.iter_mut().find(|e| e.param() == id) {
                        *queued = event;
                    }
                } else {
                    self.events.push_back(event);
                }
                self.wake_couriers_but(receiver);
                true
            }
            std::cmp::Ordering::Equal => {
                p.confirmed_by.insert(peer);
                p.last_confirmed = Some(now);
                false
            }
            std::cmp::Ordering::Less => false,
        }
    }
}

/// The agent's state: a cheap handle, shared by the application and one
/// [`crate::AgentStateCourier`] per peer.
///
/// ```
/// use std::time::Instant;
/// use octolink_couriers::AgentState;
/// # let me = octolink::NodeId([1; 32]);
/// let state = AgentState::new(me);
/// state.define(1, "max_speed", 200, &0.0f32)?;
/// state.set(Instant::now(), 1, &1.5f32)?;
/// let v = state.get::<f32>(Instant::now(), 1)?;
/// assert_eq!(v.value, 1.5);
/// assert!(!v.verified); // no peer has confirmed it yet
/// # Ok::<(), octolink_couriers::StateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct AgentState {
    pub(crate) inner: Arc<Mutex<Store>>,
}

impl AgentState {
    pub fn new(me: NodeId) -> Self {
        let b = me.as_bytes();
        let writer = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        Self {
            inner: Arc::new(Mutex::new(Store {
                writer,
                ..Store::default()
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic elsewhere while holding the lock leaves consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Defines a parameter. `importance` (0-255) orders re-sends: small or
    /// important state is refreshed more often.
    pub fn define<T: Serialize>(
        &self,
        id: u16,
        name: &str,
        importance: u8,
        failsafe: &T,
    ) -> Result<(), StateError> {
        let failsafe = encode(failsafe)?;
        let mut s = self.lock();
        if s.params.contains_key(&id) {
            return Err(StateError::Duplicate(id));
        }
        s.params.insert(
            id,
            Param {
                name: name.to_string(),
                importance,
                value: failsafe.clone(),
                failsafe,
                version: 0,
                writer: 0,
                changed_at: None,
                confirmed_by: BTreeSet::new(),
                event_queued: false,
                last_confirmed: None,
            },
        );
        s.wake_couriers();
        Ok(())
    }

    /// Writes a parameter locally; it spreads to every peer.
    pub fn set<T: Serialize>(&self, now: Instant, id: u16, value: &T) -> Result<(), StateError> {
        let value = encode(value)?;
        let mut s = self.lock();
        let version = s.clock + 1;
        let writer = s.writer;
        let p = s.params.get_mut(&id).ok_or(StateError::Unknown(id))?;
        p.value = value;
        p.version = version;
        p.writer = writer;
        p.changed_at = Some(now);
        p.confirmed_by.clear();
        s.clock = version;
        s.wake_couriers();
        Ok(())
    }

    /// Reads a parameter with its metadata.
    pub fn get<T: DeserializeOwned>(&self, now: Instant, id: u16) -> Result<ParamView<T>, StateError> {
        let s = self.lock();
        let p = s.params.get(&id).ok_or(StateError::Unknown(id))?;
        let decode = |b: &[u8]| postcard::from_bytes::<T>(b).map_err(|e| StateError::Codec(e.to_string()));
        Ok(ParamView {
            value: decode(&p.value)?,
            failsafe: decode(&p.failsafe)?,
            verified: !s.peers.is_empty() && s.peers.is_subset(&p.confirmed_by),
            age: p.changed_at.map(|t| now.saturating_duration_since(t)),
            since_confirmed: p.last_confirmed.map(|t| now.saturating_duration_since(t)),
            version: p.version,
            writer: p.writer,
        })
    }

    /// The value, or the failsafe if no peer has confirmed it within
    /// `max_silence` (comms have failed, as far as this value goes).
    pub fn get_or_failsafe<T: DeserializeOwned>(
        &self,
        now: Instant,
        id: u16,
        max_silence: Duration,
    ) -> Result<T, StateError> {
        let v = self.get::<T>(now, id)?;
        let fresh = v.since_confirmed.is_some_and(|d| d <= max_silence);
        Ok(if fresh { v.value } else { v.failsafe })
    }

    /// The parameter's name.
    pub fn name(&self, id: u16) -> Option<String> {
        self.lock().params.get(&id).map(|p| p.name.clone())
    }

    pub fn poll_event(&self) -> Option<StateEvent> {
        let mut s = self.lock();
        let e = s.events.pop_front()?;
        if let Some(p) = s.params.get_mut(&e.param()) {
            p.event_queued = false;
        }
        Some(e)
    }

    /// Digest of the whole state (what the sync exchange compares).
    pub fn digest(&self) -> u64 {
        self.lock().digest()
    }

    /// Updates from peers that named no defined parameter or were too big.
    pub fn ignored_updates(&self) -> u64 {
        self.lock().ignored_updates
    }

    /// A courier that keeps `peer` in sync with this state.
    pub fn courier(&self, peer: NodeId, cfg: crate::AgentStateConfig) -> crate::AgentStateCourier {
        crate::AgentStateCourier::new(self.clone(), peer, cfg)
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StateError> {
    let bytes = postcard::to_stdvec(value).map_err(|e| StateError::Codec(e.to_string()))?;
    if bytes.len() > MAX_VALUE {
        return Err(StateError::TooLarge {
            len: bytes.len(),
            max: MAX_VALUE,
        });
    }
    Ok(bytes)
}
