//! A CommsChannel driven by the caller's thread: the same socket handling
//! and loop as [`super::CommsChannel`], without the loop thread. A robot's
//! control loop that already runs at a fixed rate, or spins, turns it
//! itself: no thread hop per message, and no second thread contending for
//! a small board's cores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use mio::Events;

use super::event_loop::EventLoop;
use super::{open, wait_for_event, ChannelConfig, ChannelError, Notifier, Opened};
use crate::{ApiError, Courier, CourierHandle, CourierId, CourierScope, Endpoint, Event, NodeId};

/// A channel whose loop runs when its owner calls [`InlineChannel::turn`].
///
/// Couriers fed from other threads still work: their wakes cut a waiting
/// turn short.
///
/// ```no_run
/// use std::time::Duration;
/// use octolink::driver::{ChannelConfig, InlineChannel};
/// use octolink::Identity;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let identity = Identity::load("node.key".as_ref())?;
/// let mut channel = InlineChannel::start(ChannelConfig::new("0.0.0.0:7400".parse()?, identity))?;
/// loop {
///     // Read, run timers, send; wait at most 1 ms (the control period).
///     channel.turn(Duration::from_millis(1))?;
///     while let Some(event) = channel.poll_event() {
///         println!("{event:?}");
///     }
///     // ... the control step, writing to couriers through channel.endpoint() ...
/// }
/// # }
/// ```
pub struct InlineChannel {
    lp: EventLoop,
    events: Receiver<Event>,
    mio_events: Events,
    waker: Arc<mio::Waker>,
    local_addr: SocketAddr,
    node_id: NodeId,
    stopped: bool,
}

impl InlineChannel {
    /// Binds the socket and loads the trust store; nothing runs until
    /// [`Self::turn`].
    pub fn start(config: ChannelConfig) -> Result<Self, ChannelError> {
        let Opened {
            lp,
            waker,
            events,
            local_addr,
            node_id,
            ..
        } = open(&config)?;
        Ok(Self {
            lp,
            events,
            mio_events: Events::with_capacity(16),
            waker,
            local_addr,
            node_id,
            stopped: false,
        })
    }

    /// One turn of the loop: reads what arrived, runs due timers, sends,
    /// and queues events; then waits up to `max_wait` for the socket, a
    /// courier's wake or the engine's next timer. Zero never waits (spin
    /// on it for the lowest latency).
    pub fn turn(&mut self, max_wait: Duration) -> Result<(), ChannelError> {
        self.lp.turn(&mut self.mio_events, Some(max_wait))
    }

    /// The engine: connect, register couriers, reach them. What it queues
    /// goes out at the next turn.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        self.lp.endpoint_mut()
    }

    /// Registers a courier and has its arrivals reported as
    /// [`Event::CourierData`], as [`super::CommsChannel::register_courier`]
    /// does.
    pub fn register_courier(
        &mut self,
        scope: CourierScope,
        id: CourierId,
        courier: Box<dyn Courier>,
    ) -> Result<CourierHandle, ApiError> {
        let ep = self.endpoint();
        let h = ep.register_courier(scope, id, courier)?;
        ep.set_courier_notify(h, true)?;
        Ok(h)
    }

    /// The next event, if one is queued (turns queue them).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Turns the loop for up to `timeout` until an event matching `pred`
    /// arrives, and returns it; other events are skipped.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl FnMut(&Event) -> bool) -> Option<Event> {
        let next = |left: Duration| {
            match self.events.try_recv() {
                Ok(e) => return Ok(Some(e)),
                Err(TryRecvError::Disconnected) => return Err(()),
                Err(TryRecvError::Empty) => {}
            }
            self.turn(left).map(|()| None).map_err(|_| ())
        };
        wait_for_event(timeout, next, pred)
    }

    /// A handle that cuts a waiting turn short, for couriers fed from other
    /// threads.
    pub fn notifier(&self) -> Notifier {
        Notifier(Arc::clone(&self.waker))
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Closes every session (close frames are sent, after up to
    /// [`ChannelConfig::shutdown_drain`](super::ChannelConfig::shutdown_drain)
    /// for unacknowledged courier messages) and saves the trust store.
    pub fn shutdown(mut self) -> Result<(), ChannelError> {
        self.stopped = true;
        self.lp.shut_down()
    }
}

impl Drop for InlineChannel {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.lp.shut_down();
        }
    }
}
