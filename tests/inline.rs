//! The caller-driven runtime: two channels on loopback, both driven by the
//! test's one thread.

mod common;

use std::time::{Duration, Instant};

use common::{identity, Probe};
use octolink::driver::{ChannelConfig, InlineChannel};
use octolink::sim::fixture_associate;
use octolink::{CourierId, CourierScope, Event, Role};

fn start(name: &str) -> InlineChannel {
    let config = ChannelConfig::new("127.0.0.1:0".parse().unwrap(), identity(name));
    InlineChannel::start(config).expect("channel starts")
}

/// Turns both until `done` holds, or ten seconds pass.
fn turn_both_until(
    a: &mut InlineChannel,
    b: &mut InlineChannel,
    mut done: impl FnMut(&mut InlineChannel, &mut InlineChannel) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        a.turn(Duration::ZERO).unwrap();
        b.turn(Duration::ZERO).unwrap();
        if done(a, b) {
            return true;
        }
    }
    false
}

#[test]
fn one_thread_drives_two_channels_through_a_handshake_and_messages() {
    let (mut a, mut b) = (start("a"), start("b"));
    let (a_id, b_id) = (a.node_id(), b.node_id());
    let (a_addr, b_addr) = (a.local_addr(), b.local_addr());
    a.endpoint()
        .add_associate(fixture_associate("b", Role::Agent).with_address(b_addr))
        .unwrap();
    b.endpoint()
        .add_associate(fixture_associate("a", Role::Remote).with_address(a_addr))
        .unwrap();
    let id = CourierId(1);
    let on_a = a
        .register_courier(CourierScope::Peer(b_id), id, Box::new(Probe::new(1, 64)))
        .unwrap();
    let on_b = b
        .register_courier(CourierScope::Peer(a_id), id, Box::new(Probe::new(1, 64)))
        .unwrap();
    a.endpoint().connect(Instant::now(), &b_id).unwrap();
    let connected = turn_both_until(&mut a, &mut b, |a, b| {
        a.endpoint().is_connected(&b_id) && b.endpoint().is_connected(&a_id)
    });
    assert!(connected, "handshake over loopback");

    // A message there and its echo back.
    let now = Instant::now();
    a.endpoint()
        .courier_mut::<Probe>(on_a)
        .unwrap()
        .push(now, b"ping".to_vec());
    let arrived = turn_both_until(&mut a, &mut b, |_, b| {
        b.poll_event()
            .is_some_and(|e| matches!(e, Event::CourierData { .. }))
    });
    assert!(arrived, "b was told of the message");
    let got = std::mem::take(&mut b.endpoint().courier_mut::<Probe>(on_b).unwrap().inbox);
    assert_eq!(got, vec![b"ping".to_vec()]);
    let now = Instant::now();
    b.endpoint()
        .courier_mut::<Probe>(on_b)
        .unwrap()
        .push(now, b"pong".to_vec());
    let echoed = turn_both_until(&mut a, &mut b, |a, _| {
        a.endpoint()
            .courier::<Probe>(on_a)
            .is_some_and(|p| !p.inbox.is_empty())
    });
    assert!(echoed);

    // wait_for turns the loop itself.
    let token = a.endpoint().ping(&b_id).unwrap();
    // b needs turning meanwhile: on another thread, until a has its pong.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let pong = std::thread::scope(|s| {
        let stop = &stop;
        let b = &mut b;
        let helper = s.spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                b.turn(Duration::from_millis(1)).unwrap();
            }
        });
        let pong = a.wait_for(
            Duration::from_secs(10),
            |e| matches!(e, Event::Pong { token: t, .. } if *t == token),
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        helper.join().unwrap();
        pong
    });
    assert!(pong.is_some(), "pong within the wait");
    a.shutdown().unwrap();
    // b hears the close at its next turns.
    let closed = b.wait_for(Duration::from_secs(10), |e| {
        matches!(e, Event::Disconnected { .. })
    });
    assert!(closed.is_some());
}
