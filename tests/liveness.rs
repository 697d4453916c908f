//! The seed's honeymoon / backoff / celibacy schedule, measured by when SYNs
//! leave a node.

mod common;

use std::time::Duration;

use common::*;
use octolink::sim::{LinkConfig, Sim};
use octolink::{DisconnectReason, EndpointConfig, Event};

/// Times (since start) at which node 0 sent a SYN, and whether each was a
/// new attempt (different bytes from the one before) or a re-send.
fn syns(sim: &Sim) -> Vec<(Duration, bool)> {
    let from = sim.nodes[0].addr;
    let mut last: Option<&[u8]> = None;
    let mut out = Vec::new();
    for c in sim.captured.iter().filter(|c| c.from == from && c.bytes[3] == 1) {
        out.push((c.at, last != Some(&c.bytes[..])));
        last = Some(&c.bytes);
    }
    out
}

fn attempt_starts(sim: &Sim) -> Vec<Duration> {
    syns(sim)
        .into_iter()
        .filter(|&(_, new)| new)
        .map(|(t, _)| t)
        .collect()
}

/// Node 0 wants node 1, which is unreachable.
fn unreachable(cfg: EndpointConfig) -> Sim {
    let mut sim = pair(1, LinkConfig::default(), cfg);
    sim.capture = true;
    sim.partition(0, 1, true);
    let b = id(&sim, 1);
    let now = sim.now();
    sim.nodes[0].endpoint.connect(now, &b).unwrap();
    sim
}

#[test]
fn honeymoon_probes_about_every_second() {
    let mut sim = unreachable(EndpointConfig::default());
    sim.run_until(Duration::from_secs(30));
    let times: Vec<Duration> = syns(&sim).into_iter().map(|(t, _)| t).collect();
    let in_window: Vec<_> = times.iter().filter(|t| t.as_secs() >= 5).collect();
    // About one a second, plus each new attempt's quick first re-send.
    assert!(
        (22..=32).contains(&in_window.len()),
        "{} SYNs in 25 s: {times:?}",
        in_window.len()
    );
    for w in in_window.windows(2) {
        assert!(
            *w[1] - *w[0] <= Duration::from_millis(1250),
            "gap {:?} in {times:?}",
            *w[1] - *w[0]
        );
    }
}

#[test]
fn outside_honeymoon_probing_backs_off_exponentially_up_to_a_cap() {
    let cfg = EndpointConfig {
        honeymoon: Duration::ZERO,
        handshake_timeout: Duration::from_secs(2),
        probe_doubling: Duration::from_secs(30),
        probe_max_interval: Duration::from_secs(60),
        ..EndpointConfig::default()
    };
    let mut sim = unreachable(cfg);
    sim.run_until(Duration::from_secs(900));
    let starts = attempt_starts(&sim);
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() > 10, "{gaps:?}");
    // Each gap is the 2 s attempt plus a probe interval that only grows...
    for w in gaps.windows(2) {
        assert!(
            w[1] + Duration::from_millis(1) >= w[0],
            "interval shrank: {gaps:?}"
        );
    }
    // ...from about 1 s to the 60 s cap, and never past it.
    assert!(gaps[0] <= Duration::from_secs(4), "{gaps:?}");
    let last = *gaps.last().unwrap();
    assert!(
        last >= Duration::from_secs(60) && last <= Duration::from_secs(63),
        "{gaps:?}"
    );
}

#[test]
fn the_last_active_peer_is_probed_as_if_no_older_than_an_hour() {
    let cfg = EndpointConfig {
        honeymoon: Duration::ZERO,
        ..EndpointConfig::default()
    };
    let mut sim = pair(2, LinkConfig::default(), cfg);
    sim.capture = true;
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    sim.partition(0, 1, true);
    sim.run_until(Duration::from_secs(3 * 3600));
    let starts = attempt_starts(&sim);
    let late: Vec<Duration> = starts
        .windows(2)
        .filter(|w| w[0] > Duration::from_secs(2 * 3600))
        .map(|w| w[1] - w[0])
        .collect();
    // interval(1 h) = 1 s × 2^(3600/600) = 64 s, plus the 8 s attempt;
    // without the cap it would have grown towards 900 s.
    assert!(!late.is_empty());
    for g in late {
        assert!(
            g >= Duration::from_secs(70) && g <= Duration::from_secs(74),
            "gap {g:?}"
        );
    }
}

#[test]
fn after_an_explicit_close_the_peer_is_left_alone_for_the_celibacy_period() {
    let cfg = EndpointConfig {
        connect_all: true,
        celibacy: Duration::from_secs(20),
        ..EndpointConfig::default()
    };
    let mut sim = pair(3, LinkConfig::default(), cfg);
    sim.capture = true;
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    let b = id(&sim, 1);
    let closed_at = sim.elapsed();
    let now = sim.now();
    sim.nodes[0].endpoint.close(now, &b).unwrap();
    sim.run_for(Duration::from_millis(50));
    assert!(sim.events_of(1).any(|e| matches!(
        e,
        Event::Disconnected {
            reason: DisconnectReason::ClosedByPeer { .. },
            ..
        }
    )));
    assert!(sim.events_of(0).any(|e| matches!(
        e,
        Event::Disconnected {
            reason: DisconnectReason::ClosedLocally,
            ..
        }
    )));
    let syn_count_at_close = sim.captured.iter().filter(|c| c.bytes[3] == 1).count();
    sim.run_until(closed_at + Duration::from_millis(19_900));
    let during = sim.captured.iter().filter(|c| c.bytes[3] == 1).count() - syn_count_at_close;
    assert_eq!(during, 0, "no SYN from either side during celibacy");
    assert!(!connected(&sim, 0, 1));
    // Celibacy over: normal probing reconnects.
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| connected(s, 0, 1)));
}

#[test]
fn after_a_timeout_the_peer_goes_back_into_normal_probing() {
    let mut sim = pair(4, LinkConfig::default(), EndpointConfig::default());
    sim.capture = true;
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    sim.partition(0, 1, true);
    let cut = sim.elapsed();
    assert!(
        sim.run_until_cond(Duration::from_secs(10), |s| s.events_of(0).any(|e| matches!(
            e,
            Event::Disconnected {
                reason: DisconnectReason::IdleTimeout,
                ..
            }
        )))
    );
    let timed_out = sim.elapsed();
    assert!(timed_out - cut >= Duration::from_secs(5) && timed_out - cut < Duration::from_secs(6));
    sim.run_for(Duration::from_secs(3));
    let probes = syns(&sim).into_iter().filter(|&(t, _)| t >= timed_out).count();
    assert!(probes >= 2, "probing resumes at once after a timeout");
    sim.partition(0, 1, false);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| connected(s, 0, 1)));
}

#[test]
fn a_session_survives_a_partition_shorter_than_the_idle_timeout() {
    let mut sim = pair(5, LinkConfig::default(), EndpointConfig::default());
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    sim.partition(0, 1, true);
    sim.run_for(Duration::from_secs(3));
    sim.partition(0, 1, false);
    sim.run_for(Duration::from_secs(3));
    assert!(connected(&sim, 0, 1));
    for n in 0..2 {
        assert!(!sim.events_of(n).any(|e| matches!(e, Event::Disconnected { .. })));
    }
}
