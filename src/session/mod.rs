//! An established (or confirming) session: keys, packet numbers, replay
//! protection, acknowledgement and RTT state, and what it owes the peer.

mod ack;
mod congestion;
mod link_quality;
mod pacer;
mod recovery;
mod rtt;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use ack::{AckDelayAnnouncement, AckTracker};
pub use congestion::NewReno;
pub use link_quality::{LinkQuality, LinkQualityConfig};
pub use pacer::Pacer;
pub use recovery::{FrameRecord, Outcome, Recovery};
pub use rtt::RttEstimator;

use crate::crypto::{NodeId, ReplayWindow, SessionKeys};
use crate::stats::{SessionStats, Traffic};

/// Most pongs owed at once; more pings than this before we can answer are
/// answered only up to this many (pings are idempotent).
pub const MAX_PENDING_PONGS: usize = 8;
/// Most application pings outstanding per session.
pub const MAX_APP_PINGS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Carrying traffic.
    Active,
    /// Idle timeout passed; kept until expiry in case the link heals.
    Disconnected { since: Instant },
}

#[derive(Debug)]
pub struct Session {
    pub peer: NodeId,
    pub local_id: u32,
    pub remote_id: u32,
    pub addr: SocketAddr,
    pub keys: SessionKeys,
    pub initiator: bool,
    /// The responder waits for the ACK, or the first authentic data packet,
    /// before it counts the session as established.
    pub confirmed: bool,
    /// The peer's timestamp from its handshake message that made this
    /// session; older SYNs are ignored.
    pub peer_ts_us: u64,
    pub max_datagram: usize,
    pub pacer: Pacer,
    pub next_pn: u64,
    pub replay: ReplayWindow,
    pub acks: AckTracker,
    /// Our acknowledgement delay, until the peer has heard it.
    pub ack_delay_announcement: AckDelayAnnouncement,
    /// How long the peer holds acknowledgements: what it announced, else
    /// the protocol's default. Our probe timeout allows for it.
    pub peer_max_ack_delay: Duration,
    pub recovery: Recovery,
    pub cc: NewReno,
    /// Set when sending was limited by the congestion window since the
    /// last acknowledgement (the window only grows when it is the limit).
    pub window_limited: bool,
    pub quality: LinkQuality,
    /// The application's cap on this session's send rate, bytes/s.
    pub rate_cap: Option<u64>,
    pub max_send_rate: u64,
    pub rtt: RttEstimator,
    pub created: Instant,
    pub last_recv: Instant,
    pub last_send: Instant,
    pub state: SessionState,
    pub pongs_due: Vec<u64>,
    pub ping_due: Option<u64>,
    pub app_pings: Vec<(u64, Instant)>,
    pub close_due: Option<u16>,
    /// Per broadcast courier slot: the payload generation last sent here.
    pub broadcast_sent: Vec<u64>,
    /// The initiator's signed ACK, re-sent if a duplicate SYN-ACK arrives.
    pub hs_ack: Option<Vec<u8>>,
    /// Initiator only, until the responder is heard from: when to re-send
    /// the ACK (with a ping behind it), and the current back-off.
    pub confirm_probe: Option<(Instant, Duration)>,
    /// An internal ping to send in the next packet.
    pub keepalive_due: bool,
    pub sent: Traffic,
    pub received: Traffic,
    pub courier_frames_sent: u64,
    pub courier_frames_received: u64,
}

/// What it takes to make a session.
pub struct SessionParams {
    pub peer: NodeId,
    pub local_id: u32,
    pub remote_id: u32,
    pub addr: SocketAddr,
    pub keys: SessionKeys,
    pub initiator: bool,
    pub peer_ts_us: u64,
    pub max_datagram: usize,
    /// Send-rate cap in bytes per second.
    pub max_send_rate: u64,
    /// How long we hold acknowledgements.
    pub max_ack_delay: Duration,
}

impl Session {
    pub fn new(p: SessionParams, now: Instant) -> Self {
        Self {
            peer: p.peer,
            local_id: p.local_id,
            remote_id: p.remote_id,
            addr: p.addr,
            keys: p.keys,
            initiator: p.initiator,
            confirmed: p.initiator,
            peer_ts_us: p.peer_ts_us,
            max_datagram: p.max_datagram,
            pacer: Pacer::new(now, p.max_send_rate, 16 * p.max_datagram),
            next_pn: 0,
            replay: ReplayWindow::new(),
            acks: AckTracker::default(),
            ack_delay_announcement: AckDelayAnnouncement::new(p.max_ack_delay),
            peer_max_ack_delay: crate::config::DEFAULT_MAX_ACK_DELAY,
            recovery: Recovery::default(),
            cc: NewReno::new(p.max_datagram),
            window_limited: false,
            quality: LinkQuality::new(&LinkQualityConfig::default()),
            rate_cap: None,
            max_send_rate: p.max_send_rate,
            rtt: RttEstimator::default(),
            created: now,
            last_recv: now,
            last_send: now,
            state: SessionState::Active,
            pongs_due: Vec::new(),
            ping_due: None,
            app_pings: Vec::new(),
            close_due: None,
            broadcast_sent: Vec::new(),
            hs_ack: None,
            confirm_probe: None,
            keepalive_due: false,
            sent: Traffic::default(),
            received: Traffic::default(),
            courier_frames_sent: 0,
            courier_frames_received: 0,
        }
    }

    pub fn is_active(&self) -> bool {
        self.confirmed && self.state == SessionState::Active
    }

    /// Whether the congestion window has room for another full packet, and
    /// loss recovery room to remember it.
    pub fn window_open(&self) -> bool {
        self.recovery.bytes_in_flight + self.max_datagram as u64 <= self.cc.window && self.recovery.has_room()
    }

    /// Re-derives the pacing rate from the window, the RTT and the caps.
    pub fn update_pacing(&mut self) {
        let cc = self
            .cc
            .pacing_rate(self.rtt.smoothed())
            .unwrap_or(self.max_send_rate);
        let rate = cc.min(self.max_send_rate).min(self.rate_cap.unwrap_or(u64::MAX));
        self.pacer.set_rate(rate);
    }

    pub fn stats(&self) -> SessionStats {
        let r = &self.recovery;
        let decided = r.packets_acked + r.packets_lost;
        SessionStats {
            peer: self.peer,
            sent: self.sent,
            received: self.received,
            rtt: self.rtt.stats(),
            courier_frames_sent: self.courier_frames_sent,
            courier_frames_received: self.courier_frames_received,
            connected: self.is_active(),
            packets_lost: r.packets_lost,
            loss_rate: if decided == 0 {
                0.0
            } else {
                r.packets_lost as f64 / decided as f64
            },
            congestion_window: self.cc.window,
            congestion_events: self.cc.congestion_events,
            random_losses: self.cc.random_losses,
            bytes_in_flight: r.bytes_in_flight,
            send_rate: self.pacer.rate(),
            link_good: self.quality.good,
            link_penalty: self.quality.penalty,
        }
    }

    /// Queues a pong, dropping the oldest owed if too many are.
    pub fn owe_pong(&mut self, token: u64) {
        if self.pongs_due.len() >= MAX_PENDING_PONGS {
            self.pongs_due.remove(0);
        }
        self.pongs_due.push(token);
    }
}
