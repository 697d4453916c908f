//! The stream halves against a reference model, over a channel that loses
//! frames, loses acknowledgements (so data arrives twice) and reorders.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::courier::PayloadWriter;

/// What the channel does with one frame.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver,
    Lose,
    /// Arrives, but its acknowledgement is lost: the sender re-sends.
    AckLost,
    /// Held back and delivered after the next frame.
    Delay,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![4 => Just(Fate::Deliver), 2 => Just(Fate::Lose), 1 => Just(Fate::AckLost), 1 => Just(Fate::Delay)]
}

/// Runs `count` messages through; returns what the receiver delivered and
/// the sender's events.
fn run(delivery: Delivery, count: usize, fates: &[Fate]) -> (Vec<Vec<u8>>, Vec<StreamEvent>) {
    let mut cfg = StreamConfig::new(delivery);
    cfg.window = 16;
    let mut tx = SendStream::new(cfg);
    let mut rx = RecvStream::new(cfg);
    let mut pushed = 0usize;
    let mut delayed: Option<(u64, Vec<u8>)> = None;
    let mut got = Vec::new();
    let mut events = Vec::new();
    let mut token = 0u64;
    let mut step = 0usize;
    let now = Instant::now();
    while step < 100_000 {
        while pushed < count && tx.push(format!("m{pushed:05}").into_bytes()).is_ok() {
            pushed += 1;
        }
        if pushed == count && !tx.wants_to_send() && tx.unacked() == 0 && delayed.is_none() {
            break;
        }
        if !tx.wants_to_send() {
            // Only the delayed frame is outstanding: let it land.
            if let Some((t, p)) = delayed.take() {
                rx.on_payload(&p, Duration::ZERO).unwrap();
                tx.on_delivered(t);
            } else if tx.unacked() > 0 && !delivery.is_reliable() {
                break;
            }
            step += 1;
            continue;
        }
        token += 1;
        let mut buf = [0u8; 64];
        let mut w = PayloadWriter::new(&mut buf, token);
        tx.write(now, &mut w);
        let n = w.len();
        let payload = buf[..n].to_vec();
        // After the scripted fates run out, the channel is perfect.
        let f = fates.get(step).copied().unwrap_or(Fate::Deliver);
        match f {
            Fate::Deliver => {
                rx.on_payload(&payload, Duration::ZERO).unwrap();
                tx.on_delivered(token);
            }
            Fate::Lose => tx.on_lost(token),
            Fate::AckLost => {
                rx.on_payload(&payload, Duration::ZERO).unwrap();
                tx.on_lost(token);
            }
            Fate::Delay => {
                if let Some((t, p)) = delayed.replace((token, payload)) {
                    rx.on_payload(&p, Duration::ZERO).unwrap();
                    tx.on_delivered(t);
                }
            }
        }
        while let Some(m) = rx.pop() {
            got.push(m);
        }
        while let Some(e) = tx.poll_event() {
            events.push(e);
        }
        step += 1;
    }
    while let Some(m) = rx.pop() {
        got.push(m);
    }
    while let Some(e) = tx.poll_event() {
        events.push(e);
    }
    (got, events)
}

fn expected(count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| format!("m{i:05}").into_bytes()).collect()
}

proptest! {
    #[test]
    fn reliable_ordered_delivers_everything_once_in_order(
        count in 1usize..120,
        fates in proptest::collection::vec(fate(), 0..400),
    ) {
        let (got, events) = run(Delivery::ReliableOrdered, count, &fates);
        prop_assert_eq!(got, expected(count));
        let delivered = events.iter().filter(|e| matches!(e, StreamEvent::Delivered(_))).count();
        prop_assert_eq!(delivered, count, "each message confirmed exactly once");
    }

    #[test]
    fn reliable_unordered_delivers_everything_exactly_once(
        count in 1usize..120,
        fates in proptest::collection::vec(fate(), 0..400),
    ) {
        let (mut got, _) = run(Delivery::ReliableUnordered, count, &fates);
        got.sort();
        prop_assert_eq!(got, expected(count));
    }

    #[test]
    fn sequenced_never_goes_backwards(
        count in 1usize..120,
        fates in proptest::collection::vec(fate(), 0..400),
    ) {
        let (got, _) = run(Delivery::UnreliableSequenced, count, &fates);
        for w in got.windows(2) {
            prop_assert!(w[0] < w[1], "{:?} then {:?}", w[0], w[1]);
        }
    }
}

#[test]
fn a_full_reliable_queue_refuses_and_keeps_what_it_accepted() {
    let mut cfg = StreamConfig::new(Delivery::ReliableOrdered);
    cfg.max_queued = 3;
    let mut tx = SendStream::new(cfg);
    for i in 0..3 {
        assert_eq!(tx.push(vec![i]), Ok(i as u64));
    }
    assert_eq!(tx.push(vec![9]), Err(PushError::Full { queued: 3 }));
    assert_eq!(tx.queue_depth(), 3);
    let mut buf = [0u8; 64];
    let mut w = PayloadWriter::new(&mut buf, 1);
    assert_eq!(
        tx.write(Instant::now(), &mut w),
        3,
        "all three accepted messages go out"
    );
    assert!(tx.push(vec![9]).is_err(), "sent but unacknowledged still counts");
    tx.on_delivered(1);
    assert!(tx.push(vec![9]).is_ok(), "room again once acknowledged");
}

