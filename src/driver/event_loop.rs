//! The event loop: socket readiness and commands in, the engine in the
//! middle, datagrams and events out. It runs on its own thread
//! ([`super::CommsChannel`]) or on the caller's ([`super::InlineChannel`]).
//! No protocol logic lives here.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::{Events, Interest, Poll, Token};

use super::timer::PreciseTimer;
use super::{ChannelError, Command, SHUTDOWN_LINGER};
use crate::{Endpoint, Event};

/// How the loop behaves, from the channel's configuration.
pub struct LoopSettings {
    pub trust_path: Option<PathBuf>,
    pub busy_poll: bool,
    pub adaptive_spin: Duration,
    pub shutdown_drain: Duration,
    /// Which thread turns the loop ([`thread_mark`]), for the wake hook.
    pub turner: Arc<AtomicUsize>,
}

thread_local! {
    static MARK: u8 = const { 0 };
}

/// Tells threads apart: the address of a thread-local (never 0).
pub fn thread_mark() -> usize {
    MARK.with(|m| std::ptr::from_ref(m) as usize)
}

pub const SOCKET: Token = Token(0);
pub const WAKER: Token = Token(1);
const TIMER: Token = Token(2);
/// Receive buffers per batch (recvmmsg).
const BATCH: usize = 32;
/// Receive batches per turn of the loop at most: under a flood the socket
/// never runs dry, and timers, sends and commands must still get their turn.
const BATCHES_PER_TURN: usize = 8;
/// Datagrams written while the socket is full, at most; more are dropped.
const MAX_PENDING: usize = 4096;
/// Datagrams per GSO send at most.
const MAX_BATCH: usize = 32;
/// Bytes per GSO send at most: the kernel refuses a batch whose total
/// exceeds one UDP datagram's length limit over IPv4.
const MAX_GSO_BYTES: usize = 65_507;
/// A receive buffer that GRO may fill with several datagrams.
const GRO_BUFFER: usize = 64 * 1024;
/// `epoll_wait` sleeps in whole milliseconds; closer deadlines need the
/// precise timer, or are spun for where there is none.
const SPIN_BELOW: Duration = Duration::from_millis(1);

/// What one [`EventLoop::receive`] read.
struct Received {
    /// The socket would block: everything waiting was read.
    drained: bool,
    datagrams: usize,
}

pub struct EventLoop {
    poll: Poll,
    /// Wakes the loop for deadlines closer than `epoll_wait`'s millisecond.
    timer: Option<PreciseTimer>,
    socket: mio::net::UdpSocket,
    state: quinn_udp::UdpSocketState,
    endpoint: Endpoint,
    commands: Receiver<Command>,
    events: Sender<Event>,
    trust_path: Option<PathBuf>,
    busy_poll: bool,
    recv_buf: Vec<u8>,
    recv_stride: usize,
    /// Room for one GSO batch of datagrams.
    tx_buf: Vec<u8>,
    /// The endpoint's datagram size limit.
    max_datagram: usize,
    max_segments: usize,
    pending: VecDeque<(SocketAddr, Vec<u8>)>,
    want_writable: bool,
    /// A session was established since the store was last saved.
    trust_dirty: bool,
    last_save: Option<Instant>,
    adaptive_spin: Duration,
    shutdown_drain: Duration,
    /// Until when the loop polls without sleeping (after traffic).
    spin_until: Instant,
    turner: Arc<AtomicUsize>,
}

/// The trust store is saved at most this often while running.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

