//! The schedule: the engine reads a courier's mandate only when something
//! happened to it (an engine call, or a wake), and acts on a wake at once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use octolink::sim::{LinkConfig, Sim};
use octolink::{Courier, CourierContext, CourierId, CourierWaker, EndpointConfig, Mandate, PayloadWriter};

/// Sends what the test puts in `outbox`, counts its mandate reads, and
/// keeps its waker where the test can reach it.
#[derive(Clone, Default)]
struct Shared {
    outbox: Arc<Mutex<Option<Vec<u8>>>>,
    inbox: Arc<Mutex<Vec<Vec<u8>>>>,
    mandate_reads: Arc<AtomicUsize>,
    waker: Arc<Mutex<Option<CourierWaker>>>,
    /// When the mail is due (default: the simulation's start), and how late
    /// it may go.
    due_at: Arc<Mutex<Option<Instant>>>,
    slack: Arc<Mutex<Duration>>,
    /// Mail written with `set_unacknowledged`.
    unacknowledged: Arc<std::sync::atomic::AtomicBool>,
    /// Fates reported.
    fates: Arc<AtomicUsize>,
    /// The engine's calls that may change the mandate.
    calls: Arc<AtomicUsize>,
}

struct Mailbox {
    shared: Shared,
    takes_waker: bool,
    /// Mail is due from this instant on (the simulation's start): always
    /// overdue once there is any.
    due_from: std::time::Instant,
}

impl Courier for Mailbox {
    fn mandate(&self) -> Mandate {
        self.shared.mandate_reads.fetch_add(1, Ordering::Relaxed);
        let due = self.shared.outbox.lock().unwrap().is_some();
        let due_at = self.shared.due_at.lock().unwrap().unwrap_or(self.due_from);
        Mandate {
            priority: 100,
            next_send: due.then_some(due_at),
            send_slack: *self.shared.slack.lock().unwrap(),
            max_payload: 64,
            min_payload: 0,
            send_active: true,
            receive_active: true,
        }
    }
    fn on_send_opportunity(&mut self, _: &CourierContext, out: &mut PayloadWriter<'_>) {
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(bytes) = self.shared.outbox.lock().unwrap().take() {
            let _ = out.write(&bytes);
            if self.shared.unacknowledged.load(Ordering::Relaxed) {
                out.set_unacknowledged();
            }
        }
    }
    fn on_delivered(&mut self, _: &CourierContext, _: u64) {
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        self.shared.fates.fetch_add(1, Ordering::Relaxed);
    }
    fn on_lost(&mut self, _: &CourierContext, _: u64) {
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        self.shared.fates.fetch_add(1, Ordering::Relaxed);
    }
    fn on_receive(&mut self, _: &CourierContext, payload: &[u8]) {
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        self.shared.inbox.lock().unwrap().push(payload.to_vec());
    }
    fn accept_waker(&mut self, waker: CourierWaker) -> bool {
        *self.shared.waker.lock().unwrap() = Some(waker);
        self.takes_waker
    }
}

/// Two connected nodes with a mailbox each way; returns node 0's side.
fn connected_pair(takes_waker: bool) -> (Sim, Shared, Shared) {
    let mut sim = pair(5, LinkConfig::default(), EndpointConfig::default());
    let (a, b) = (Shared::default(), Shared::default());
    let due_from = sim.now();
    sim.register_each_way(
        CourierId(3),
        Box::new(Mailbox {
            shared: a.clone(),
            takes_waker,
            due_from,
        }),
        Box::new(Mailbox {
            shared: b.clone(),
            takes_waker,
            due_from,
        }),
    )
    .unwrap();
    establish(&mut sim, Duration::from_secs(5)).expect("connects");
    sim.run_for(Duration::from_millis(200));
    (sim, a, b)
}

#[test]
fn a_settled_session_costs_no_mandate_reads_between_events() {
    let (mut sim, a, _) = connected_pair(true);
    let before = a.mandate_reads.load(Ordering::Relaxed);
    for _ in 0..100 {
        sim.nodes[0].endpoint.poll_timeout();
    }
    assert_eq!(
        a.mandate_reads.load(Ordering::Relaxed),
        before,
        "nothing happened, so nothing was re-read"
    );

    // A courier that declines the waker is polled, as before.
    let (mut sim, a, _) = connected_pair(false);
    let before = a.mandate_reads.load(Ordering::Relaxed);
    for _ in 0..100 {
        sim.nodes[0].endpoint.poll_timeout();
    }
    assert!(a.mandate_reads.load(Ordering::Relaxed) >= before + 100);
}