#[test]
fn unreliable_queue_supersedes_the_oldest_and_says_so() {
    let mut cfg = StreamConfig::new(Delivery::Unreliable);
    cfg.max_queued = 1;
    let mut tx = SendStream::new(cfg);
    tx.push(vec![1]).unwrap();
    tx.push(vec![2]).unwrap();
    assert_eq!(tx.poll_event(), Some(StreamEvent::Superseded(0)));
    assert_eq!(tx.queue_depth(), 1);
}

#[test]
fn session_end_fails_what_was_in_flight_and_keeps_the_unsent() {
    let mut cfg = StreamConfig::new(Delivery::ReliableOrdered);
    cfg.window = 1;
    let mut tx = SendStream::new(cfg);
    tx.push(vec![1]).unwrap();
    tx.push(vec![2]).unwrap();
    let mut buf = [0u8; 64];
    let mut w = PayloadWriter::new(&mut buf, 7);
    assert_eq!(tx.write(Instant::now(), &mut w), 1, "window of one");
    tx.on_session_end();
    assert_eq!(tx.poll_event(), Some(StreamEvent::Failed(0)));
    assert_eq!(tx.queue_depth(), 1);
    assert!(tx.wants_to_send());
}

#[test]
fn malformed_payloads_change_nothing() {
    let mut rx = RecvStream::new(StreamConfig::new(Delivery::ReliableOrdered));
    // seq 0, len 5, but only 2 bytes.
    assert!(rx.on_payload(&[0, 5 << 2, 1, 2], Duration::ZERO).is_err());
    assert_eq!(rx.pop(), None);
    assert!(rx.on_payload(&[0, 1 << 2, 42], Duration::ZERO).is_ok());
    assert_eq!(rx.pop(), Some(vec![42]));
}

#[test]
fn an_expired_in_flight_message_becomes_a_tombstone_and_order_continues() {
    let t0 = Instant::now();
    let mut cfg = StreamConfig::new(Delivery::ReliableOrdered);
    cfg.window = 8;
    let mut tx = SendStream::new(cfg);
    let mut rx = RecvStream::new(cfg);
    tx.push_until(b"stop".to_vec(), Some(t0 + Duration::from_millis(100)))
        .unwrap();
    tx.push(b"after".to_vec()).unwrap();
    let mut buf = [0u8; 64];
    let mut w = PayloadWriter::new(&mut buf, 1);
    assert_eq!(tx.write(t0, &mut w), 2);
    // Both lost; by the re-send the first has expired.
    tx.on_lost(1);
    let later = t0 + Duration::from_millis(200);
    let mut buf = [0u8; 64];
    let mut w = PayloadWriter::new(&mut buf, 2);
    assert_eq!(tx.write(later, &mut w), 2);
    let n = w.len();
    rx.on_payload(&buf[..n], Duration::ZERO).unwrap();
    assert_eq!(
        rx.pop(),
        Some(b"after".to_vec()),
        "the expired one is skipped, not waited for"
    );
    assert_eq!(rx.pop(), None);
    assert_eq!(tx.poll_event(), Some(StreamEvent::Expired(0)));
    assert_eq!(rx.stats().expired, 1);
}

#[test]
fn a_message_whose_lifespan_is_shorter_than_the_transit_is_not_delivered() {
    let t0 = Instant::now();
    let cfg = StreamConfig::new(Delivery::ReliableOrdered);
    let mut tx = SendStream::new(cfg);
    let mut rx = RecvStream::new(cfg);
    tx.push_until(b"hurry".to_vec(), Some(t0 + Duration::from_millis(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let mut w = PayloadWriter::new(&mut buf, 1);
    tx.write(t0, &mut w);
    let n = w.len();
    rx.on_payload(&buf[..n], Duration::from_millis(15)).unwrap();
    assert_eq!(rx.pop(), None);
    assert_eq!(rx.stats().expired, 1);
}

#[test]
fn a_session_change_delivers_acknowledged_messages_held_for_reordering() {
    let cfg = StreamConfig::new(Delivery::ReliableOrdered);
    let mut tx = SendStream::new(cfg);
    let mut rx = RecvStream::new(cfg);
    let t0 = Instant::now();
    let mut frames = Vec::new();
    for i in 0..3u8 {
        tx.push(vec![i]).unwrap();
        let mut buf = [0u8; 16];
        let mut w = PayloadWriter::new(&mut buf, u64::from(i) + 1);
        tx.write(t0, &mut w);
        let n = w.len();
        frames.push(buf[..n].to_vec());
    }
    // Message 0 is lost; 1 and 2 arrive (and are acknowledged) out of order.
    rx.on_payload(&frames[1], Duration::ZERO).unwrap();
    rx.on_payload(&frames[2], Duration::ZERO).unwrap();
    tx.on_delivered(2);
    tx.on_delivered(3);
    assert_eq!(rx.pop(), None, "held for reordering");
    // The session ends: 0 is reported failed, 1 and 2 reach the application.
    tx.on_session_end();
    rx.reset();
    let events: Vec<_> = std::iter::from_fn(|| tx.poll_event()).collect();
    assert!(events.contains(&StreamEvent::Failed(0)), "{events:?}");
    assert_eq!(rx.pop(), Some(vec![1]));
    assert_eq!(rx.pop(), Some(vec![2]));
    assert_eq!(rx.pop(), None);
}