impl EventLoop {
    pub fn new(
        poll: Poll,
        mut socket: mio::net::UdpSocket,
        endpoint: Endpoint,
        commands: Receiver<Command>,
        events: Sender<Event>,
        settings: LoopSettings,
    ) -> io::Result<Self> {
        let LoopSettings {
            trust_path,
            busy_poll,
            adaptive_spin,
            shutdown_drain,
            turner,
        } = settings;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        let state = quinn_udp::UdpSocketState::new((&socket).into())?;
        let max_datagram = endpoint.config().max_datagram;
        // With GRO one buffer may hold several datagrams.
        let recv_stride = if state.gro_segments() > 1 {
            GRO_BUFFER
        } else {
            max_datagram
        };
        let max_segments = state.max_gso_segments().clamp(1, MAX_BATCH);
        let timer = PreciseTimer::new(poll.registry(), TIMER);
        Ok(Self {
            poll,
            timer,
            socket,
            state,
            endpoint,
            commands,
            events,
            trust_path,
            busy_poll,
            recv_buf: vec![0; recv_stride * BATCH],
            recv_stride,
            tx_buf: vec![0; (max_datagram * max_segments).min(MAX_GSO_BYTES) + max_datagram],
            max_datagram,
            max_segments,
            pending: VecDeque::new(),
            want_writable: false,
            trust_dirty: false,
            last_save: None,
            adaptive_spin,
            shutdown_drain,
            spin_until: Instant::now(),
            turner,
        })
    }

    pub fn run(&mut self) -> Result<(), ChannelError> {
        let mut mio_events = Events::with_capacity(16);
        loop {
            while let Ok(cmd) = self.commands.try_recv() {
                match cmd {
                    Command::Run(job) => job(&mut self.endpoint, Instant::now()),
                    Command::Shutdown => return self.shut_down(),
                }
            }
            self.turn(&mut mio_events, None)?;
        }
    }

