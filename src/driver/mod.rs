//! The runtime: one event-loop thread that owns the UDP socket and drives
//! the sans-IO [`Endpoint`], and a blocking, thread-safe [`CommsChannel`]
//! handle for application threads.
//!
//! The loop waits with `mio` on two things, the socket becoming readable
//! and a `Waker` rung by commands, with its timeout taken from
//! [`Endpoint::poll_timeout`]. It talks to application threads over
//! `crossbeam-channel`. It makes no protocol decisions: every rule about
//! what to send lives in the engine.

mod event_loop;
mod inline;
mod socket;
mod timer;

pub use inline::InlineChannel;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::{
    ApiError, ConfigError, Courier, CourierHandle, CourierId, CourierScope, Endpoint, EndpointConfig, Event,
    Identity, KeyError, NodeAssociate, NodeId, Stats, TrustError, TrustStore,
};

/// How to start a [`CommsChannel`].
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Address to bind: IPv4 or IPv6; port 0 picks one.
    pub bind: SocketAddr,
    pub identity: Identity,
    /// Where the trust store lives. Loaded at start (a missing file is an
    /// empty store) and saved, atomically, at shutdown.
    pub trust_path: Option<PathBuf>,
    /// Used when `trust_path` is `None`, or in addition to it.
    pub trust: TrustStore,
    pub endpoint: EndpointConfig,
    /// Spin instead of sleeping between events: the lowest latency, at the
    /// cost of a busy core. The loop yields its core after each idle turn,
    /// so the application threads it wakes are not kept waiting for it.
    pub busy_poll: bool,
    /// After any traffic, keep polling without sleeping this long: replies
    /// usually come within it, and waking a sleeping thread costs tens of
    /// microseconds on many machines (more on virtual ones). Worth it only
    /// with a core to spare for the loop; zero (the default) disables it.
    pub adaptive_spin: Duration,
    /// Events kept for the application at most; more are counted and dropped.
    pub event_capacity: usize,
    /// Send and receive buffer asked of the kernel for the socket, in bytes
    /// (zero keeps the system default). Bursts beyond the receive buffer are
    /// dropped by the kernel before the loop sees them; the default 2 MiB
    /// holds a full congestion window of a fast loopback or LAN transfer.
    /// Linux caps the request at `net.core.rmem_max` / `wmem_max`.
    pub socket_buffer: usize,
    /// How long shutdown waits at most for couriers' reliable messages (a
    /// transfer's completion, a last command) to be acknowledged before it
    /// closes the sessions. It returns as soon as they are; the bound only
    /// matters on a lossy or dead link, where each retransmission waits a
    /// backed-off probe timeout (several hundred ms on a 100 ms path).
    pub shutdown_drain: Duration,
}

impl ChannelConfig {
    pub fn new(bind: SocketAddr, identity: Identity) -> Self {
        Self {
            bind,
            identity,
            trust_path: None,
            trust: TrustStore::new(),
            endpoint: EndpointConfig::default(),
            busy_poll: false,
            adaptive_spin: Duration::ZERO,
            event_capacity: 65_536,
            socket_buffer: 2 << 20,
            shutdown_drain: Duration::from_secs(5),
        }
    }
}

/// Errors from the runtime.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("address {0} is already in use")]
    AddressInUse(SocketAddr),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("I/O error in the event loop: {0}")]
    Io(#[from] std::io::Error),
    #[error("the event loop has stopped")]
    Stopped,
}

/// Wakes a channel's event loop; cheap to clone and send between threads.
#[derive(Debug, Clone)]
pub struct Notifier(Arc<mio::Waker>);

impl Notifier {
    /// Wakes the loop (so it re-reads every courier's mandate).
    pub fn notify(&self) {
        // A failed wake only delays the data to the loop's next wake-up.
        let _ = self.0.wake();
    }
}

/// A closure run on the loop thread with the engine.
type Job = Box<dyn FnOnce(&mut Endpoint, std::time::Instant) + Send>;

enum Command {
    Run(Job),
    Shutdown,
}

/// A running CommsChannel: a handle to the event-loop thread.
///
/// Cheap to share: wrap it in an `Arc` to use it from several threads;
/// every method takes `&self`.
///
/// ```no_run
/// use octolink::driver::{ChannelConfig, CommsChannel};
/// use octolink::Identity;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let identity = Identity::load("node.key".as_ref())?;
/// let mut config = ChannelConfig::new("0.0.0.0:7400".parse()?, identity);
/// config.trust_path = Some("associates.json".into());
/// let channel = CommsChannel::start(config)?;
/// for event in channel.events() {
///     println!("{event:?}");
/// }
/// # Ok(()) }
/// ```
pub struct CommsChannel {
    commands: Sender<Command>,
    waker: Arc<mio::Waker>,
    events: Receiver<Event>,
    local_addr: SocketAddr,
    node_id: NodeId,
    thread: Option<JoinHandle<Result<(), ChannelError>>>,
}

