//! The standard couriers over real sockets on 127.0.0.1.

use std::time::{Duration, Instant};

use octolink::driver::{ChannelConfig, CommsChannel};
use octolink::sim::{fixture_associate, fixture_identity};
use octolink::wire::{ETHERNET_DATAGRAM, MAX_DATAGRAM};
use octolink::{Event, Role};
use octolink_couriers::blob::{Acceptor, BlobConfig};
use octolink_couriers::standard::StandardCouriers;
use octolink_couriers::{AgentState, BlobEvent, CommandEvent};

const WAIT: Duration = Duration::from_secs(20);

struct Node {
    channel: CommsChannel,
    state: AgentState,
    couriers: Option<StandardCouriers>,
}

fn node(name: &str, max_datagram: usize) -> Node {
    let mut cfg = ChannelConfig::new("127.0.0.1:0".parse().unwrap(), fixture_identity(name));
    cfg.endpoint.max_datagram = max_datagram;
    let channel = CommsChannel::start(cfg).unwrap();
    let state = AgentState::new(channel.node_id());
    state.define(1, "speed", 200, &0.0f32).unwrap();
    state.define(2, "mode", 255, &String::new()).unwrap();
    Node {
        channel,
        state,
        couriers: None,
    }
}

/// Agent "a" and remote "b", paired, standard couriers installed, connected.
fn pair(dir: &std::path::Path) -> (Node, Node) {
    pair_with(dir, ETHERNET_DATAGRAM)
}

