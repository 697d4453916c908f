//! Many sessions on one endpoint: a server and N clients in memory, each
//! client publishing one AgentState parameter at 20 Hz to the server, which
//! keeps one view per client (a fleet server tracking each robot's pose). Prints
//! the server engine's CPU time per second of traffic, and the memory it
//! holds per session (allocations made inside the server's calls).
//!
//! `cargo run --release -p octolink-couriers --example scale -- 100 1000 5000 10000`
//!
//! `SCALE_ACK_DELAY_MS=100` gives the server that acknowledgement delay
//! (announced to the clients), as a server of many periodic publishers
//! would set it.
//!
//! Each client needs its own RSA-2048 identity (about 0.1 s to generate on
//! one core, then kept under target/scale-keys): a first run at 10,000
//! spends about a quarter of an hour on keys. `SCALE_SECONDS` sets how long
//! the steady phase is measured (default 2 s).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use octolink::sim::fixture_identity;
use octolink::{
    CourierId, CourierScope, Endpoint, EndpointConfig, Event, Identity, NodeAssociate, Role, TrustStore,
};

mod fleet;

/// Counts bytes allocated and freed while the current thread is inside the
/// server's calls.
struct Attributing;

thread_local! {
    static IN_SERVER: Cell<bool> = const { Cell::new(false) };
}
static SERVER_LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Attributing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IN_SERVER.with(Cell::get) {
            SERVER_LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if IN_SERVER.with(Cell::get) {
            SERVER_LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Attributing = Attributing;

/// Runs `f` as server work: timed, and its allocations attributed.
/// Runs `f` (harness work inside a server call) unattributed.
fn harness_work<R>(f: impl FnOnce() -> R) -> R {
    IN_SERVER.with(|c| c.set(false));
    let r = f();
    IN_SERVER.with(|c| c.set(true));
    r
}

fn server_work<R>(busy: &mut Duration, f: impl FnOnce() -> R) -> R {
    IN_SERVER.with(|c| c.set(true));
    let t = Instant::now();
    let r = f();
    *busy += t.elapsed();
    IN_SERVER.with(|c| c.set(false));
    r
}

/// Datagrams the driver reads per turn of its loop at most (8 batches of
/// 32), before it runs timers and sends.
const DATAGRAMS_PER_TURN: usize = 256;

fn client_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250 + 1) as u8], 40_000))
}

struct Row {
    sessions: usize,
    cpu_share: f64,
    bytes_per_session: f64,
    bytes_per_peer: f64,
    /// Peers the server re-examined on every poll (0 once all are settled).
    polled: usize,
    /// Datagrams the server received and sent per session-second.
    packets_in: f64,
    packets_out: f64,
}

fn measure(identities: &[Identity]) -> Row {
    let n = identities.len();
    let t0 = Instant::now();
    let server_id = fixture_identity("a");
    let server_addr: SocketAddr = "10.0.0.1:7400".parse().unwrap_or_else(|_| unreachable!());
    let mut busy = Duration::ZERO;
    let base = SERVER_LIVE.load(Ordering::Relaxed);
    let server_cfg = EndpointConfig {
        max_ack_delay: fleet::server_max_ack_delay(),
        ..EndpointConfig::default()
    };
    let mut server = server_work(&mut busy, || {
        Endpoint::new(server_cfg, server_id.clone(), TrustStore::new(), [1; 32], t0, 0)
            .expect("server config")
    });
    let mut clients = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    let mut by_addr = HashMap::new();
    for (i, id) in identities.iter().enumerate() {
        server_work(&mut busy, || {
            server
                .add_associate(NodeAssociate::new(
                    id.public().clone(),
                    format!("c{i}"),
                    Role::Remote,
                ))
                .expect("client key");
            // The server's view of this client's state: it defines what the
            // client publishes, so their digests agree once in sync.
            let (_view, courier) = fleet::pose_state(server.node_id(), id.id());
            server
                .register_courier(CourierScope::Peer(id.id()), CourierId(1), Box::new(courier))
                .expect("courier");
        });
        let mut trust = TrustStore::new();
        trust
            .insert(
                NodeAssociate::new(server_id.public().clone(), "server", Role::Agent)
                    .with_address(server_addr),
            )
            .expect("server key");
        let mut c =
            Endpoint::new(EndpointConfig::default(), id.clone(), trust, [2; 32], t0, 0).expect("client");
        let (state, courier) = fleet::pose_state(id.id(), server.node_id());
        c.register_courier(
            CourierScope::Peer(server.node_id()),
            CourierId(1),
            Box::new(courier),
        )
        .expect("courier");
        by_addr.insert(client_addr(i), i);
        clients.push(c);
        states.push(state);
    }
    let registered = SERVER_LIVE.load(Ordering::Relaxed);
    let mut now = t0;
    for c in &mut clients {
        c.connect(now, &server.node_id()).expect("connect");
    }
    // Clients run only when due (their timer, or a datagram from the
    // server): polling thousands of them every millisecond would evict the
    // server's state from the caches, which a real deployment (clients on
    // other machines) does not.
    let mut fleet = Fleet {
        due: (0..n).map(|i| Reverse((now, i))).collect(),
        last_run: vec![None; n],
        server,
        clients,
        by_addr,
        server_addr,
        to_server: VecDeque::new(),
        buf: vec![0u8; 2048],
        spent: Vec::new(),
        reply_bytes: Vec::new(),
        replies: Vec::new(),
    };
    // Handshakes (the server's verification budget paces them).
    let mut connected = 0;
    for _ in 0..120_000 {
        connected += fleet.step(now, &mut busy);
        now += Duration::from_millis(1);
        if connected >= n {
            break;
        }
    }
    let connected = fleet
        .server
        .stats()
        .sessions
        .iter()
        .filter(|s| s.connected)
        .count();
    assert_eq!(connected, n, "not every client connected");
    // Settle, then measure two seconds of 20 Hz state from every client.
    for _ in 0..1000 {
        fleet.step(now, &mut busy);
        now += Duration::from_millis(1);
    }
    let before = fleet.server.stats();
    let mut busy_steady = Duration::ZERO;
    let mut value = 0u64;
    let seconds = fleet::measured_seconds(2);
    for ms in 0..seconds * 1000 {
        // Each client publishes every 50 ms, in its own phase (robots'
        // clocks are not in step).
        value += 1;
        for (i, s) in states.iter().enumerate().skip((ms % 50) as usize).step_by(50) {
            s.set(now, fleet::POSE, &value).expect("set");
            fleet.due.push(Reverse((now, i)));
        }
        fleet.step(now, &mut busy_steady);
        now += Duration::from_millis(1);
    }
    let server = fleet.server;
    let live = SERVER_LIVE.load(Ordering::Relaxed);
    let after = server.stats();
    let per_session_second = |a: u64, b: u64| (a - b) as f64 / (n as u64 * seconds) as f64;
    Row {
        polled: after.polled_peers,
        packets_in: per_session_second(after.received.packets, before.received.packets),
        packets_out: per_session_second(after.sent.packets, before.sent.packets),
        sessions: n,
        cpu_share: busy_steady.as_secs_f64() / seconds as f64,
        bytes_per_session: (live - registered) as f64 / n as f64,
        bytes_per_peer: (live - base) as f64 / n as f64,
    }
}

