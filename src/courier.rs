//! Couriers: the application's side of the CommsChannel. Each courier keeps
//! its own latest data fresh and says, through its [`Mandate`], how urgently
//! and how importantly it wants to send; the engine decides which couriers
//! fill each packet.

use std::any::Any;
use std::time::{Duration, Instant};

use crate::crypto::NodeId;
pub use crate::waker::CourierWaker;

/// A courier's wire id. Both ends must register the same id for the same
/// kind of courier. Ids `0xff00..` are reserved for octolink's own couriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CourierId(pub u16);

/// What a courier asks of the engine. A polled courier's is re-read before
/// every scheduling decision; one that accepted a waker is read once after
/// each change (an engine call to it, or a wake: see
/// [`Courier::accept_waker`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mandate {
    /// 0 (least) to 255 (most important).
    pub priority: u8,
    /// When the courier next wants a send opportunity; `None` means it has
    /// nothing to send. An instant in the past means overdue.
    pub next_send: Option<Instant>,
    /// How late the data may go past `next_send` to share a packet with
    /// other traffic (an acknowledgement, another courier's data). A
    /// periodic send that nothing waits for (a digest, a heartbeat) sets it
    /// and rides along instead of costing a datagram of its own; zero makes
    /// the engine send at `next_send`. Either way the courier is offered
    /// room in every packet from `next_send` on.
    pub send_slack: Duration,
    /// The most bytes it will write per opportunity.
    pub max_payload: u16,
    /// The least room worth an opportunity. A courier that can use any
    /// space (a blob chunk) sets this low and is offered whatever is left in
    /// a packet, up to `max_payload`; 0 means "needs `max_payload`".
    pub min_payload: u16,
    /// Whether it wants send opportunities at all.
    pub send_active: bool,
    /// Whether it accepts received data; if not, its frames are dropped.
    pub receive_active: bool,
}

impl Mandate {
    /// A mandate that neither sends nor receives.
    pub fn idle() -> Self {
        Self {
            priority: 0,
            next_send: None,
            send_slack: Duration::ZERO,
            max_payload: 0,
            min_payload: 0,
            send_active: false,
            receive_active: false,
        }
    }

    /// The instant this courier is due, if it wants to send at all.
    pub fn due(&self) -> Option<Instant> {
        if self.send_active && self.max_payload > 0 {
            self.next_send
        } else {
            None
        }
    }

    /// The instant by which the engine sends a packet for this courier:
    /// [`Self::due`] plus the slack.
    pub fn deadline(&self) -> Option<Instant> {
        self.due().map(|d| d.checked_add(self.send_slack).unwrap_or(d))
    }
}

/// Which sessions a courier serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CourierScope {
    /// One peer's session (a remote's private conversation with one agent).
    Peer(NodeId),
    /// Every established session: each payload written is sent to all
    /// active peers (an agent broadcasting to its controls).
    Broadcast,
}

/// What the engine tells a courier about the opportunity or the arrival.
#[derive(Debug, Clone, Copy)]
pub struct CourierContext {
    pub now: Instant,
    /// The peer the data goes to or came from; `None` for a broadcast
    /// opportunity, whose payload goes to every session.
    pub peer: Option<NodeId>,
    /// The session's smoothed round-trip time, once measured.
    pub rtt: Option<std::time::Duration>,
}

/// A bounded window into the packet being built. Writes that do not fit
/// fail; nothing can be written past the courier's share of the packet.
#[derive(Debug)]
pub struct PayloadWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    token: u64,
    acknowledged: bool,
    largest_offer: usize,
}

/// The payload writer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payload does not fit in this send opportunity")]
pub struct PayloadFull;

impl<'a> PayloadWriter<'a> {
    /// A writer over `buf`. The engine makes these; tests of a courier can
    /// too, to drive it without an engine.
    pub fn new(buf: &'a mut [u8], token: u64) -> Self {
        let largest_offer = buf.len();
        Self {
            buf,
            len: 0,
            token,
            acknowledged: true,
            largest_offer,
        }
    }

    /// Says how much room the largest opportunity on this session can give
    /// (the engine sets it: the session's datagram, less headers, capped by
    /// the courier's `max_payload`). Defaults to this writer's size.
    pub fn with_largest_offer(mut self, bytes: usize) -> Self {
        self.largest_offer = bytes.max(self.buf.len());
        self
    }

    /// The most any opportunity on this session offers: a unit of data
    /// larger than this can never be written, and waiting for a bigger
    /// opportunity would stall the courier for ever.
    pub fn largest_offer(&self) -> usize {
        self.largest_offer
    }

    /// Marks what is written as needing no acknowledgement: a periodic
    /// check or status the next one supersedes. The peer does not
    /// acknowledge a packet for its sake (no datagram back), and the frame
    /// gets no fate: neither `on_delivered` nor `on_lost` is called for
    /// this token.
    pub fn set_unacknowledged(&mut self) {
        self.acknowledged = false;
    }

