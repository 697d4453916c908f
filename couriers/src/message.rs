//! A courier carrying one stream of messages in one delivery mode: the
//! piece [`crate::CommandCourier`] and [`crate::TelemetryCourier`] share,
//! and a ready-made courier for applications' own message types.

use std::time::{Duration, Instant};

use octolink::stream::{Delivery, PushError, Received, RecvStream, SendStream, StreamConfig, StreamEvent};
use octolink::{Courier, CourierContext, Mandate, PayloadWriter};

/// A courier over one [`SendStream`] and one [`RecvStream`].
///
/// ```
/// use std::time::Instant;
/// use octolink::stream::{Delivery, StreamConfig};
/// use octolink_couriers::MessageCourier;
///
/// let mut c = MessageCourier::new(StreamConfig::new(Delivery::ReliableUnordered), 100);
/// let id = c.send(Instant::now(), b"hello".to_vec(), None)?;
/// assert_eq!(id, 0);
/// # Ok::<(), octolink::stream::PushError>(())
/// ```
#[derive(Debug)]
pub struct MessageCourier {
    tx: SendStream,
    rx: RecvStream,
    priority: u8,
    /// When the stream last got something to send (its lateness clock).
    ready_since: Option<Instant>,
}

impl MessageCourier {
    pub fn new(config: StreamConfig, priority: u8) -> Self {
        Self {
            tx: SendStream::new(config),
            rx: RecvStream::new(config),
            priority,
            ready_since: None,
        }
    }

    pub fn delivery(&self) -> Delivery {
        self.tx.config().delivery
    }

    /// Queues a message; `lifespan` bounds how late it may be delivered.
    pub fn send(
        &mut self,
        now: Instant,
        body: Vec<u8>,
        lifespan: Option<Duration>,
    ) -> Result<u64, PushError> {
        let id = self.tx.push_until(body, lifespan.map(|l| now + l))?;
        self.ready_since.get_or_insert(now);
        Ok(id)
    }

    /// The next message received.
    pub fn recv(&mut self) -> Option<Received> {
        self.rx.pop_received()
    }

    /// The next event about a message sent.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.tx.poll_event()
    }

    pub fn send_stats(&self) -> octolink::stream::SendStreamStats {
        self.tx.stats()
    }

    pub fn recv_stats(&self) -> octolink::stream::RecvStreamStats {
        self.rx.stats()
    }
}

impl Courier for MessageCourier {
    fn mandate(&self) -> Mandate {
        let wants = self.tx.wants_to_send();
        let cfg = self.tx.config();
        Mandate {
            priority: self.priority,
            next_send: if wants { self.ready_since } else { None },
            send_slack: Duration::ZERO,
            max_payload: (cfg.max_message + octolink::stream::MESSAGE_OVERHEAD).min(usize::from(u16::MAX))
                as u16,
            min_payload: self.tx.next_payload_len().min(usize::from(u16::MAX)) as u16,
            send_active: true,
            receive_active: true,
        }
    }

    fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
        self.tx.write(ctx.now, out);
        self.ready_since = self.tx.wants_to_send().then_some(ctx.now);
    }

    fn on_receive(&mut self, ctx: &CourierContext, payload: &[u8]) {
        let one_way = ctx.rtt.map_or(Duration::ZERO, |r| r / 2);
        // A malformed payload is counted by the stream and changes nothing.
        let _ = self.rx.on_payload(payload, one_way);
    }

    fn on_delivered(&mut self, ctx: &CourierContext, token: u64) {
        self.tx.on_delivered(token);
        // An acknowledgement can reopen the window.
        if self.tx.wants_to_send() {
            self.ready_since.get_or_insert(ctx.now);
        }
    }

    fn on_lost(&mut self, ctx: &CourierContext, token: u64) {
        self.tx.on_lost(token);
        if self.tx.wants_to_send() {
            self.ready_since.get_or_insert(ctx.now);
        }
    }

    fn on_session_start(&mut self, ctx: &CourierContext) {
        self.tx.on_session_start();
        self.rx.reset();
        if self.tx.wants_to_send() {
            self.ready_since = Some(ctx.now);
        }
    }

    fn on_session_end(&mut self, _ctx: &CourierContext) {
        self.tx.on_session_end();
    }

    fn queue_depth(&self) -> usize {
        self.tx.queue_depth()
    }

    fn unsettled(&self) -> usize {
        self.tx.unsettled()
    }

    fn next_timer(&self) -> Option<Instant> {
        self.tx.next_deadline()
    }

    fn on_timer(&mut self, now: Instant) {
        self.tx.expire(now);
    }

    /// All its state changes through the engine's calls (and
    /// `courier_mut`), so the engine need not poll it.
    fn accept_waker(&mut self, _waker: octolink::CourierWaker) -> bool {
        true
    }
}