impl CommsChannel {
    /// Binds the socket, loads the trust store and starts the loop thread.
    pub fn start(config: ChannelConfig) -> Result<Self, ChannelError> {
        let Opened {
            mut lp,
            commands,
            waker,
            events,
            local_addr,
            node_id,
        } = open(&config)?;
        let thread = std::thread::Builder::new()
            .name(format!("octolink-{local_addr}"))
            .spawn(move || lp.run())?;
        Ok(Self {
            commands,
            waker,
            events,
            local_addr,
            node_id,
            thread: Some(thread),
        })
    }

    /// A handle that wakes the event loop: for couriers fed from other
    /// threads (see `octolink_couriers::PipeCourier`), so their data goes
    /// out at once rather than at the loop's next timer.
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

    fn send(&self, cmd: Command) -> Result<(), ChannelError> {
        self.commands.send(cmd).map_err(|_| ChannelError::Stopped)?;
        self.waker.wake()?;
        Ok(())
    }

    /// Runs `f` on the loop thread with the engine, and returns its result.
    /// Everything else is built on this.
    pub fn with_endpoint<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Endpoint, std::time::Instant) -> R + Send + 'static,
    ) -> Result<R, ChannelError> {
        let (tx, rx) = bounded(1);
        self.send(Command::Run(Box::new(move |ep, now| {
            let _ = tx.send(f(ep, now));
        })))?;
        rx.recv().map_err(|_| ChannelError::Stopped)
    }

    /// Like [`Self::with_endpoint`] without waiting for the result.
    pub fn post(
        &self,
        f: impl FnOnce(&mut Endpoint, std::time::Instant) + Send + 'static,
    ) -> Result<(), ChannelError> {
        self.send(Command::Run(Box::new(f)))
    }

    /// Runs `f` with the courier behind `handle` on the loop thread.
    pub fn with_courier<T: Courier, R: Send + 'static>(
        &self,
        handle: CourierHandle,
        f: impl FnOnce(&mut T, std::time::Instant) -> R + Send + 'static,
    ) -> Result<R, ChannelError> {
        self.with_endpoint(move |ep, now| ep.courier_mut::<T>(handle).map(|c| f(c, now)))?
            .ok_or(ChannelError::Api(ApiError::UnknownCourier))
    }

    /// Pairs with a node.
    pub fn add_associate(&self, associate: NodeAssociate) -> Result<(), ChannelError> {
        self.with_endpoint(move |ep, _| ep.add_associate(associate))?
            .map_err(ChannelError::Key)
    }

    /// Connects to a trusted peer (and keeps reconnecting per the liveness
    /// schedule).
    pub fn connect(&self, peer: NodeId) -> Result<(), ChannelError> {
        Ok(self.with_endpoint(move |ep, now| ep.connect(now, &peer))??)
    }

    /// Closes the session with `peer`.
    pub fn close(&self, peer: NodeId) -> Result<(), ChannelError> {
        Ok(self.with_endpoint(move |ep, now| ep.close(now, &peer))??)
    }

    /// Sends a ping; the answer arrives as [`Event::Pong`].
    pub fn ping(&self, peer: NodeId) -> Result<u64, ChannelError> {
        Ok(self.with_endpoint(move |ep, _| ep.ping(&peer))??)
    }

    pub fn is_connected(&self, peer: NodeId) -> Result<bool, ChannelError> {
        self.with_endpoint(move |ep, _| ep.is_connected(&peer))
    }

    /// Registers a courier; get at it later with [`Self::with_courier`].
    /// Its arrivals are reported as [`Event::CourierData`] (one event per
    /// frame) until [`Self::set_courier_notify`] turns that off.
    pub fn register_courier(
        &self,
        scope: CourierScope,
        id: CourierId,
        courier: Box<dyn Courier>,
    ) -> Result<CourierHandle, ChannelError> {
        Ok(self.with_endpoint(move |ep, _| {
            let h = ep.register_courier(scope, id, courier)?;
            ep.set_courier_notify(h, true)?;
            Ok::<_, ApiError>(h)
        })??)
    }

    /// Whether the courier's arrivals are reported as
    /// [`Event::CourierData`]. A courier the application reads on its own
    /// schedule (a fleet server's latest-state views, say) needs no event
    /// per frame: thousands a second would fill the event channel.
    ///
    /// ```no_run
    /// # fn demo(ch: &octolink::driver::CommsChannel, h: octolink::CourierHandle) -> Result<(), octolink::driver::ChannelError> {
    /// ch.set_courier_notify(h, false)?;
    /// # Ok(()) }
    /// ```
    pub fn set_courier_notify(&self, handle: CourierHandle, on: bool) -> Result<(), ChannelError> {
        Ok(self.with_endpoint(move |ep, _| ep.set_courier_notify(handle, on))??)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Result<Stats, ChannelError> {
        self.with_endpoint(|ep, _| ep.stats())
    }

    /// The trust store as the engine has it now.
    pub fn trust_store(&self) -> Result<TrustStore, ChannelError> {
        self.with_endpoint(|ep, _| ep.trust_store().clone())
    }

    /// Engine events, as they happen (iterate, or `recv_timeout`).
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Waits up to `timeout` for an event matching `pred`, returning it;
    /// other events are skipped.
    pub fn wait_for(&self, timeout: Duration, pred: impl FnMut(&Event) -> bool) -> Option<Event> {
        let next = |left| match self.events.recv_timeout(left) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        };
        wait_for_event(timeout, next, pred)
    }

    /// Closes every session (close frames are sent, after up to
    /// [`ChannelConfig::shutdown_drain`] for unacknowledged courier
    /// messages), saves the trust store and stops the loop.
    pub fn shutdown(mut self) -> Result<(), ChannelError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ChannelError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self.send(Command::Shutdown);
        thread.join().map_err(|_| ChannelError::Stopped)?
    }
}