#[test]
fn a_busy_courier_is_asked_its_mandate_once_per_change() {
    let (mut sim, a, b) = connected_pair(true);
    let (reads, calls) = (
        a.mandate_reads.load(Ordering::Relaxed),
        a.calls.load(Ordering::Relaxed),
    );
    let rounds = 100;
    for i in 0..rounds {
        *a.outbox.lock().unwrap() = Some(vec![i as u8; 32]);
        a.waker.lock().unwrap().as_ref().expect("waker").wake();
        sim.run_for(Duration::from_millis(20));
    }
    assert_eq!(b.inbox.lock().unwrap().len(), rounds);
    // What may have changed it: the engine's calls and the wakes. Each
    // packet sent or acknowledged has several scheduling decisions (file the
    // peer, pick the sender, rank the couriers); they share one read.
    let changes = a.calls.load(Ordering::Relaxed) - calls + rounds;
    let read = a.mandate_reads.load(Ordering::Relaxed) - reads;
    assert!(read <= changes, "{read} mandate reads for {changes} changes");
}

#[test]
fn a_woken_courier_is_served_at_once() {
    let (mut sim, a, b) = connected_pair(true);
    *a.outbox.lock().unwrap() = Some(b"from another thread".to_vec());
    let now = sim.now();
    // Until woken, the engine has no reason to look.
    let quiet = sim.nodes[0].endpoint.poll_timeout().expect("keepalive timer");
    assert!(quiet > now, "not due before the wake");
    a.waker.lock().unwrap().as_ref().expect("waker").wake();
    let due = sim.nodes[0].endpoint.poll_timeout().expect("due");
    assert!(due <= now, "due at once after the wake");
    // And it arrives one link delay later.
    let delivered = sim.run_until_cond(Duration::from_millis(100), |_| {
        !b.inbox.lock().unwrap().is_empty()
    });
    assert!(delivered);
    assert_eq!(b.inbox.lock().unwrap()[0], b"from another thread");
}

#[test]
fn a_wake_rings_the_hook_that_wakes_the_drivers_loop() {
    let (mut sim, a, _) = connected_pair(true);
    let rings = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&rings);
    sim.nodes[0].endpoint.set_wake_hook(Some(Arc::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    })));
    let waker = a.waker.lock().unwrap().clone().expect("waker");
    waker.wake();
    waker.wake();
    assert_eq!(
        rings.load(Ordering::Relaxed),
        1,
        "rung once until the engine looks"
    );
    sim.nodes[0].endpoint.poll_timeout();
    waker.wake();
    assert_eq!(rings.load(Ordering::Relaxed), 2);
}

#[test]
fn mail_within_its_slack_waits_then_rides_with_a_packet_going_anyway() {
    let (mut sim, a, b) = connected_pair(true);
    let t = sim.now();
    // Node 0's mail is due in 20 ms and may go up to 100 ms late.
    *a.due_at.lock().unwrap() = Some(t + Duration::from_millis(20));
    *a.slack.lock().unwrap() = Duration::from_millis(100);
    *a.outbox.lock().unwrap() = Some(b"digest".to_vec());
    a.waker.lock().unwrap().as_ref().expect("waker").wake();
    sim.run_for(Duration::from_millis(40));
    assert!(
        b.inbox.lock().unwrap().is_empty(),
        "past due, within its slack: not sent alone"
    );

    // Node 1 sends data; node 0's acknowledgement carries the mail.
    let sent_before = sim.nodes[0].endpoint.stats().sent.packets;
    *b.outbox.lock().unwrap() = Some(b"data".to_vec());
    b.waker.lock().unwrap().as_ref().expect("waker").wake();
    let delivered = sim.run_until_cond(Duration::from_millis(200), |_| {
        !b.inbox.lock().unwrap().is_empty()
    });
    assert!(delivered);
    assert!(sim.now() < t + Duration::from_millis(120), "before its deadline");
    assert_eq!(
        sim.nodes[0].endpoint.stats().sent.packets - sent_before,
        1,
        "one packet: the acknowledgement, carrying the mail"
    );
    assert_eq!(a.inbox.lock().unwrap().as_slice(), [b"data".to_vec()]);
}

