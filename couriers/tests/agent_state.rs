//! AgentState: convergence of several writers, verification, failsafes,
//! the idle digest stream and digest-driven resync.

use std::time::{Duration, Instant};

use octolink::sim::{LinkConfig, Sim};
use octolink::{Courier, CourierContext, CourierId, CourierScope, EndpointConfig, PayloadWriter};
use octolink_couriers::{AgentState, AgentStateConfig, AgentStateCourier, StateEvent};

const ID: CourierId = CourierId(1);
const MODE: u16 = 1;
const SPEED: u16 = 2;

fn define(state: &AgentState) {
    state.define(MODE, "mode", 255, &0u32).unwrap();
    state.define(SPEED, "speed", 100, &0.0f32).unwrap();
}

/// Node 0 is the agent; nodes 1.. are controls. Each control talks only to
/// the agent. Returns the states in node order.
fn fleet(seed: u64, controls: usize, link: LinkConfig) -> (Sim, Vec<AgentState>) {
    let names = ["a", "b", "c", "d"];
    let mut sim = Sim::with_fixture_nodes(seed, &names[..=controls], link, EndpointConfig::default());
    let states: Vec<AgentState> = (0..=controls).map(|n| AgentState::new(sim.id(n))).collect();
    for s in &states {
        define(s);
    }
    for c in 1..=controls {
        let (agent, control) = (sim.id(0), sim.id(c));
        let to_control = states[0].courier(control, AgentStateConfig::default());
        sim.nodes[0]
            .endpoint
            .register_courier(CourierScope::Peer(control), ID, Box::new(to_control))
            .unwrap();
        let to_agent = states[c].courier(agent, AgentStateConfig::default());
        sim.nodes[c]
            .endpoint
            .register_courier(CourierScope::Peer(agent), ID, Box::new(to_agent))
            .unwrap();
        sim.connect(c, 0, Duration::from_secs(30))
            .expect("control connects");
    }
    (sim, states)
}

fn converged(states: &[AgentState]) -> bool {
    states.windows(2).all(|w| w[0].digest() == w[1].digest())
}

#[test]
fn state_from_two_controls_converges_after_a_partition_heals() {
    for partition in [Duration::from_secs(3), Duration::from_secs(30)] {
        let (mut sim, states) = fleet(1, 2, LinkConfig::lossy(Duration::from_millis(5), 0.05));
        sim.partition(0, 1, true);
        sim.partition(0, 2, true);
        let now = sim.now();
        states[1].set(now, MODE, &11u32).unwrap();
        states[2].set(now, MODE, &22u32).unwrap();
        states[0].set(now, SPEED, &0.5f32).unwrap();
        sim.run_for(partition);
        sim.partition(0, 1, false);
        sim.partition(0, 2, false);
        assert!(
            sim.run_until_cond(Duration::from_secs(30), |_| converged(&states)),
            "no convergence after a {partition:?} partition"
        );
        let now = sim.now();
        let modes: Vec<u32> = states
            .iter()
            .map(|s| s.get::<u32>(now, MODE).unwrap().value)
            .collect();
        assert!(modes.iter().all(|&m| m == modes[0]), "{modes:?}");
        assert!(modes[0] == 11 || modes[0] == 22);
        // Both wrote version 1: the larger writer id wins the tie.
        let writers = [1usize, 2].map(|n| {
            let b = sim.id(n);
            u64::from_be_bytes(b.as_bytes()[..8].try_into().unwrap())
        });
        let winner = if writers[0] > writers[1] { 11 } else { 22 };
        assert_eq!(modes[0], winner, "largest writer id wins a version tie");
        assert!(states
            .iter()
            .all(|s| s.get::<f32>(now, SPEED).unwrap().value == 0.5));
        sim.run_for(Duration::from_secs(1));
        assert!(
            states[0].get::<u32>(sim.now(), MODE).unwrap().verified,
            "the agent sees both controls hold it"
        );
    }
}

