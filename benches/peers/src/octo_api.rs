//! octolink through its public blocking API (`CommsChannel` + couriers),
//! encrypted as users run it.

use std::time::{Duration, Instant};

use octolink::driver::{ChannelConfig, CommsChannel, InlineChannel};
use octolink::sim::{fixture_associate, fixture_identity};
use octolink::stream::{Delivery, StreamConfig};
use octolink::wire::{ETHERNET_DATAGRAM, MAX_DATAGRAM};
use octolink::{CourierId, CourierScope, NodeId, Role};
use octolink_couriers::blob::{Acceptor, BlobConfig};
use octolink_couriers::{recv_spinning, BlobCourier, BlobEvent, PipeCourier, PipeReceiver, PipeSender};

use crate::relay::Relay;
use crate::stats::{median_bulk, mib_per_s, payload, Percentiles, Results};
use crate::work::Work;

const PIPE: CourierId = CourierId(1);
const BLOB: CourierId = CourierId(2);

struct Pair {
    client: CommsChannel,
    server: CommsChannel,
    _relay: Option<Relay>,
}

fn pair(busy: bool, lossy: Option<(Duration, f64)>, datagram: usize) -> Pair {
    let start = |name: &str| {
        let mut cfg = ChannelConfig::new("127.0.0.1:0".parse().unwrap(), fixture_identity(name));
        cfg.busy_poll = busy;
        cfg.endpoint.max_datagram = datagram;
        cfg.endpoint.max_send_rate = 1 << 40;
        CommsChannel::start(cfg).expect("channel")
    };
    let (client, server) = (start("a"), start("b"));
    let relay = lossy.map(|(delay, loss)| Relay::start(server.local_addr(), delay, loss, 7));
    let server_addr = relay.as_ref().map_or(server.local_addr(), |r| r.addr);
    client
        .add_associate(fixture_associate("b", Role::Agent).with_address(server_addr))
        .unwrap();
    server
        .add_associate(fixture_associate("a", Role::Remote))
        .unwrap();
    Pair {
        client,
        server,
        _relay: relay,
    }
}

fn pipes(p: &Pair) -> ((PipeSender, PipeReceiver), (PipeSender, PipeReceiver)) {
    let mut cfg = StreamConfig::new(Delivery::ReliableOrdered);
    cfg.max_message = 1024;
    let mut ends = Vec::new();
    for (me, other) in [(&p.client, &p.server), (&p.server, &p.client)] {
        let (c, tx, rx) = PipeCourier::new(cfg, 200, 4096, me.notifier());
        me.register_courier(CourierScope::Peer(other.node_id()), PIPE, Box::new(c))
            .unwrap();
        ends.push((tx, rx));
    }
    let b = ends.pop().unwrap();
    (ends.pop().unwrap(), b)
}

/// Waits for a pipe message: blocking, or (busy-poll mode) polling, as an
/// application that gave the loop spare cores would.
fn take(rx: &PipeReceiver, busy: bool, timeout: Duration) -> Option<Vec<u8>> {
    if busy {
        recv_spinning(rx, timeout, timeout)
    } else {
        rx.recv_timeout(timeout).ok()
    }
}

fn rtt(busy: bool, size: usize, w: &Work) -> Option<Percentiles> {
    let p = pair(busy, None, ETHERNET_DATAGRAM);
    let ((ctx, crx), (stx, srx)) = pipes(&p);
    p.client.connect(p.server.node_id()).ok()?;
    let total = w.warmup + w.round_trips;
    let echo = std::thread::spawn(move || {
        for _ in 0..total {
            let Some(m) = take(&srx, busy, Duration::from_secs(10)) else {
                return;
            };
            let _ = stx.send(m);
        }
    });
    let msg = vec![7u8; size];
    let mut samples = Vec::with_capacity(w.round_trips);
    for i in 0..total {
        let t = Instant::now();
        ctx.send(msg.clone()).ok()?;
        take(&crx, busy, Duration::from_secs(10))?;
        if i >= w.warmup {
            samples.push(t.elapsed());
        }
    }
    echo.join().ok()?;
    Percentiles::of(samples)
}

fn handshake(busy: bool) -> Option<Duration> {
    let p = pair(busy, None, ETHERNET_DATAGRAM);
    let ((ctx, _), (_, srx)) = pipes(&p);
    let t = Instant::now();
    p.client.connect(p.server.node_id()).ok()?;
    ctx.send(vec![1]).ok()?;
    srx.recv_timeout(Duration::from_secs(10)).ok()?;
    Some(t.elapsed())
}

