//! Many sessions on one real endpoint: a [`CommsChannel`] (its event-loop
//! thread and its UDP socket on loopback) as a fleet server, and N clients,
//! each a sans-IO engine with its own socket, publishing one AgentState
//! parameter at 20 Hz. Prints the CPU time the server's loop thread spent
//! per second (engine and socket calls, as the kernel accounts them) and
//! the traffic it carried.
//!
//! `cargo run --release -p octolink-couriers --example scale_sockets -- 1000 5000 10000`
//!
//! The clients run on this process's main thread. On a two-core machine
//! they share the second core, and thousands of them need more than a core
//! for their own socket calls: the table reports the rate they achieved
//! (20 datagrams a second each is the full load) next to the loop's cost.
//! Needs one file descriptor per client (`ulimit -n`). `SCALE_SECONDS`
//! sets the measured phase (default 5 s); `SCALE_ACK_DELAY_MS` the
//! server's acknowledgement delay, as in the `scale` example, which runs
//! the same fleet in memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use octolink::driver::{ChannelConfig, CommsChannel};
use octolink::sim::fixture_identity;
use octolink::{
    CourierId, CourierScope, Endpoint, EndpointConfig, Event, Identity, NodeAssociate, Role, TrustStore,
};
use octolink_couriers::AgentState;

mod fleet;

const PUBLISH_PERIOD: Duration = Duration::from_millis(50);