    /// One pass: send, read, run due timers, send, hand events over, then
    /// wait for the socket, a command or the next timer (at most
    /// `max_wait`). `max_wait` is given by a caller-driven loop
    /// ([`super::InlineChannel`]) and `None` on the loop thread; a
    /// caller-driven pass runs the timers before it reads and returns as
    /// soon as something arrived.
    pub fn turn(&mut self, mio_events: &mut Events, max_wait: Option<Duration>) -> Result<(), ChannelError> {
        let caller_driven = max_wait.is_some();
        // This thread takes every wake before it sleeps: wakes raised on it
        // need not ring the waker.
        self.turner.store(thread_mark(), Ordering::Relaxed);
        // What the application wrote since the last turn goes before the
        // receive call, not after it: a reply does not wait out a syscall.
        self.transmit()?;
        let drained = if caller_driven {
            // Timers first, and back to the application as soon as
            // datagrams arrived: it acts on them before anything else runs,
            // and the next turn starts by sending its reply. What the
            // engine answers by itself (handshakes, pongs) still goes now.
            self.run_due_timers()?;
            let got = self.receive()?;
            if got.datagrams > 0 {
                self.transmit()?;
                self.forward_events();
                return Ok(());
            }
            got.drained
        } else {
            let drained = self.receive()?.drained;
            self.run_due_timers()?;
            drained
        };
        self.forward_events();
        self.save_trust_if_due()?;
        // Readiness is edge-triggered: a socket left undrained raises no
        // new event, so come straight back for the rest.
        let spinning = self.busy_poll || Instant::now() < self.spin_until;
        if drained && spinning && !caller_driven {
            // Let a thread this loop just woke (the application's, with
            // a message) run now rather than at the end of our time slice:
            // with no core to spare that wait is milliseconds. With a core
            // to spare it returns at once. (A caller-driven loop runs on
            // the application's thread: there is no one to yield to.)
            std::thread::yield_now();
        }
        let timeout = if !drained || spinning {
            Some(Duration::ZERO)
        } else {
            self.endpoint.poll_timeout().map(|t| {
                let now = Instant::now();
                let d = t.saturating_duration_since(now);
                let precise = |timer: &mut PreciseTimer| !d.is_zero() && timer.arm(now, t);
                if d < SPIN_BELOW && !self.timer.as_mut().is_some_and(precise) {
                    Duration::ZERO
                } else {
                    // With the timer armed, the poll's own (rounded-up)
                    // timeout is only a backstop.
                    d
                }
            })
        };
        let timeout = match (timeout, max_wait) {
            (Some(t), Some(m)) => Some(t.min(m)),
            (t, m) => t.or(m),
        };
        if caller_driven && timeout == Some(Duration::ZERO) {
            // A caller spinning on its turns reads the socket at the next
            // one anyway: readiness only matters to a turn that sleeps
            // (wakes left queued make its first sleep return at once).
            return Ok(());
        }
        match self.poll.poll(mio_events, timeout) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// Runs the engine's due timers and sends what they (or anything
    /// before them) produced.
    fn run_due_timers(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        self.transmit()
    }

    /// Reads the datagrams waiting, up to [`BATCHES_PER_TURN`] batches.
    fn receive(&mut self) -> io::Result<Received> {
        let mut got = Received {
            drained: false,
            datagrams: 0,
        };
        let mut meta = [quinn_udp::RecvMeta::default(); BATCH];
        for _ in 0..BATCHES_PER_TURN {
            let mut slices: [IoSliceMut<'_>; BATCH] = {
                let mut chunks = self.recv_buf.chunks_mut(self.recv_stride);
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()))
            };
            let n = match self.state.recv((&self.socket).into(), &mut slices, &mut meta) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    got.drained = true;
                    return Ok(got);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors and the like: the engine's timers handle peers
                // that went away.
                Err(e) => {
                    tracing::debug!(error = %e, "recv error");
                    continue;
                }
            };
            let now = Instant::now();
            self.spin_until = now + self.adaptive_spin;
            for (i, m) in meta.iter().take(n).enumerate() {
                let buf = &self.recv_buf[i * self.recv_stride..i * self.recv_stride + m.len];
                let stride = if m.stride == 0 { m.len.max(1) } else { m.stride };
                for datagram in buf.chunks(stride) {
                    self.endpoint.handle_datagram(now, m.addr, datagram);
                    got.datagrams += 1;
                }
            }
            if n < BATCH {
                // A short batch emptied the queue as the kernel read it,
                // and every datagram queued since raises a new readiness
                // edge: asking again would only hear "would block" (a
                // fifth of the loop's system calls at 1,000 sessions).
                got.drained = true;
                return Ok(got);
            }
        }
        Ok(got)
    }

    /// Sends everything the engine has, keeping what the socket refuses.
    /// Consecutive datagrams to one destination go out as one GSO batch
    /// (equal-size segments, the last possibly shorter).
    fn transmit(&mut self) -> io::Result<()> {
        while let Some((dest, datagram)) = self.pending.pop_front() {
            if !self.send(dest, &datagram, None) {
                self.pending.push_front((dest, datagram));
                return self.set_writable(true);
            }
        }
        let now = Instant::now();
        // The batch being built: destination, segment size, bytes so far.
        let mut batch: Option<(SocketAddr, usize, usize)> = None;
        loop {
            let at = batch.map_or(0, |b| b.2);
            let next = self
                .endpoint
                .poll_transmit(now, &mut self.tx_buf[at..at + self.max_datagram]);
            if let (Some(t), Some(b)) = (next, batch.as_mut()) {
                let (dest, seg, bytes) = *b;
                if t.destination == dest
                    && t.len <= seg
                    && bytes % seg == 0
                    && bytes / seg < self.max_segments
                    && bytes + t.len <= MAX_GSO_BYTES
                {
                    b.2 += t.len;
                    continue;
                }
            }
            // Flush what is batched, then start over with `next`.
            if let Some((dest, seg, bytes)) = batch.take() {
                let segment = (bytes > seg).then_some(seg);
                let sent = send_datagrams(&self.state, &self.socket, dest, &self.tx_buf[..bytes], segment);
                if !self.tally(sent, bytes.div_ceil(seg)) {
                    self.keep(dest, 0..bytes, seg);
                    if let Some(t) = next {
                        self.keep(t.destination, at..at + t.len, t.len);
                    }
                    return self.set_writable(true);
                }
            }
            let Some(t) = next else { break };
            self.spin_until = now + self.adaptive_spin;
            self.tx_buf.copy_within(at..at + t.len, 0);
            batch = Some((t.destination, t.len, t.len));
        }
        self.set_writable(false)
    }

    /// Keeps datagrams the socket refused (from `tx_buf`), one per segment.
    fn keep(&mut self, dest: SocketAddr, range: std::ops::Range<usize>, segment: usize) {
        for d in self.tx_buf[range].chunks(segment.max(1)) {
            if self.pending.len() < MAX_PENDING {
                self.pending.push_back((dest, d.to_vec()));
            } else {
                self.endpoint.note_send_failures(1);
            }
        }
    }

    /// Sends one datagram; false if the socket is full.
    fn send(&mut self, dest: SocketAddr, contents: &[u8], segment: Option<usize>) -> bool {
        let sent = send_datagrams(&self.state, &self.socket, dest, contents, segment);
        self.tally(sent, 1)
    }

    /// Counts a send's outcome; false if the socket was full.
    fn tally(&mut self, sent: Sent, datagrams: usize) -> bool {
        match sent {
            Sent::Yes => true,
            Sent::Full => false,
            Sent::Failed => {
                self.endpoint.note_send_failures(datagrams as u64);
                true
            }
        }
    }

    fn set_writable(&mut self, on: bool) -> io::Result<()> {
        if on != self.want_writable {
            let interest = if on {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            self.poll
                .registry()
                .reregister(&mut self.socket, SOCKET, interest)?;
            self.want_writable = on;
        }
        Ok(())
    }

    /// Saves the store after new sessions (so a crash loses no peer
    /// addresses or history), at most once per [`SAVE_INTERVAL`].
    fn save_trust_if_due(&mut self) -> io::Result<()> {
        let due = self.last_save.is_none_or(|t| t.elapsed() >= SAVE_INTERVAL);
        if let (true, true, Some(path)) = (self.trust_dirty, due, &self.trust_path) {
            if let Err(e) = self.endpoint.trust_store().save(path) {
                tracing::warn!(error = %e, "could not save the associates");
            }
            self.trust_dirty = false;
            self.last_save = Some(Instant::now());
        }
        Ok(())
    }

    fn forward_events(&mut self) {
        while let Some(e) = self.endpoint.poll_event() {
            if matches!(e, Event::Connected { .. }) {
                self.trust_dirty = true;
            }
            if let Err(TrySendError::Full(_)) = self.events.try_send(e) {
                self.endpoint.note_events_dropped(1);
            }
        }
    }

    /// Closes every session, lets the close frames go, saves the store.
    pub fn shut_down(&mut self) -> Result<(), ChannelError> {
        // Drain first: what the application sent last (a transfer's
        // completion, a final command) would otherwise die with the session
        // if its packet was lost, and the peer would see a failure. Only
        // couriers' reliable messages count: a session always has some
        // keepalive or state packet in flight.
        let mut mio_events = Events::with_capacity(16);
        let until = Instant::now() + self.shutdown_drain;
        while self.endpoint.has_unsettled() && Instant::now() < until {
            self.turn(&mut mio_events, Some(Duration::from_millis(5)))?;
        }
        let now = Instant::now();
        let peers: Vec<_> = self.endpoint.connected_peers().collect();
        for p in peers {
            let _ = self.endpoint.close(now, &p);
        }
        let until = Instant::now() + SHUTDOWN_LINGER;
        while Instant::now() < until {
            self.transmit()?;
            self.receive()?;
            if self.pending.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.forward_events();
        if let Some(path) = &self.trust_path {
            self.endpoint.trust_store().save(path)?;
        }
        Ok(())
    }
}

enum Sent {
    Yes,
    /// The socket's buffer is full: try again when writable.
    Full,
    /// Unreachable and the like: the datagrams are lost, and loss recovery
    /// deals with it.
    Failed,
}

/// One `sendmsg`: a datagram, or a GSO batch of `segment`-sized ones.
fn send_datagrams(
    state: &quinn_udp::UdpSocketState,
    socket: &mio::net::UdpSocket,
    destination: SocketAddr,
    contents: &[u8],
    segment_size: Option<usize>,
) -> Sent {
    let transmit = quinn_udp::Transmit {
        destination,
        ecn: None,
        contents,
        segment_size,
        src_ip: None,
    };
    match state.try_send(socket.into(), &transmit) {
        Ok(()) => Sent::Yes,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Sent::Full,
        Err(e) => {
            tracing::debug!(error = %e, %destination, "send error");
            Sent::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::thread_mark;

    #[test]
    fn thread_marks_tell_threads_apart_and_stay_put() {
        let here = thread_mark();
        assert_ne!(here, 0);
        assert_eq!(thread_mark(), here);
        let there = std::thread::spawn(thread_mark).join().unwrap();
        assert_ne!(there, here);
    }
}