#[test]
fn mail_with_slack_goes_alone_at_its_deadline_when_nothing_else_does() {
    let (mut sim, a, b) = connected_pair(true);
    let t = sim.now();
    *a.due_at.lock().unwrap() = Some(t + Duration::from_millis(20));
    *a.slack.lock().unwrap() = Duration::from_millis(100);
    *a.outbox.lock().unwrap() = Some(b"digest".to_vec());
    a.waker.lock().unwrap().as_ref().expect("waker").wake();
    let due = sim.nodes[0].endpoint.poll_timeout().expect("a deadline");
    assert_eq!(
        due,
        t + Duration::from_millis(120),
        "woken at due time plus slack"
    );
    let delivered = sim.run_until_cond(Duration::from_millis(300), |_| {
        !b.inbox.lock().unwrap().is_empty()
    });
    assert!(delivered);
}

/// Sends one mail from node 0 and returns (datagrams node 1 sent in the
/// next 100 ms, fates node 0's courier heard).
fn one_mail(unacknowledged: bool) -> (u64, usize) {
    let (mut sim, a, b) = connected_pair(true);
    a.unacknowledged.store(unacknowledged, Ordering::Relaxed);
    let before = sim.nodes[1].endpoint.stats().sent.packets;
    *a.outbox.lock().unwrap() = Some(b"status".to_vec());
    a.waker.lock().unwrap().as_ref().expect("waker").wake();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(b.inbox.lock().unwrap().as_slice(), [b"status".to_vec()]);
    (
        sim.nodes[1].endpoint.stats().sent.packets - before,
        a.fates.load(Ordering::Relaxed),
    )
}

#[test]
fn an_unacknowledged_payload_arrives_and_costs_no_datagram_back() {
    assert_eq!(one_mail(false), (1, 1), "acknowledged: an ack back, and a fate");
    assert_eq!(one_mail(true), (0, 0), "unacknowledged: nothing back, no fate");
}

#[test]
fn a_session_the_peer_let_lapse_is_not_polled_while_it_waits_to_expire() {
    let (mut sim, _, _) = connected_pair(true);
    // Node 1 accepted the session and does not probe (it never asked to
    // connect): once node 0 falls silent, its session waits to expire, on a
    // deadline only the engine moves. A fleet server's thousands of such
    // sessions must not be re-examined on every poll.
    sim.partition(0, 1, true);
    sim.run_for(Duration::from_secs(8));
    let stats = sim.nodes[1].endpoint.stats();
    assert!(
        stats.sessions.iter().all(|s| !s.connected),
        "the session lapsed: {:?}",
        stats.sessions.iter().map(|s| s.connected).collect::<Vec<_>>()
    );
    assert_eq!(stats.polled_peers, 0);
    // Node 0 asked to connect, so it probes, and is polled.
    assert_eq!(sim.nodes[0].endpoint.stats().polled_peers, 1);
    // When the peer returns, the session comes back.
    sim.partition(0, 1, false);
    assert!(sim.run_until_cond(Duration::from_secs(30), |s| s.connected(0, 1)
        && s.connected(1, 0)));
}

#[test]
fn a_handshake_awaiting_its_last_message_is_not_polled() {
    let mut sim = pair(5, LinkConfig::default(), EndpointConfig::default());
    // Node 1's SYN-ACKs never arrive: it holds the handshake until the
    // timeout, a deadline only the engine moves (thousands of reconnecting
    // clients leave a server thousands of these).
    sim.link_mut(1, 0).up = false;
    let b = id(&sim, 1);
    let now = sim.now();
    sim.nodes[0].endpoint.connect(now, &b).unwrap();
    sim.run_for(Duration::from_secs(1));
    let stats = sim.nodes[1].endpoint.stats();
    assert!(stats.rsa_signatures > 0, "node 1 answered the SYN");
    assert!(!sim.connected(1, 0));
    assert_eq!(stats.polled_peers, 0);
    // Once the way back opens, the handshake completes.
    sim.link_mut(1, 0).up = true;
    assert!(sim.run_until_cond(Duration::from_secs(30), |s| s.connected(0, 1)
        && s.connected(1, 0)));
}