fn pair_with(dir: &std::path::Path, max_datagram: usize) -> (Node, Node) {
    let (mut a, mut b) = (node("a", max_datagram), node("b", max_datagram));
    for (me, other, name) in [(&a, &b, "b"), (&b, &a, "a")] {
        me.channel
            .add_associate(fixture_associate(name, Role::Agent).with_address(other.channel.local_addr()))
            .unwrap();
    }
    let blob_cfg = |d: &std::path::Path| BlobConfig {
        acceptor: Acceptor::Directory(d.to_path_buf()),
        ..BlobConfig::default()
    };
    a.couriers =
        Some(StandardCouriers::install(&a.channel, b.channel.node_id(), &a.state, blob_cfg(dir)).unwrap());
    b.couriers =
        Some(StandardCouriers::install(&b.channel, a.channel.node_id(), &b.state, blob_cfg(dir)).unwrap());
    b.channel.connect(a.channel.node_id()).unwrap();
    let peer = b.channel.node_id();
    assert!(a
        .channel
        .wait_for(
            WAIT,
            |e| matches!(e, Event::Connected { peer: p, .. } if *p == peer)
        )
        .is_some());
    (a, b)
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("octolink-rt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn agent_state_flows_both_ways() {
    let dir = temp_dir("state");
    let (a, b) = pair(&dir);
    a.state.set(Instant::now(), 1, &1.5f32).unwrap();
    b.state.set(Instant::now(), 2, &"docking".to_string()).unwrap();
    assert!(until(WAIT, || {
        b.state.get::<f32>(Instant::now(), 1).unwrap().value == 1.5
            && a.state.get::<String>(Instant::now(), 2).unwrap().value == "docking"
    }));
    assert!(until(WAIT, || a
        .state
        .get::<f32>(Instant::now(), 1)
        .unwrap()
        .verified));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn commands_arrive_in_order_and_are_confirmed() {
    let dir = temp_dir("cmd");
    let (a, b) = pair(&dir);
    let (ca, cb) = (a.couriers.unwrap(), b.couriers.unwrap());
    for i in 0..50u8 {
        cb.send_command(&b.channel, vec![i], Some(Duration::from_secs(5)))
            .unwrap();
    }
    let mut got = Vec::new();
    assert!(until(WAIT, || {
        got.extend(
            ca.take_commands(&a.channel)
                .unwrap()
                .into_iter()
                .map(|c| c.body[0]),
        );
        got.len() == 50
    }));
    assert_eq!(got, (0..50).collect::<Vec<u8>>());
    let mut delivered = 0;
    assert!(until(WAIT, || {
        delivered += cb
            .take_command_events(&b.channel)
            .unwrap()
            .iter()
            .filter(|e| matches!(e, CommandEvent::Delivered(_)))
            .count();
        delivered == 50
    }));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_16_mib_file_arrives_intact() {
    send_16_mib_file("blob", ETHERNET_DATAGRAM);
}

/// Jumbo datagrams go out in GSO batches that must stay under the kernel's
/// 64 KiB limit per send (a batch over it fails whole).
#[test]
fn a_16_mib_file_arrives_intact_in_jumbo_datagrams() {
    let sender = send_16_mib_file("jumbo", MAX_DATAGRAM);
    assert_eq!(sender.send_failures, 0, "the socket refused datagrams");
    let average = sender.sent.bytes / sender.sent.packets.max(1);
    assert!(
        average > ETHERNET_DATAGRAM as u64,
        "jumbo datagrams were used (average {average} bytes)"
    );
}

/// Sends a 16 MiB file from "b" to "a" and checks it arrived intact;
/// returns the sender's statistics.
fn send_16_mib_file(tag: &str, max_datagram: usize) -> octolink::Stats {
    let dir = temp_dir(tag);
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    let (a, b) = pair_with(&dst, max_datagram);
    let data: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = src.join("map.bin");
    std::fs::write(&file, &data).unwrap();
    let cb = b.couriers.unwrap();
    let ca = a.couriers.unwrap();
    let id = cb.send_file(&b.channel, &file, 10).unwrap();
    let mut path = None;
    assert!(until(Duration::from_secs(60), || {
        for e in ca.take_blob_events(&a.channel).unwrap() {
            if let BlobEvent::Completed { path: p, .. } = e {
                path = p;
            }
        }
        path.is_some()
    }));
    let got = std::fs::read(path.unwrap()).unwrap();
    assert!(got == data, "16 MiB intact");
    assert!(until(WAIT, || cb
        .take_blob_events(&b.channel)
        .unwrap()
        .iter()
        .any(
            |e| matches!(e, BlobEvent::Completed { id: i, outgoing: true, .. } if *i == id)
        )));
    let _ = std::fs::remove_dir_all(dir);
    b.channel.stats().unwrap()
}

#[test]
fn a_pipe_courier_echoes_reliably_between_threads() {
    use octolink::stream::{Delivery, StreamConfig};
    use octolink::{CourierId, CourierScope};
    use octolink_couriers::PipeCourier;

    let (a, b) = (node("a", 512), node("b", 512));
    for (me, other, name) in [(&a, &b, "b"), (&b, &a, "a")] {
        me.channel
            .add_associate(fixture_associate(name, Role::Agent).with_address(other.channel.local_addr()))
            .unwrap();
    }
    let cfg = StreamConfig::new(Delivery::ReliableOrdered);
    let (ca, tx_a, rx_a) = PipeCourier::new(cfg, 200, 1024, a.channel.notifier());
    let (cb, tx_b, rx_b) = PipeCourier::new(cfg, 200, 1024, b.channel.notifier());
    a.channel
        .register_courier(
            CourierScope::Peer(b.channel.node_id()),
            CourierId(77),
            Box::new(ca),
        )
        .unwrap();
    b.channel
        .register_courier(
            CourierScope::Peer(a.channel.node_id()),
            CourierId(77),
            Box::new(cb),
        )
        .unwrap();
    a.channel.connect(b.channel.node_id()).unwrap();
    let echo = std::thread::spawn(move || {
        for _ in 0..1000 {
            let m = rx_b.recv_timeout(WAIT).expect("message");
            tx_b.send(m).unwrap();
        }
    });
    for i in 0..1000u32 {
        tx_a.send(i.to_be_bytes().to_vec()).unwrap();
        let back = rx_a.recv_timeout(WAIT).expect("echo");
        assert_eq!(back, i.to_be_bytes());
    }
    echo.join().unwrap();
}
