//! Steady-state traffic allocates nothing: a counting global allocator
//! watches a burst of packets between two engines wired back to back.
//! (The core forbids `unsafe`; this test crate needs it only to wrap the
//! system allocator.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use octolink::sim::fixture_identity;
use octolink::{
    Courier, CourierContext, CourierId, CourierScope, Endpoint, EndpointConfig, Mandate, NodeAssociate,
    PayloadWriter, Role, TrustStore,
};

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counter is global: the tests take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A latest-value courier that never allocates: 64 bytes, always due.
struct Steady {
    value: [u8; 64],
    received: u64,
}

impl Courier for Steady {
    fn mandate(&self) -> Mandate {
        Mandate {
            priority: 100,
            next_send: Some(Instant::now() - Duration::from_secs(1)),
            send_slack: Duration::ZERO,
            max_payload: 64,
            min_payload: 64,
            send_active: true,
            receive_active: true,
        }
    }
    fn on_send_opportunity(&mut self, _ctx: &CourierContext, out: &mut PayloadWriter<'_>) {
        self.value[0] = self.value[0].wrapping_add(1);
        let _ = out.write(&self.value);
    }
    fn on_receive(&mut self, _ctx: &CourierContext, _payload: &[u8]) {
        self.received += 1;
    }
}

#[test]
fn steady_state_packets_allocate_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let names = ["a", "b"];
    let addrs = ["127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap()];
    let t0 = Instant::now();
    let mut eps: Vec<Endpoint> = (0..2)
        .map(|i| {
            let mut trust = TrustStore::new();
            let other = fixture_identity(names[1 - i]).public().clone();
            trust
                .insert(NodeAssociate::new(other, names[1 - i], Role::Agent).with_address(addrs[1 - i]))
                .unwrap();
            let cfg = EndpointConfig {
                max_send_rate: u64::MAX / 4,
                ..EndpointConfig::default()
            };
            Endpoint::new(cfg, fixture_identity(names[i]), trust, [i as u8; 32], t0, 0).unwrap()
        })
        .collect();
    let ids = [eps[0].node_id(), eps[1].node_id()];
    for i in 0..2 {
        let c = Steady {
            value: [7; 64],
            received: 0,
        };
        eps[i]
            .register_courier(CourierScope::Peer(ids[1 - i]), CourierId(1), Box::new(c))
            .unwrap();
    }
    eps[0].connect(t0, &ids[1]).unwrap();
    let mut buf = [0u8; 1500];
    // Moves up to `max` packets back and forth; returns how many moved.
    let mut pump = |eps: &mut Vec<Endpoint>, max: usize| {
        let mut moved = 0;
        while moved < max {
            let mut any = false;
            for i in 0..2 {
                let now = Instant::now();
                if let Some(t) = eps[i].poll_transmit(now, &mut buf) {
                    eps[1 - i].handle_datagram(now, addrs[i], &buf[..t.len]);
                    moved += 1;
                    any = true;
                }
                while eps[i].poll_event().is_some() {}
                if eps[i].poll_timeout().is_some_and(|t| t <= now) {
                    eps[i].handle_timeout(now);
                }
            }
            if !any {
                std::thread::yield_now();
            }
        }
        moved
    };
    // Warm-up: handshake, then enough traffic for every buffer to reach its
    // steady size.
    pump(&mut eps, 20_000);
    assert!(eps[0].is_connected(&ids[1]) && eps[1].is_connected(&ids[0]));
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let moved = pump(&mut eps, 5_000);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(moved, 5_000);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {moved} steady-state packets"
    );
    let received: u64 = (0..2)
        .map(|i| eps[i].stats().sessions[0].courier_frames_received)
        .sum();
    assert!(
        received > 4_000,
        "the burst carried courier data: {received} frames"
    );
}

/// The reliable stream's own bookkeeping (queue, in-flight messages, frame
/// records, events) allocates nothing once warm: only the message bodies,
/// which the application hands in, are allocations.
#[test]
fn a_reliable_stream_sends_and_settles_messages_without_allocating() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use octolink::stream::{Delivery, SendStream, StreamConfig};
    let mut tx = SendStream::new(StreamConfig::new(Delivery::ReliableOrdered));
    let now = Instant::now();
    let mut buf = [0u8; 1200];
    let mut token = 0u64;
    // Sends `bodies` (two per frame), acknowledges every frame, and
    // reports how many messages were delivered.
    let mut cycle = |tx: &mut SendStream, bodies: &mut Vec<Vec<u8>>| {
        let mut delivered = 0;
        while let Some(body) = bodies.pop() {
            tx.push(body).unwrap();
            if let Some(second) = bodies.pop() {
                tx.push(second).unwrap();
            }
            token += 1;
            let mut out = PayloadWriter::new(&mut buf, token);
            assert_eq!(tx.write(now, &mut out), 2);
            tx.on_delivered(token);
            while tx.poll_event().is_some() {
                delivered += 1;
            }
        }
        delivered
    };
    let mut warm: Vec<Vec<u8>> = (0..2_000).map(|_| vec![7u8; 64]).collect();
    assert_eq!(cycle(&mut tx, &mut warm), 2_000);
    let mut bodies: Vec<Vec<u8>> = (0..10_000).map(|_| vec![7u8; 64]).collect();
    // Dropping a delivered body frees it; freeing is not counted.
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let delivered = cycle(&mut tx, &mut bodies);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(delivered, 10_000);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {delivered} messages"
    );
}