impl Drop for CommsChannel {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A loop ready to run, and the ends the application keeps.
struct Opened {
    lp: event_loop::EventLoop,
    commands: Sender<Command>,
    waker: Arc<mio::Waker>,
    events: Receiver<Event>,
    local_addr: SocketAddr,
    node_id: NodeId,
}

/// Binds the socket, loads the trust store, and builds the engine and its
/// loop (shared by [`CommsChannel`] and [`InlineChannel`]).
fn open(config: &ChannelConfig) -> Result<Opened, ChannelError> {
    let socket = socket::bind(config.bind, config.socket_buffer)?;
    let local_addr = socket.local_addr()?;
    let mut trust = match &config.trust_path {
        Some(p) => TrustStore::load(p)?,
        None => TrustStore::new(),
    };
    for a in config.trust.iter() {
        trust.insert(a.clone())?;
    }
    let now = std::time::Instant::now();
    let unix_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let node_id = config.identity.id();
    let mut endpoint = Endpoint::new(
        config.endpoint.clone(),
        config.identity.clone(),
        trust,
        seed,
        now,
        unix_us,
    )?;
    let poll = mio::Poll::new()?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), event_loop::WAKER)?);
    // A courier woken from an application thread wakes the loop. One woken
    // on the thread that turns the loop needs no ring (an eventfd write per
    // message): that thread takes the wake before it next sleeps.
    let turner = Arc::new(AtomicUsize::new(0));
    let ring = Arc::clone(&waker);
    let loop_thread = Arc::clone(&turner);
    endpoint.set_wake_hook(Some(Arc::new(move || {
        if loop_thread.load(Ordering::Relaxed) != event_loop::thread_mark() {
            // A failed wake only delays the data to the loop's next wake-up.
            let _ = ring.wake();
        }
    })));
    let (commands, cmd_rx) = bounded(1024);
    let (ev_tx, events) = bounded(config.event_capacity);
    let lp = event_loop::EventLoop::new(
        poll,
        socket,
        endpoint,
        cmd_rx,
        ev_tx,
        event_loop::LoopSettings {
            trust_path: config.trust_path.clone(),
            busy_poll: config.busy_poll,
            adaptive_spin: config.adaptive_spin,
            shutdown_drain: config.shutdown_drain,
            turner,
        },
    )?;
    Ok(Opened {
        lp,
        commands,
        waker,
        events,
        local_addr,
        node_id,
    })
}

/// Waits up to `timeout` for an event matching `pred`; other events are
/// skipped. `next` waits up to the time it is given for one event, and
/// returns `Err` once none can come.
fn wait_for_event(
    timeout: Duration,
    mut next: impl FnMut(Duration) -> Result<Option<Event>, ()>,
    mut pred: impl FnMut(&Event) -> bool,
) -> Option<Event> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        match next(left) {
            Ok(Some(e)) if pred(&e) => return Some(e),
            Ok(_) => {}
            Err(()) => return None,
        }
    }
}

/// How long the loop lingers at shutdown for close frames to go out.
const SHUTDOWN_LINGER: Duration = Duration::from_millis(20);
