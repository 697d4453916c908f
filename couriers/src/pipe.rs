//! PipeCourier: a stream courier whose two ends are channels, for the
//! lowest latency through a running [`octolink::driver::CommsChannel`].
//!
//! The application pushes messages into a [`PipeSender`] (which wakes the
//! event loop) and takes arrivals from a [`PipeReceiver`]: no command round
//! trip to the loop thread per message.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use octolink::driver::Notifier;
use octolink::stream::{Received, RecvStream, SendStream, StreamConfig};
use octolink::{Courier, CourierContext, CourierWaker, Mandate, PayloadWriter};

/// The application's sending end.
#[derive(Debug, Clone)]
pub struct PipeSender {
    tx: Sender<Vec<u8>>,
    notifier: Notifier,
    /// The courier's waker, once it is registered.
    waker: Arc<OnceLock<CourierWaker>>,
}

impl PipeSender {
    /// Queues a message and wakes the loop. A full pipe refuses it
    /// (back-pressure): the message comes back in the error.
    pub fn send(&self, msg: Vec<u8>) -> Result<(), Vec<u8>> {
        match self.tx.try_send(msg) {
            Ok(()) => {
                // The waker also wakes the loop; before registration only
                // the notifier can.
                match self.waker.get() {
                    Some(w) => w.wake(),
                    None => self.notifier.notify(),
                }
                Ok(())
            }
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => Err(m),
        }
    }
}

/// The application's receiving end: a crossbeam receiver of message bodies.
pub type PipeReceiver = Receiver<Vec<u8>>;

/// Receives from a pipe, polling for up to `spin` before blocking (up to
/// `timeout` in all): waking a blocked thread costs tens of microseconds on
/// many machines, and a reply often arrives sooner than that. It yields its
/// core between polls, as the busy-poll loop does: a poller that did not
/// kept an event loop sharing its core waiting for the scheduler's tick
/// (8-16 ms per round trip measured with two loops and two pollers on two
/// cores).
pub fn recv_spinning(
    rx: &PipeReceiver,
    spin: std::time::Duration,
    timeout: std::time::Duration,
) -> Option<Vec<u8>> {
    let start = Instant::now();
    while start.elapsed() < spin {
        if let Ok(m) = rx.try_recv() {
            return Some(m);
        }
        std::thread::yield_now();
    }
    rx.recv_timeout(timeout.saturating_sub(start.elapsed())).ok()
}

/// The courier half, registered with the channel.
pub struct PipeCourier {
    tx: SendStream,
    rx: RecvStream,
    outbox: Receiver<Vec<u8>>,
    inbox: Sender<Vec<u8>>,
    priority: u8,
    /// When data became ready, for the scheduler's lateness.
    ready_since: Instant,
    waker: Arc<OnceLock<CourierWaker>>,
}

impl PipeCourier {
    /// A courier and its two application ends. `capacity` bounds both pipes.
    pub fn new(
        config: StreamConfig,
        priority: u8,
        capacity: usize,
        notifier: Notifier,
    ) -> (Self, PipeSender, PipeReceiver) {
        let (out_tx, out_rx) = crossbeam_channel::bounded(capacity);
        let (in_tx, in_rx) = crossbeam_channel::bounded(capacity);
        let waker = Arc::new(OnceLock::new());
        let courier = Self {
            tx: SendStream::new(config),
            rx: RecvStream::new(config),
            outbox: out_rx,
            inbox: in_tx,
            priority,
            ready_since: Instant::now(),
            waker: Arc::clone(&waker),
        };
        let sender = PipeSender {
            tx: out_tx,
            notifier,
            waker,
        };
        (courier, sender, in_rx)
    }

    /// Moves messages from the pipe into the stream while it has room.
    fn fill(&mut self) {
        while self.tx.held() < self.tx.config().max_queued {
            let Ok(m) = self.outbox.try_recv() else { break };
            // Oversized messages are the sender's bug; they are dropped here
            // rather than wedging the pipe.
            let _ = self.tx.push(m);
        }
    }

    fn deliver(&mut self) {
        while let Some(Received { body, .. }) = self.rx.pop_received() {
            // A full inbox means the application stopped reading.
            let _ = self.inbox.try_send(body);
        }
    }
}

impl Courier for PipeCourier {
    fn mandate(&self) -> Mandate {
        let wants = self.tx.wants_to_send() || !self.outbox.is_empty();
        let cfg = self.tx.config();
        Mandate {
            priority: self.priority,
            next_send: wants.then_some(self.ready_since),
            send_slack: Duration::ZERO,
            max_payload: (cfg.max_message + octolink::stream::MESSAGE_OVERHEAD) as u16,
            min_payload: 1,
            send_active: true,
            receive_active: true,
        }
    }

    fn on_send_opportunity(&mut self, ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
        self.fill();
        self.tx.write(ctx.now, out);
        while self.tx.poll_event().is_some() {}
        self.ready_since = ctx.now;
    }

    fn on_receive(&mut self, ctx: &CourierContext, payload: &[u8]) {
        let one_way = ctx.rtt.map_or(std::time::Duration::ZERO, |r| r / 2);
        let _ = self.rx.on_payload(payload, one_way);
        self.deliver();
    }

    fn on_delivered(&mut self, _ctx: &CourierContext, token: u64) {
        self.tx.on_delivered(token);
    }

    fn on_lost(&mut self, _ctx: &CourierContext, token: u64) {
        self.tx.on_lost(token);
    }

    fn on_session_start(&mut self, _ctx: &CourierContext) {
        self.tx.on_session_start();
        // Messages held for reordering come out of the reset: pass them on.
        self.rx.reset();
        self.deliver();
    }

    fn on_session_end(&mut self, _ctx: &CourierContext) {
        self.tx.on_session_end();
    }

    fn queue_depth(&self) -> usize {
        self.tx.queue_depth() + self.outbox.len()
    }

    fn unsettled(&self) -> usize {
        self.tx.unsettled() + self.outbox.len()
    }
    fn accept_waker(&mut self, waker: CourierWaker) -> bool {
        // Registered once; a second registration keeps the first waker.
        let _ = self.waker.set(waker);
        true
    }
}
