//! renet 2 with its netcode transport (unsecure mode: no token server in a
//! benchmark; renet's secure mode would add encryption), reliable-ordered
//! channel, default ConnectionConfig, update/send_packets every turn of a
//! tight loop, one thread per side.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use renet::{ConnectionConfig, DefaultChannel, RenetClient, RenetServer};
use renet_netcode::{
    ClientAuthentication, NetcodeClientTransport, NetcodeServerTransport, ServerAuthentication, ServerConfig,
};

use crate::relay::Relay;
use crate::stats::{
    checksum, mib_per_s, payload, reliable_results, spin_round_trips, Fnv, Percentiles, Results,
};
use crate::work::Work;

const PROTOCOL: u64 = 7;

fn wall() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

struct Server {
    server: RenetServer,
    transport: NetcodeServerTransport,
    last: Instant,
}

impl Server {
    fn new(socket: UdpSocket, public: SocketAddr) -> Self {
        let config = ServerConfig {
            current_time: wall(),
            max_clients: 4,
            protocol_id: PROTOCOL,
            public_addresses: vec![public],
            authentication: ServerAuthentication::Unsecure,
        };
        Self {
            server: RenetServer::new(ConnectionConfig::default()),
            transport: NetcodeServerTransport::new(config, socket).expect("server transport"),
            last: Instant::now(),
        }
    }

    fn turn(&mut self, mut on_message: impl FnMut(&mut RenetServer, u64, bytes::Bytes)) {
        let now = Instant::now();
        let dt = now - self.last;
        self.last = now;
        self.server.update(dt);
        let _ = self.transport.update(dt, &mut self.server);
        for id in self.server.clients_id() {
            while let Some(m) = self.server.receive_message(id, DefaultChannel::ReliableOrdered) {
                on_message(&mut self.server, id, m);
            }
        }
        self.transport.send_packets(&mut self.server);
    }
}

struct Client {
    client: RenetClient,
    transport: NetcodeClientTransport,
    last: Instant,
}

impl Client {
    fn new(socket: UdpSocket, server: SocketAddr) -> Self {
        let auth = ClientAuthentication::Unsecure {
            protocol_id: PROTOCOL,
            client_id: 1,
            server_addr: server,
            user_data: None,
        };
        Self {
            client: RenetClient::new(ConnectionConfig::default()),
            transport: NetcodeClientTransport::new(wall(), auth, socket).expect("client transport"),
            last: Instant::now(),
        }
    }

    fn turn(&mut self) {
        let now = Instant::now();
        let dt = now - self.last;
        self.last = now;
        self.client.update(dt);
        let _ = self.transport.update(dt, &mut self.client);
        let _ = self.transport.send_packets(&mut self.client);
    }
}

fn sockets(lossy: Option<(Duration, f64)>) -> (UdpSocket, UdpSocket, SocketAddr, Option<Relay>) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let relay = lossy.map(|(d, l)| Relay::start(s.local_addr().unwrap(), d, l, 7));
    let target = relay.as_ref().map_or(s.local_addr().unwrap(), |r| r.addr);
    (c, s, target, relay)
}

fn rtt(size: usize, w: &Work) -> (Option<Percentiles>, Option<Duration>) {
    let (c, s, target, _r) = sockets(None);
    let total = w.warmup + w.round_trips;
    let t0 = Instant::now();
    let (first_tx, first_rx) = crossbeam_channel::bounded(1);
    let echo = std::thread::spawn(move || {
        let mut server = Server::new(s, target);
        let mut echoed = 0;
        let end = Instant::now() + Duration::from_secs(120);
        while echoed < total && Instant::now() < end {
            server.turn(|srv, id, m| {
                if echoed == 0 {
                    let _ = first_tx.send(Instant::now());
                }
                srv.send_message(id, DefaultChannel::ReliableOrdered, m);
                echoed += 1;
            });
        }
        let linger = Instant::now() + Duration::from_millis(100);
        while Instant::now() < linger {
            server.turn(|_, _, _| {});
        }
    });
    let mut client = Client::new(c, target);
    while !client.client.is_connected() {
        client.turn();
        if t0.elapsed() > Duration::from_secs(10) {
            return (None, None);
        }
    }
    let msg = bytes::Bytes::from(vec![7u8; size]);
    let send = |c: &mut Client| {
        c.client
            .send_message(DefaultChannel::ReliableOrdered, msg.clone())
    };
    let poll = |c: &mut Client| {
        c.turn();
        c.client
            .receive_message(DefaultChannel::ReliableOrdered)
            .is_some()
    };
    let Some(samples) = spin_round_trips(w, &mut client, send, poll) else {
        return (None, None);
    };
    let _ = echo.join();
    (
        Percentiles::of(samples),
        first_rx.try_recv().ok().map(|at| at - t0),
    )
}

fn bulk(bytes: usize, lossy: Option<(Duration, f64)>, budget: Duration) -> Option<(f64, bool)> {
    let (c, s, target, _relay) = sockets(lossy);
    let data = payload(bytes);
    let expected = checksum(&data);
    let sink = std::thread::spawn(move || {
        let mut server = Server::new(s, target);
        let mut got = 0;
        let mut sum = Fnv::default();
        let end = Instant::now() + budget;
        while got < bytes && Instant::now() < end {
            server.turn(|_, _, m| {
                sum.update(&m);
                got += m.len();
            });
        }
        let done = Instant::now();
        let linger = Instant::now() + Duration::from_millis(200);
        while Instant::now() < linger {
            server.turn(|_, _, _| {});
        }
        (got == bytes).then_some((done, sum.0))
    });
    let mut client = Client::new(c, target);
    let t = Instant::now();
    let mut off = 0;
    while !sink.is_finished() {
        client.turn();
        while client.client.is_connected()
            && off < bytes
            && client
                .client
                .channel_available_memory(DefaultChannel::ReliableOrdered)
                > 32 * 1024
        {
            let end = (off + 16 * 1024).min(bytes);
            client.client.send_message(
                DefaultChannel::ReliableOrdered,
                bytes::Bytes::copy_from_slice(&data[off..end]),
            );
            off = end;
        }
    }
    let Some((done, sum)) = sink.join().ok()? else {
        // Say why in the run's log: a stall is a finding.
        eprintln!(
            "renet bulk did not finish; client disconnected: {:?}",
            client.client.disconnect_reason()
        );
        return None;
    };
    Some((mib_per_s(bytes, done - t), sum == expected))
}

pub fn run(w: &Work) -> Results {
    reliable_results(
        "renet 2 + netcode",
        "renet 2.0 + renet_netcode (unsecure mode), default ConnectionConfig, ReliableOrdered channel; update + send_packets every turn of a tight loop, one thread per side; no crypto",
        w,
        rtt,
        bulk,
    )
}