#[test]
fn remote_changes_fire_events_and_become_verified() {
    let (mut sim, states) = fleet(2, 1, LinkConfig::default());
    let now = sim.now();
    states[0].set(now, SPEED, &1.25f32).unwrap();
    assert!(!states[0].get::<f32>(now, SPEED).unwrap().verified);
    sim.run_for(Duration::from_millis(100));
    let now = sim.now();
    assert!(
        states[0].get::<f32>(now, SPEED).unwrap().verified,
        "acknowledged by the control"
    );
    let seen = states[1].get::<f32>(now, SPEED).unwrap();
    assert_eq!(seen.value, 1.25);
    assert!(seen.verified);
    assert!(seen.age.unwrap() < Duration::from_millis(100));
    let ev = states[1].poll_event();
    assert!(
        matches!(ev, Some(StateEvent::Changed { param: SPEED, .. })),
        "{ev:?}"
    );
    assert_eq!(states[1].poll_event(), None);
}

#[test]
fn the_idle_stream_keeps_confirming_and_failsafe_applies_when_comms_fail() {
    let (mut sim, states) = fleet(3, 1, LinkConfig::default());
    let now = sim.now();
    states[0].set(now, SPEED, &2.0f32).unwrap();
    sim.run_for(Duration::from_secs(2));
    let now = sim.now();
    let v = states[1].get::<f32>(now, SPEED).unwrap();
    assert!(
        v.since_confirmed.unwrap() <= Duration::from_millis(150),
        "digests confirm ~10 times a second"
    );
    assert_eq!(
        states[1]
            .get_or_failsafe::<f32>(now, SPEED, Duration::from_millis(500))
            .unwrap(),
        2.0
    );
    sim.partition(0, 1, true);
    sim.run_for(Duration::from_secs(1));
    let now = sim.now();
    assert_eq!(
        states[1]
            .get_or_failsafe::<f32>(now, SPEED, Duration::from_millis(500))
            .unwrap(),
        0.0,
        "the failsafe value once comms have failed"
    );
}

/// Moves one payload from `from` to `to` directly; `arrives` says whether
/// `to` gets it, and `from` always hears it was delivered.
fn hand_over(
    from: &mut AgentStateCourier,
    to: &mut AgentStateCourier,
    now: Instant,
    token: u64,
    arrives: bool,
) {
    let ctx = CourierContext {
        now,
        peer: None,
        rtt: None,
    };
    let mut buf = [0u8; 1200];
    let mut w = PayloadWriter::new(&mut buf, token);
    from.on_send_opportunity(&ctx, &mut w);
    let n = w.len();
    if arrives {
        to.on_receive(&ctx, &buf[..n]);
    }
    from.on_delivered(&ctx, token);
}

#[test]
fn a_digest_mismatch_makes_both_sides_send_everything() {
    let t0 = Instant::now();
    let (a, b) = (octolink::NodeId([1; 32]), octolink::NodeId([2; 32]));
    let (sa, sb) = (AgentState::new(a), AgentState::new(b));
    define(&sa);
    define(&sb);
    let mut ca = sa.courier(b, AgentStateConfig::default());
    let mut cb = sb.courier(a, AgentStateConfig::default());
    let ctx = CourierContext {
        now: t0,
        peer: None,
        rtt: None,
    };
    ca.on_session_start(&ctx);
    cb.on_session_start(&ctx);
    sa.set(t0, MODE, &7u32).unwrap();
    // The update's packet is acknowledged, but B drops it: A now wrongly
    // believes B is in sync.
    hand_over(&mut ca, &mut cb, t0, 1, false);
    assert_ne!(sa.digest(), sb.digest());
    // A's idle digest reveals the difference; B asks for everything...
    let t1 = t0 + Duration::from_millis(200);
    hand_over(&mut ca, &mut cb, t1, 2, true);
    assert_eq!(cb.digests_mismatched, 1);
    // ...B's next payload carries that request; A resends its state.
    hand_over(&mut cb, &mut ca, t1, 3, true);
    hand_over(&mut ca, &mut cb, t1, 4, true);
    assert_eq!(sa.digest(), sb.digest());
    assert_eq!(sb.get::<u32>(t1, MODE).unwrap().value, 7);
}