/// The server, its clients, and the datagrams between them.
struct Fleet {
    server: Endpoint,
    clients: Vec<Endpoint>,
    by_addr: HashMap<SocketAddr, usize>,
    server_addr: SocketAddr,
    to_server: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Clients by when they next need a turn.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    last_run: Vec<Option<Instant>>,
    buf: Vec<u8>,
    /// Datagrams the server has handled, freed after its timed section,
    /// and its replies, copied into one reused arena: a driver reads into
    /// and sends from fixed buffers, and the harness's allocator work is
    /// not the server's.
    spent: Vec<(SocketAddr, Vec<u8>)>,
    reply_bytes: Vec<u8>,
    replies: Vec<(SocketAddr, std::ops::Range<usize>)>,
}

impl Fleet {
    /// One millisecond: the clients that are due, then the server (its
    /// work timed into `busy`), then the server's replies. Returns the
    /// sessions the server saw established.
    fn step(&mut self, now: Instant, busy: &mut Duration) -> usize {
        let buf = &mut self.buf;
        while let Some(&Reverse((t, i))) = self.due.peek() {
            if t > now {
                break;
            }
            self.due.pop();
            if self.last_run[i] == Some(now) {
                continue;
            }
            self.last_run[i] = Some(now);
            let c = &mut self.clients[i];
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
            while let Some(t) = c.poll_transmit(now, buf) {
                self.to_server.push_back((client_addr(i), buf[..t.len].to_vec()));
            }
            while c.poll_event().is_some() {}
            if let Some(t) = c.poll_timeout() {
                self.due.push(Reverse((t.max(now + Duration::from_millis(1)), i)));
            }
        }
        let mut connected = 0;
        let (server, to_server, spent) = (&mut self.server, &mut self.to_server, &mut self.spent);
        let (reply_bytes, replies) = (&mut self.reply_bytes, &mut self.replies);
        reply_bytes.clear();
        replies.clear();
        server_work(busy, || loop {
            // Turns as the driver takes them: a receive batch, then timers,
            // sends and events.
            let batch = to_server.len().min(DATAGRAMS_PER_TURN);
            for (from, d) in to_server.drain(..batch) {
                server.handle_datagram(now, from, &d);
                harness_work(|| spent.push((from, d)));
            }
            if server.poll_timeout().is_some_and(|t| t <= now) {
                server.handle_timeout(now);
            }
            while let Some(t) = server.poll_transmit(now, buf) {
                // The harness's copy is not the server's memory.
                harness_work(|| {
                    let at = reply_bytes.len();
                    reply_bytes.extend_from_slice(&buf[..t.len]);
                    replies.push((t.destination, at..reply_bytes.len()));
                });
            }
            while let Some(e) = server.poll_event() {
                connected += usize::from(matches!(e, Event::Connected { .. }));
            }
            if to_server.is_empty() {
                break;
            }
        });
        self.spent.clear();
        for (to, range) in self.replies.drain(..) {
            if let Some(&i) = self.by_addr.get(&to) {
                self.clients[i].handle_datagram(now, self.server_addr, &self.reply_bytes[range]);
                self.due.push(Reverse((now + Duration::from_millis(1), i)));
            }
        }
        connected
    }
}

fn main() {
    let sizes = fleet::sizes(&[50, 100, 200]);
    let identities = fleet::client_identities(sizes.iter().copied().max().unwrap_or(0));
    println!("| sessions | server engine CPU at 20 Hz each | per session (session state) | per peer (with associate and courier) | polled peers | datagrams in / out per session-second |");
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let r = measure(&identities[..n]);
        println!(
            "| {} | {:.1} % of a core ({:.1} µs per session-second) | {:.1} KiB | {:.1} KiB | {} | {:.1} / {:.1} |",
            r.sessions,
            r.cpu_share * 100.0,
            r.cpu_share * 1e6 / r.sessions as f64,
            r.bytes_per_session / 1024.0,
            r.bytes_per_peer / 1024.0,
            r.polled,
            r.packets_in,
            r.packets_out
        );
    }
}
