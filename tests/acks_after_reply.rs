//! An acknowledgement takes effect after the reply that a courier writes to
//! the datagram it came in (off the reply path), and before the engine
//! sleeps; its RTT sample is taken at arrival.

use std::time::{Duration, Instant};

use octolink::stream::StreamEvent;
use octolink_couriers::MessageCourier;

// The round-trip benchmarks' two engines and MessageCouriers, wired back to
// back (this test uses its nodes, not its timed round trip).
#[allow(dead_code)]
#[path = "../benches/common/mod.rs"]
mod pair;
use pair::{Node, Pair};

fn messages(n: &mut Node) -> &mut MessageCourier {
    n.ep.courier_mut::<MessageCourier>(n.courier).unwrap()
}

/// The one datagram `n` sends at `now` (the test's traffic makes one).
fn one_datagram(n: &mut Node, now: Instant) -> Vec<u8> {
    let mut buf = vec![0; 2048];
    let t = n.ep.poll_transmit(now, &mut buf).expect("a datagram");
    buf.truncate(t.len);
    buf
}

/// Everything `from` sends at `now`, delivered; whether there was any.
fn flush(from: &mut Node, to: &mut Node, now: Instant) -> bool {
    let mut buf = vec![0; 2048];
    if from.ep.poll_timeout().is_some_and(|t| t <= now) {
        from.ep.handle_timeout(now);
    }
    let mut any = false;
    while let Some(t) = from.ep.poll_transmit(now, &mut buf) {
        to.ep.handle_datagram(now, from.addr, &buf[..t.len]);
        any = true;
    }
    any
}

/// Both sides' traffic at `now`, until both are quiet.
fn settle(a: &mut Node, b: &mut Node, now: Instant) {
    for _ in 0..50 {
        let a_sent = flush(a, b, now);
        let b_sent = flush(b, a, now);
        if !a_sent && !b_sent {
            return;
        }
    }
}

fn connected_pair() -> (Node, Node, Instant) {
    let Pair { mut a, mut b, .. } = Pair::connected();
    // Whatever the handshake left unacknowledged, acknowledged.
    let now = Instant::now() + Duration::from_millis(50);
    settle(&mut a, &mut b, now);
    (a, b, now)
}

/// A's message, and B's reply to it (which acknowledges it) arriving at A
/// 10 ms after A sent: the ACK is kept, not applied. Returns A's message
/// id and the arrival time.
fn reply_arrives(a: &mut Node, b: &mut Node, sent: Instant) -> (u64, Instant) {
    let id = messages(a).send(sent, b"ping".to_vec(), None).unwrap();
    let ping = one_datagram(a, sent);
    let arrived = sent + Duration::from_millis(10);
    b.ep.handle_datagram(arrived - Duration::from_millis(5), a.addr, &ping);
    assert!(messages(b).recv().is_some());
    messages(b)
        .send(arrived - Duration::from_millis(5), b"pong".to_vec(), None)
        .unwrap();
    let pong = one_datagram(b, arrived - Duration::from_millis(5));
    a.ep.handle_datagram(arrived, b.addr, &pong);
    assert!(messages(a).recv().is_some(), "the reply is there at once");
    (id, arrived)
}

fn delivered(n: &mut Node) -> Vec<u64> {
    std::iter::from_fn(|| messages(n).poll_event())
        .filter_map(|e| match e {
            StreamEvent::Delivered(id) => Some(id),
            _ => None,
        })
        .collect()
}

#[test]
fn an_ack_takes_effect_after_the_reply_it_came_with_and_samples_rtt_at_arrival() {
    let (mut a, mut b, now) = connected_pair();
    let peer = b.ep.node_id();
    let samples = |n: &Node| n.ep.stats().sessions[0].rtt.samples;
    let before = samples(&a);
    let (id, arrived) = reply_arrives(&mut a, &mut b, now);
    assert!(delivered(&mut a).is_empty(), "the ACK waits for the reply");
    assert_eq!(samples(&a), before);

    // A's application answers; the answer is built before the ACK applies.
    let later = arrived + Duration::from_millis(40);
    messages(&mut a).send(later, b"next".to_vec(), None).unwrap();
    let _next = one_datagram(&mut a, later);
    assert!(
        delivered(&mut a).is_empty(),
        "not applied while building the reply"
    );

    // The next call (the driver's "until None") applies it.
    let mut buf = vec![0; 2048];
    assert!(a.ep.poll_transmit(later, &mut buf).is_none());
    assert_eq!(delivered(&mut a), vec![id]);
    let stats = a.ep.stats();
    let session = stats.sessions.iter().find(|s| s.peer == peer).unwrap();
    assert_eq!(session.rtt.samples, before + 1);
    assert_eq!(
        session.rtt.latest,
        Some(Duration::from_millis(10)),
        "sampled when it arrived, not 40 ms later when applied"
    );
}

#[test]
fn an_ack_left_without_a_reply_is_applied_before_the_engine_sleeps() {
    let (mut a, mut b, now) = connected_pair();
    let (id, _) = reply_arrives(&mut a, &mut b, now);
    let mut buf = vec![0; 2048];
    // Nothing to send yet: the ACK stays kept through an empty poll...
    let _ = a.ep.poll_transmit(now + Duration::from_millis(10), &mut buf);
    assert!(delivered(&mut a).is_empty());
    // ...and applies when the driver asks how long it may sleep.
    let _ = a.ep.poll_timeout();
    assert_eq!(delivered(&mut a), vec![id]);
}

#[test]
fn a_kept_ack_applies_before_the_next_datagram_is_handled() {
    let (mut a, mut b, now) = connected_pair();
    let (first, arrived) = reply_arrives(&mut a, &mut b, now);
    // A second exchange arrives before A polls at all: the first ACK goes
    // first, then the second is kept.
    let (second, _) = reply_arrives(&mut a, &mut b, arrived + Duration::from_millis(1));
    assert_eq!(delivered(&mut a), vec![first]);
    let _ = a.ep.poll_timeout();
    assert_eq!(delivered(&mut a), vec![second]);
}

#[test]
fn what_a_closing_peer_acknowledged_is_delivered_not_failed() {
    let (mut a, mut b, now) = connected_pair();
    let id = messages(&mut a).send(now, b"last words".to_vec(), None).unwrap();
    let datagram = one_datagram(&mut a, now);
    b.ep.handle_datagram(now, a.addr, &datagram);
    assert!(messages(&mut b).recv().is_some());
    // B closes: its CLOSE packet carries the ACK of A's message.
    b.ep.close(now, &a.ep.node_id()).unwrap();
    let close = one_datagram(&mut b, now);
    a.ep.handle_datagram(now, b.addr, &close);
    let events: Vec<StreamEvent> = std::iter::from_fn(|| messages(&mut a).poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::Delivered(d) if *d == id)),
        "acknowledged in the close: {events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, StreamEvent::Failed(_))),
        "{events:?}"
    );
}