    /// Whether the frame asks to be acknowledged (the default).
    pub fn is_acknowledged(&self) -> bool {
        self.acknowledged
    }

    /// Names the frame being written. The engine later reports its fate to
    /// [`Courier::on_delivered`] or [`Courier::on_lost`] with this token.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Bytes still available.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `bytes` whole, or nothing.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), PayloadFull> {
        let end = self.len + bytes.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(PayloadFull)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// The unwritten space, for in-place encoders; follow with [`Self::advance`].
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Marks `n` bytes of [`Self::spare`] as written.
    pub fn advance(&mut self, n: usize) -> Result<(), PayloadFull> {
        if n > self.remaining() {
            return Err(PayloadFull);
        }
        self.len += n;
        Ok(())
    }
}

/// A courier: one kind of application data on the channel.
///
/// ```
/// use std::time::{Duration, Instant};
/// use octolink::{Courier, CourierContext, Mandate, PayloadWriter};
///
/// /// Sends the latest battery voltage 10 times a second.
/// struct Battery { millivolts: u16, next: Instant }
///
/// impl Courier for Battery {
///     fn mandate(&self) -> Mandate {
///         Mandate { priority: 50, next_send: Some(self.next), send_slack: Duration::ZERO,
///                   max_payload: 2, min_payload: 0, send_active: true,
///                   receive_active: false }
///     }
///     fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
///         if out.write(&self.millivolts.to_be_bytes()).is_ok() {
///             self.next = ctx.now + Duration::from_millis(100);
///         }
///     }
///     fn on_receive(&mut self, _ctx: &CourierContext, _payload: &[u8]) {}
/// }
/// ```
pub trait Courier: Any + Send {
    /// The courier's current wishes. Called often; keep it cheap.
    fn mandate(&self) -> Mandate;
    /// Write at most `out.remaining()` bytes. Writing nothing is allowed, but
    /// then the mandate should stop asking, or the engine backs off 1 ms.
    fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>);
    /// A payload arrived for this courier. It is untrusted input: it is
    /// authentic (from a trusted peer) but may be malformed.
    fn on_receive(&mut self, ctx: &CourierContext, payload: &[u8]);

    /// The packet carrying frame `token` (see [`PayloadWriter::token`]) was
    /// acknowledged by `ctx.peer`: the payload was handed to its courier.
    fn on_delivered(&mut self, _ctx: &CourierContext, _token: u64) {}

    /// The packet carrying frame `token` was declared lost (RFC 9002 rules).
    /// A reliable courier writes the data again in a later opportunity.
    fn on_lost(&mut self, _ctx: &CourierContext, _token: u64) {}

    /// A session with `ctx.peer` was established.
    fn on_session_start(&mut self, _ctx: &CourierContext) {}

    /// The session with `ctx.peer` ended; frames still in flight will never
    /// be reported delivered or lost.
    fn on_session_end(&mut self, _ctx: &CourierContext) {}

    /// Messages waiting to be sent, for [`crate::Stats`]. Optional.
    fn queue_depth(&self) -> usize {
        0
    }

    /// Reliable messages handed to this courier that the peer has not yet
    /// acknowledged (queued, waiting to be re-sent, or in flight). A
    /// graceful shutdown waits, briefly, for these to reach zero. Optional.
    fn unsettled(&self) -> usize {
        0
    }

    /// When the courier next needs [`Courier::on_timer`] (for deadlines
    /// that do not involve sending). Optional.
    fn next_timer(&self) -> Option<Instant> {
        None
    }

    /// Called once `now` has reached [`Courier::next_timer`].
    fn on_timer(&mut self, _now: Instant) {}

    /// Offered once, at registration. Return `true` to promise that the
    /// mandate and timer change only in the engine's calls to this courier
    /// (including [`crate::Endpoint::courier_mut`]) or after a
    /// [`CourierWaker::wake`]: a courier fed from another thread or from
    /// shared state keeps the waker and wakes it after each change. The
    /// engine then re-reads the mandate only when something happened,
    /// which is what lets one endpoint serve thousands of sessions.
    /// `false` (the default) keeps the engine re-reading it on every poll.
    fn accept_waker(&mut self, _waker: CourierWaker) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_writer_never_writes_past_its_window() {
        let mut buf = [0u8; 4];
        let mut w = PayloadWriter::new(&mut buf, 1);
        w.write(b"abc").unwrap();
        assert_eq!(w.write(b"de"), Err(PayloadFull));
        assert_eq!(w.len(), 3);
        assert_eq!(w.advance(2), Err(PayloadFull));
        w.spare()[0] = b'z';
        w.advance(1).unwrap();
        assert_eq!(&buf, b"abcz");
    }
}