/// Nanoseconds a thread has run, from the scheduler's own accounting.
fn thread_cpu_ns(task: &str) -> u64 {
    std::fs::read_to_string(format!("{task}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("schedstat (Linux only)")
}

/// The /proc directory of the thread whose name starts with `prefix`.
fn find_thread(prefix: &str) -> String {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .map(|e| e.path().display().to_string())
        .find(|task| {
            std::fs::read_to_string(format!("{task}/comm")).is_ok_and(|name| name.starts_with(prefix))
        })
        .expect("the loop thread")
}

/// The clients: engines, their sockets, and when each next needs a turn.
struct Clients {
    engines: Vec<Endpoint>,
    sockets: Vec<UdpSocket>,
    states: Vec<AgentState>,
    poll: Poll,
    /// Engine deadlines; an entry is stale unless it equals `timer_at`.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    timer_at: Vec<Option<Instant>>,
    publish_due: BinaryHeap<Reverse<(Instant, usize)>>,
    buf: Vec<u8>,
    connected: usize,
    published: u64,
    send_errors: u64,
    value: u64,
}

impl Clients {
    fn new(ids: &[Identity], server: &NodeAssociate, now: Instant) -> Self {
        let server_id = server.id;
        let poll = Poll::new().expect("poll");
        let mut c = Clients {
            engines: Vec::with_capacity(ids.len()),
            sockets: Vec::with_capacity(ids.len()),
            states: Vec::with_capacity(ids.len()),
            poll,
            due: BinaryHeap::new(),
            timer_at: vec![None; ids.len()],
            publish_due: BinaryHeap::new(),
            buf: vec![0u8; 2048],
            connected: 0,
            published: 0,
            send_errors: 0,
            value: 0,
        };
        for (i, id) in ids.iter().enumerate() {
            let mut trust = TrustStore::new();
            trust.insert(server.clone()).expect("server key");
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let mut engine =
                Endpoint::new(EndpointConfig::default(), id.clone(), trust, seed, now, 0).expect("client");
            let (state, courier) = fleet::pose_state(id.id(), server_id);
            engine
                .register_courier(CourierScope::Peer(server_id), CourierId(1), Box::new(courier))
                .expect("courier");
            let mut socket = UdpSocket::bind("127.0.0.1:0".parse().expect("addr")).unwrap_or_else(|e| {
                panic!("socket {i}: {e} (one file descriptor per client: raise `ulimit -n`)")
            });
            c.poll
                .registry()
                .register(&mut socket, Token(i), Interest::READABLE)
                .expect("register");
            engine.connect(now, &server_id).expect("connect");
            c.engines.push(engine);
            c.sockets.push(socket);
            c.states.push(state);
        }
        for i in 0..ids.len() {
            c.turn(i, now);
        }
        c
    }

    /// Gives client `i` a turn: timers, sends, events, and its next deadline.
    fn turn(&mut self, i: usize, now: Instant) {
        let engine = &mut self.engines[i];
        if engine.poll_timeout().is_some_and(|t| t <= now) {
            engine.handle_timeout(now);
        }
        while let Some(t) = engine.poll_transmit(now, &mut self.buf) {
            if self.sockets[i]
                .send_to(&self.buf[..t.len], t.destination)
                .is_err()
            {
                self.send_errors += 1;
            }
        }
        while let Some(e) = engine.poll_event() {
            self.connected += usize::from(matches!(e, Event::Connected { .. }));
        }
        let next = engine.poll_timeout();
        if next != self.timer_at[i] {
            self.timer_at[i] = next;
            if let Some(t) = next {
                self.due.push(Reverse((t, i)));
            }
        }
    }

    /// Starts every client publishing, each in its own phase (robots'
    /// clocks are not in step).
    fn start_publishing(&mut self, now: Instant) {
        let n = self.engines.len() as u32;
        for i in 0..self.engines.len() {
            self.publish_due
                .push(Reverse((now + PUBLISH_PERIOD * i as u32 / n, i)));
        }
    }

    /// Runs the clients for `span`: publications, deadlines, and datagrams.
    fn run_for(&mut self, span: Duration) {
        let end = Instant::now() + span;
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if now >= end {
                return;
            }
            while let Some(&Reverse((t, i))) = self.publish_due.peek() {
                if t > now {
                    break;
                }
                self.publish_due.pop();
                self.publish_due.push(Reverse((t + PUBLISH_PERIOD, i)));
                self.value += 1;
                self.published += 1;
                self.states[i].set(now, fleet::POSE, &self.value).expect("set");
                self.turn(i, now);
            }
            while let Some(&Reverse((t, i))) = self.due.peek() {
                if t > now {
                    break;
                }
                self.due.pop();
                if self.timer_at[i] == Some(t) {
                    self.timer_at[i] = None;
                    self.turn(i, now);
                }
            }
            let next = [self.due.peek(), self.publish_due.peek()]
                .into_iter()
                .flatten()
                .map(|Reverse((t, _))| *t)
                .fold(end, Instant::min);
            self.poll
                .poll(&mut events, Some(next.saturating_duration_since(Instant::now())))
                .expect("poll");
            for ev in &events {
                let i = ev.token().0;
                let now = Instant::now();
                loop {
                    match self.sockets[i].recv_from(&mut self.buf) {
                        Ok((len, from)) => self.engines[i].handle_datagram(now, from, &self.buf[..len]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                self.turn(i, now);
            }
        }
    }
}

struct Row {
    sessions: usize,
    handshakes: Duration,
    loop_share: f64,
    clients_share: f64,
    published: f64,
    packets_in: f64,
    packets_out: f64,
    send_errors: u64,
    /// Peers the server re-examined on every poll at the end (0 once all
    /// are settled).
    polled: usize,
}

fn measure(ids: &[Identity]) -> Row {
    let n = ids.len();
    let server_identity = fixture_identity("a");
    let mut cfg = ChannelConfig::new("127.0.0.1:0".parse().expect("addr"), server_identity.clone());
    cfg.endpoint.max_ack_delay = fleet::server_max_ack_delay();
    let channel = CommsChannel::start(cfg).expect("channel");
    let (server, server_addr) = (channel.node_id(), channel.local_addr());
    let keys: Vec<_> = ids.iter().map(|id| id.public().clone()).collect();
    // The server's associates and its view of each client, in one visit to
    // the loop. No per-update events: a fleet server reads its views.
    channel
        .with_endpoint(move |ep, _| {
            for (i, key) in keys.into_iter().enumerate() {
                let node = key.id();
                ep.add_associate(NodeAssociate::new(key, format!("c{i}"), Role::Remote))
                    .expect("client key");
                let (_view, courier) = fleet::pose_state(node, server);
                ep.register_courier(CourierScope::Peer(node), CourierId(1), Box::new(courier))
                    .expect("courier");
            }
        })
        .expect("loop");
    let loop_task = find_thread("octolink-");
    let me = "/proc/thread-self".to_string();
    let started = Instant::now();
    let server_associate =
        NodeAssociate::new(server_identity.public().clone(), "server", Role::Agent).with_address(server_addr);
    let mut clients = Clients::new(ids, &server_associate, started);
    while clients.connected < n {
        clients.run_for(Duration::from_millis(100));
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{} of {n} connected",
            clients.connected
        );
    }
    let handshakes = started.elapsed();
    clients.start_publishing(Instant::now());
    clients.run_for(Duration::from_secs(1));
    let seconds = fleet::measured_seconds(5);
    let before = channel.stats().expect("stats");
    let (loop0, me0, published0, t0) = (
        thread_cpu_ns(&loop_task),
        thread_cpu_ns(&me),
        clients.published,
        Instant::now(),
    );
    clients.run_for(Duration::from_secs(seconds));
    let (loop1, me1, elapsed) = (thread_cpu_ns(&loop_task), thread_cpu_ns(&me), t0.elapsed());
    let after = channel.stats().expect("stats");
    let per_session_second = |a: u64, b: u64| (a - b) as f64 / n as f64 / elapsed.as_secs_f64();
    let row = Row {
        sessions: n,
        handshakes,
        loop_share: (loop1 - loop0) as f64 / elapsed.as_nanos() as f64,
        clients_share: (me1 - me0) as f64 / elapsed.as_nanos() as f64,
        published: per_session_second(clients.published, published0),
        packets_in: per_session_second(after.received.packets, before.received.packets),
        packets_out: per_session_second(after.sent.packets, before.sent.packets),
        send_errors: clients.send_errors,
        polled: after.polled_peers,
    };
    channel.shutdown().expect("shutdown");
    row
}

fn main() {
    let sizes = fleet::sizes(&[100, 1000]);
    let identities = fleet::client_identities(sizes.iter().copied().max().unwrap_or(0));
    println!("| sessions | connected in | server loop thread CPU | per session-second | clients' thread CPU | updates per session-second | server datagrams in / out per session-second | client send errors | server's polled peers |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let r = measure(&identities[..n]);
        println!(
            "| {} | {:.1} s | {:.1} % of a core | {:.1} µs | {:.1} % | {:.1} | {:.1} / {:.1} | {} | {} |",
            r.sessions,
            r.handshakes.as_secs_f64(),
            r.loop_share * 100.0,
            r.loop_share * 1e6 / r.sessions as f64,
            r.clients_share * 100.0,
            r.published,
            r.packets_in,
            r.packets_out,
            r.send_errors,
            r.polled,
        );
    }
}