/// A blob from client to server; goodput from offer to verified arrival.
fn bulk(
    busy: bool,
    datagram: usize,
    bytes: usize,
    lossy: Option<(Duration, f64)>,
    budget: Duration,
) -> Option<f64> {
    let p = pair(busy, lossy, datagram);
    let tx = p
        .client
        .register_courier(
            CourierScope::Peer(p.server.node_id()),
            BLOB,
            Box::new(BlobCourier::new(BlobConfig::default())),
        )
        .ok()?;
    let rx_cfg = BlobConfig {
        acceptor: Acceptor::Memory,
        max_incoming_size: u64::MAX,
        ..BlobConfig::default()
    };
    let rx = p
        .server
        .register_courier(
            CourierScope::Peer(p.client.node_id()),
            BLOB,
            Box::new(BlobCourier::new(rx_cfg)),
        )
        .ok()?;
    p.client.connect(p.server.node_id()).ok()?;
    let data = payload(bytes);
    let t = Instant::now();
    p.client
        .with_courier::<BlobCourier, _>(tx, move |c, now| {
            c.send(now, Box::new(data), bytes as u64, "bulk", 1)
        })
        .ok()?
        .ok()?;
    let deadline = t + budget;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        let outcome = p
            .server
            .with_courier::<BlobCourier, _>(rx, |c, _| {
                std::iter::from_fn(|| c.poll_event()).find_map(|e| match e {
                    BlobEvent::Completed { .. } => Some(Ok(())),
                    BlobEvent::Failed { reason, .. } | BlobEvent::Cancelled { reason, .. } => {
                        Some(Err(reason))
                    }
                    _ => None,
                })
            })
            .ok()?;
        match outcome {
            Some(Ok(())) => return Some(mib_per_s(bytes, t.elapsed())),
            Some(Err(reason)) => {
                eprintln!("octolink API bulk failed: {reason}");
                return None;
            }
            None => {}
        }
    }
    // A stall is a finding: say where each side stood.
    for (side, ch) in [("client", &p.client), ("server", &p.server)] {
        if let Ok(s) = ch.stats() {
            eprintln!("octolink API bulk stalled; {side}: {:?}", s.sessions);
            eprintln!("  {side} drops: {:?}; couriers: {:?}", s.drops, s.couriers);
        }
    }
    None
}

pub fn run(w: &Work, busy: bool) -> Results {
    let lossy = |loss| {
        bulk(
            busy,
            ETHERNET_DATAGRAM,
            w.lossy_bytes,
            Some((w.relay_delay, loss)),
            w.budget,
        )
    };
    let b = median_bulk(w, || {
        bulk(busy, ETHERNET_DATAGRAM, w.bulk_bytes, None, w.clean_budget).map(|m| (m, true))
    });
    Results {
        library: if busy { "octolink API (busy-poll)" } else { "octolink API" }.into(),
        mode: format!(
            "CommsChannel event-loop thread per node{}; reliable-ordered PipeCourier for ping-pong, BlobCourier for bulk; AES-256-GCM; 1452-byte datagrams",
            if busy { ", busy-polling" } else { ", sleeping in epoll" }
        ),
        rtt64: rtt(busy, 64, w),
        rtt512: rtt(busy, 512, w),
        bulk_mib_s: b.mib_s(),
        bulk_checksum_ok: Some(true),
        lossy1_mib_s: lossy(0.01),
        lossy5_mib_s: lossy(0.05),
        handshake: handshake(busy),
        notes: std::iter::once("bulk checksum: BLAKE3 digest verified by the receiving BlobCourier".into())
            .chain(b.note())
            .collect(),
    }
}

/// The API's bulk (sleeping in epoll) `n` times: a rare stall shows up
/// here with each side's counters, where the full run only says n/a.
pub fn repeat_bulk(w: &Work, n: usize) {
    let mut stalls = 0;
    for i in 0..n {
        let r = bulk(
            false,
            ETHERNET_DATAGRAM,
            w.bulk_bytes,
            None,
            Duration::from_secs(20),
        );
        stalls += usize::from(r.is_none());
        println!("{i}: {}", r.map_or("stalled".into(), |m| format!("{m:.1} MiB/s")));
    }
    println!("{stalls} of {n} stalled");
}

/// Bulk alone with jumbo datagrams: what loopback (one robot's processes) or
/// a jumbo-frame link allows. Compare with the raw-UDP jumbo row.
pub fn run_jumbo(w: &Work) -> Results {
    let b = median_bulk(w, || {
        bulk(false, MAX_DATAGRAM, w.bulk_bytes, None, w.clean_budget).map(|m| (m, true))
    });
    Results {
        library: format!("octolink API, {MAX_DATAGRAM}-byte datagrams"),
        mode: format!("as octolink API, bulk only, with max_datagram = {MAX_DATAGRAM}"),
        bulk_mib_s: b.mib_s(),
        bulk_checksum_ok: Some(true),
        notes: std::iter::once(format!(
            "bulk with {MAX_DATAGRAM}-byte datagrams; its floor is the raw-UDP row of the same size"
        ))
        .chain(b.note())
        .collect(),
        ..Results::default()
    }
}