/// The application writes the state without the engine; the write must
/// reach the engine at once (through the couriers' wakers), not at its
/// next timer.
#[test]
fn a_local_write_wakes_the_engine_and_goes_out_at_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (mut sim, states) = fleet(4, 1, LinkConfig::default());
    sim.run_for(Duration::from_millis(500));
    let rings = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&rings);
    sim.nodes[0].endpoint.set_wake_hook(Some(Arc::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    })));
    let now = sim.now();
    assert!(sim.nodes[0].endpoint.poll_timeout().is_some_and(|t| t > now));
    states[0].set(now, SPEED, &2.5f32).unwrap();
    assert_eq!(
        rings.load(Ordering::Relaxed),
        1,
        "the write rang the driver's loop"
    );
    assert!(
        sim.nodes[0].endpoint.poll_timeout().is_some_and(|t| t <= now),
        "and the engine has something to send now"
    );
    let arrived = sim.run_until_cond(Duration::from_millis(50), |_| {
        states[1].get::<f32>(now, SPEED).is_ok_and(|v| v.value == 2.5)
    });
    assert!(arrived, "the control has it one link delay later");
}

/// The agent defines a parameter the control does not know (their versions
/// differ): the digests can never match. Resyncs back off instead of both
/// sides sending everything every idle interval, and the parameters both
/// define still sync at once.
#[test]
fn skewed_definitions_back_off_resyncs_and_shared_parameters_still_sync() {
    const EXTRA: u16 = 9;
    let mut sim = Sim::with_fixture_nodes(11, &["a", "b"], LinkConfig::default(), EndpointConfig::default());
    let (id0, id1) = (sim.id(0), sim.id(1));
    let (agent, control) = (AgentState::new(id0), AgentState::new(id1));
    define(&agent);
    define(&control);
    agent.define(EXTRA, "added in a later version", 10, &1u8).unwrap();
    let (handle, _) = sim
        .register_each_way(
            ID,
            Box::new(agent.courier(id1, AgentStateConfig::default())),
            Box::new(control.courier(id0, AgentStateConfig::default())),
        )
        .unwrap();
    sim.connect(1, 0, Duration::from_secs(30)).expect("connects");
    let now = sim.now();
    agent.set(now, EXTRA, &2u8).unwrap();
    sim.run_for(Duration::from_secs(10));
    let c = sim.nodes[0]
        .endpoint
        .courier_mut::<AgentStateCourier>(handle)
        .unwrap();
    assert!(
        c.digests_mismatched >= 20,
        "the skew persists: {}",
        c.digests_mismatched
    );
    // Without the backoff, one per mismatch (about 100 in 10 s).
    assert!(c.full_resyncs <= 10, "resyncs backed off: {}", c.full_resyncs);

    let now = sim.now();
    agent.set(now, SPEED, &4.5f32).unwrap();
    let synced = sim.run_until_cond(Duration::from_millis(100), |_| {
        control.get::<f32>(now, SPEED).is_ok_and(|v| v.value == 4.5)
    });
    assert!(synced, "a parameter both define goes at once");
}

/// Idle peers exchange only unacknowledged digests; a keepalive PING still
/// goes every ten keepalive intervals, so the RTT estimate stays fresh and
/// each side hears that its own direction works.
#[test]
fn idle_digests_alone_still_let_the_rtt_be_measured() {
    let (mut sim, _states) = fleet(6, 1, LinkConfig::default());
    sim.run_for(Duration::from_secs(1));
    let samples = |sim: &Sim| sim.nodes[0].endpoint.stats().sessions[0].rtt.samples;
    let before = samples(&sim);
    sim.run_for(Duration::from_secs(30));
    assert!(
        samples(&sim) >= before + 2,
        "RTT samples while idle: {} -> {}",
        before,
        samples(&sim)
    );
}

#[test]
fn unread_change_events_stay_one_per_parameter() {
    let (mut sim, states) = fleet(4, 1, LinkConfig::default());
    // 100 updates at 20 Hz that the control's application never reads.
    for i in 0..100u32 {
        let now = sim.now();
        states[0].set(now, MODE, &i).unwrap();
        sim.run_for(Duration::from_millis(50));
    }
    assert_eq!(states[1].get::<u32>(sim.now(), MODE).unwrap().value, 99);
    let writer = states[0].get::<u32>(sim.now(), MODE).unwrap().writer;
    assert_eq!(
        states[1].poll_event(),
        Some(StateEvent::Changed { param: MODE, writer }),
        "one event, naming the latest writer"
    );
    assert_eq!(states[1].poll_event(), None);
    // Once read, the next change is reported again.
    let now = sim.now();
    states[0].set(now, MODE, &100u32).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert!(matches!(
        states[1].poll_event(),
        Some(StateEvent::Changed { param: MODE, .. })
    ));
}
