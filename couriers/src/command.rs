//! CommandCourier: small, reliable, ordered messages at high priority (an
//! emergency stop, a mode change), each confirmed on delivery, and each with
//! an optional lifespan after which it is dropped unexecuted and reported.

use std::time::{Duration, Instant};

use octolink::stream::{Delivery, PushError, StreamConfig, StreamEvent};
use octolink::{Courier, CourierContext, Mandate, PayloadWriter};

use crate::MessageCourier;

/// The default priority: above everything but the engine's own traffic.
pub const COMMAND_PRIORITY: u8 = 240;

/// What became of a command sent, by the id [`CommandCourier::send`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEvent {
    /// The peer received it.
    Delivered(u64),
    /// Its lifespan ran out first: it will never be executed.
    Expired(u64),
    /// The session ended before it was confirmed; it may or may not have
    /// arrived.
    Failed(u64),
}

/// A command as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub body: Vec<u8>,
    /// How much of its lifespan was left on arrival, if it had one.
    pub lifespan_left: Option<Duration>,
}

/// Reliable-ordered commands. Register one per peer on each side, with the
/// same courier id.
#[derive(Debug)]
pub struct CommandCourier {
    inner: MessageCourier,
}

impl Default for CommandCourier {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandCourier {
    pub fn new() -> Self {
        Self::with_config(StreamConfig::new(Delivery::ReliableOrdered), COMMAND_PRIORITY)
    }

    pub fn with_config(config: StreamConfig, priority: u8) -> Self {
        let config = StreamConfig {
            delivery: Delivery::ReliableOrdered,
            ..config
        };
        Self {
            inner: MessageCourier::new(config, priority),
        }
    }

    /// Queues a command. A full queue refuses it ([`PushError::Full`]):
    /// back-pressure, nothing dropped.
    pub fn send(
        &mut self,
        now: Instant,
        body: Vec<u8>,
        lifespan: Option<Duration>,
    ) -> Result<u64, PushError> {
        self.inner.send(now, body, lifespan)
    }

    /// The next command received, in the order sent.
    pub fn recv(&mut self) -> Option<Command> {
        self.inner.recv().map(|r| Command {
            body: r.body,
            lifespan_left: r.lifespan_left,
        })
    }

    pub fn poll_event(&mut self) -> Option<CommandEvent> {
        loop {
            return Some(match self.inner.poll_event()? {
                StreamEvent::Delivered(id) => CommandEvent::Delivered(id),
                StreamEvent::Expired(id) => CommandEvent::Expired(id),
                StreamEvent::Failed(id) => CommandEvent::Failed(id),
                // Reliable streams never lose or supersede.
                StreamEvent::Lost(_) | StreamEvent::Superseded(_) => continue,
            });
        }
    }

    /// Commands that arrived too late and were dropped unexecuted.
    pub fn expired_on_arrival(&self) -> u64 {
        self.inner.recv_stats().expired
    }
}

/// Forwards the whole trait to the inner stream courier.
macro_rules! delegate_courier {
    ($t:ty) => {
        impl Courier for $t {
            fn mandate(&self) -> Mandate {
                self.inner.mandate()
            }
            fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
                self.inner.on_send_opportunity(ctx, out)
            }
            fn on_receive(&mut self, ctx: &CourierContext, payload: &[u8]) {
                self.inner.on_receive(ctx, payload)
            }
            fn on_delivered(&mut self, ctx: &CourierContext, token: u64) {
                self.inner.on_delivered(ctx, token)
            }
            fn on_lost(&mut self, ctx: &CourierContext, token: u64) {
                self.inner.on_lost(ctx, token)
            }
            fn on_session_start(&mut self, ctx: &CourierContext) {
                self.inner.on_session_start(ctx)
            }
            fn on_session_end(&mut self, ctx: &CourierContext) {
                self.inner.on_session_end(ctx)
            }
            fn queue_depth(&self) -> usize {
                self.inner.queue_depth()
            }
            fn unsettled(&self) -> usize {
                self.inner.unsettled()
            }
            fn next_timer(&self) -> Option<Instant> {
                self.inner.next_timer()
            }
            fn on_timer(&mut self, now: Instant) {
                self.inner.on_timer(now)
            }
            // All its state changes through the engine's calls.
            fn accept_waker(&mut self, _waker: octolink::CourierWaker) -> bool {
                true
            }
        }
    };
}

delegate_courier!(CommandCourier);