/// The caller-driven runtime: each side's thread turns its own
/// `InlineChannel` (socket, loop and engine on that thread), spinning.
pub fn run_inline(w: &Work) -> Results {
    Results {
        library: "octolink API (caller-driven)".into(),
        mode: "InlineChannel turned by each side's own thread, spinning (turn(0)); reliable-ordered PipeCourier; AES-256-GCM; 1452-byte datagrams".into(),
        rtt64: inline_rtt(64, w),
        rtt512: inline_rtt(512, w),
        handshake: inline_handshake(),
        notes: vec!["bulk and lossy not run for this mode (the loop is the threaded API's)".into()],
        ..Results::default()
    }
}

struct InlinePair {
    client: InlineChannel,
    server: InlineChannel,
    client_pipe: (PipeSender, PipeReceiver),
    server_pipe: (PipeSender, PipeReceiver),
}

fn inline_pair() -> Option<InlinePair> {
    let start = |name: &str| {
        let mut cfg = ChannelConfig::new("127.0.0.1:0".parse().unwrap(), fixture_identity(name));
        cfg.endpoint.max_datagram = ETHERNET_DATAGRAM;
        cfg.endpoint.max_send_rate = 1 << 40;
        InlineChannel::start(cfg).ok()
    };
    let (mut client, mut server) = (start("a")?, start("b")?);
    let server_addr = server.local_addr();
    client
        .endpoint()
        .add_associate(fixture_associate("b", Role::Agent).with_address(server_addr))
        .ok()?;
    server
        .endpoint()
        .add_associate(fixture_associate("a", Role::Remote))
        .ok()?;
    let mut cfg = StreamConfig::new(Delivery::ReliableOrdered);
    cfg.max_message = 1024;
    let pipe = |me: &mut InlineChannel, other: NodeId| {
        let (c, tx, rx) = PipeCourier::new(cfg, 200, 4096, me.notifier());
        me.register_courier(CourierScope::Peer(other), PIPE, Box::new(c))
            .ok()?;
        Some((tx, rx))
    };
    let (client_id, server_id) = (client.node_id(), server.node_id());
    let client_pipe = pipe(&mut client, server_id)?;
    let server_pipe = pipe(&mut server, client_id)?;
    Some(InlinePair {
        client,
        server,
        client_pipe,
        server_pipe,
    })
}

fn inline_rtt(size: usize, w: &Work) -> Option<Percentiles> {
    let InlinePair {
        mut client,
        mut server,
        client_pipe: (ctx, crx),
        server_pipe: (stx, srx),
    } = inline_pair()?;
    let server_id = server.node_id();
    client.endpoint().connect(Instant::now(), &server_id).ok()?;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::clone(&done);
    let echo = std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if server.turn(Duration::ZERO).is_err() {
                return;
            }
            while let Ok(m) = srx.try_recv() {
                let _ = stx.send(m);
            }
        }
    });
    let msg = vec![7u8; size];
    let total = w.warmup + w.round_trips;
    let mut samples = Vec::with_capacity(w.round_trips);
    let give_up = Instant::now() + Duration::from_secs(120);
    for i in 0..total {
        let t = Instant::now();
        ctx.send(msg.clone()).ok()?;
        loop {
            client.turn(Duration::ZERO).ok()?;
            if crx.try_recv().is_ok() {
                break;
            }
            if Instant::now() > give_up {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                return None;
            }
        }
        if i >= w.warmup {
            samples.push(t.elapsed());
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    echo.join().ok()?;
    Percentiles::of(samples)
}

/// Connect to the first byte at the server, one thread turning both.
fn inline_handshake() -> Option<Duration> {
    let InlinePair {
        mut client,
        mut server,
        client_pipe: (ctx, _),
        server_pipe: (_, srx),
    } = inline_pair()?;
    let server_id = server.node_id();
    let t = Instant::now();
    client.endpoint().connect(Instant::now(), &server_id).ok()?;
    ctx.send(vec![1]).ok()?;
    while t.elapsed() < Duration::from_secs(10) {
        client.turn(Duration::ZERO).ok()?;
        server.turn(Duration::ZERO).ok()?;
        if srx.try_recv().is_ok() {
            return Some(t.elapsed());
        }
    }
    None
}
