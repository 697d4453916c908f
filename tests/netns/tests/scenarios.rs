//! The real-network suite: `octolink` processes in network namespaces,
//! across a link shaped by `octolink-netem`. Runs when root with a working
//! `ip netns`; otherwise each test says why it skipped and passes.
//!
//! `cargo test -p octolink-netns -- --nocapture` prints each scenario's
//! figures.

mod lab;

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use lab::{unavailable, Lab, Ns, Running, AGENT_PORT, ONE_AT_A_TIME};

/// A lab whose link is shaped by `netem_args`, held under the lab lock.
/// Fields drop in order: the lab is gone before the lock is released.
struct Turn {
    lab: Lab,
    _lock: MutexGuard<'static, ()>,
}

/// The lab for `scenario`, or `None` (and a message) where the suite
/// cannot run.
fn lab_turn(scenario: &str, netem_args: &[&str]) -> Option<Turn> {
    if let Some(why) = unavailable() {
        eprintln!("netns scenario {scenario} skipped: {why}");
        return None;
    }
    let lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = Lab::new();
    lab.shape(netem_args);
    Some(Turn { lab, _lock: lock })
}

fn agent(lab: &Lab) -> Running {
    let mut c = lab.octolink(Ns::Agent);
    c.args([
        "agent",
        "--bind",
        &format!("0.0.0.0:{AGENT_PORT}"),
        "--for",
        "300",
    ]);
    let mut agent = Running::spawn(c);
    agent
        .expect_line(Duration::from_secs(10), |l| l.starts_with("agent "))
        .expect("agent starts");
    agent
}

fn remote(lab: &Lab, seconds: u32) -> Running {
    let mut c = lab.octolink(Ns::Remote);
    c.args(["remote", "agent", "--for", &seconds.to_string()]);
    Running::spawn(c)
}

/// Waits for the remote's session and its first view of the agent's state.
fn connected(remote: &mut Running) {
    let ok = remote.expect_line(Duration::from_secs(20), |l| l == "connected agent");
    assert!(ok.is_some(), "no session:\n{}", remote.transcript());
    fresh_state(remote, None, Duration::from_secs(5));
}

/// The agent's heading in a remote status line, if verified (every peer
/// holds this value).
fn verified_heading(line: &str) -> Option<f64> {
    let rest = line.strip_prefix("agent: ")?.split("heading=").nth(1)?;
    let (value, meta) = rest.split_once(' ')?;
    meta.starts_with("(verified").then(|| value.parse().ok())?
}

/// Waits for a status line with a verified heading other than `not`;
/// returns it and when it was printed.
fn fresh_state(remote: &mut Running, not: Option<f64>, within: Duration) -> (Instant, f64) {
    let line = remote.expect_line(within, |l| verified_heading(l).is_some_and(|h| Some(h) != not));
    let Some((at, line)) = line else {
        panic!("no fresh state within {within:?}:\n{}", remote.transcript());
    };
    (at, verified_heading(&line).unwrap_or_default())
}

fn last_heading(remote: &mut Running) -> Option<f64> {
    remote.transcript();
    remote.seen.iter().rev().find_map(|(_, l)| verified_heading(l))
}

/// Bytes that do not compress and are the same on every run.
fn payload(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_64_mib_file_arrives_intact_over_10_percent_loss_and_50_ms_delay() {
    // 50 ms each way, 10 % loss each way; and, beyond the brief, 1 %
    // duplicated and 0.2 % corrupted past the UDP checksum.
    let Some(turn) = lab_turn(
        "bulk",
        &[
            "--delay-ms",
            "50",
            "--loss",
            "10",
            "--duplicate",
            "1",
            "--corrupt",
            "0.2",
            "--seed",
            "1",
        ],
    ) else {
        return;
    };
    let lab = &turn.lab;
    let file = lab.dir.join("payload.bin");
    let sent = payload(64 << 20);
    std::fs::write(&file, &sent).expect("payload written");
    let inbox = lab.dir.join("inbox");
    let mut c = lab.octolink(Ns::Agent);
    c.args([
        "recv",
        "--bind",
        &format!("0.0.0.0:{AGENT_PORT}"),
        "--count",
        "1",
        "--for",
        "300",
    ])
    .arg("--dir")
    .arg(&inbox);
    let mut receiver = Running::spawn(c);
    receiver
        .expect_line(Duration::from_secs(10), |l| l.starts_with("receiving into"))
        .expect("receiver starts");
    let started = Instant::now();
    let mut c = lab.octolink(Ns::Remote);
    c.args(["send", "agent"]).arg(&file);
    let mut sender = Running::spawn(c);
    let ok = sender.wait(Duration::from_secs(240));
    let took = started.elapsed();
    assert_eq!(
        ok,
        Some(true),
        "send failed:\n{}\nreceiver:\n{}",
        sender.transcript(),
        {
            receiver.wait(Duration::from_secs(5));
            receiver.transcript()
        }
    );
    let got = std::fs::read(inbox.join("payload.bin")).expect("file received");
    assert!(got == sent, "received file differs ({} bytes)", got.len());
    assert_eq!(receiver.wait(Duration::from_secs(10)), Some(true));
    eprintln!(
        "netns bulk: 64 MiB intact in {took:.2?} (connect included)\n{}",
        sender.transcript()
    );
}

#[test]
fn a_30_s_partition_heals_without_restarting_anything() {
    let Some(turn) = lab_turn("partition", &["--delay-ms", "5"]) else {
        return;
    };
    let lab = &turn.lab;
    let mut agent = agent(lab);
    let mut remote = remote(lab, 300);
    connected(&mut remote);
    let before = last_heading(&mut remote);
    lab.cut(true);
    std::thread::sleep(Duration::from_secs(30));
    lab.cut(false);
    let healed = Instant::now();
    let (at, _) = fresh_state(&mut remote, before, Duration::from_secs(30));
    assert!(agent.is_running() && remote.is_running(), "a process died");
    let session_ended = remote
        .seen
        .iter()
        .any(|(_, l)| l.starts_with("disconnected agent"));
    eprintln!(
        "netns partition: 30 s cut; fresh state {:.2?} after the link came back (session ended and was re-made: {session_ended})",
        at - healed
    );
}

#[test]
fn the_remote_reconnects_after_a_kill_9_and_restart_of_the_agent() {
    let Some(turn) = lab_turn("kill -9", &["--delay-ms", "5"]) else {
        return;
    };
    let lab = &turn.lab;
    let mut agent = agent(lab);
    let mut remote = remote(lab, 300);
    connected(&mut remote);
    let before = last_heading(&mut remote);
    agent.kill();
    std::thread::sleep(Duration::from_secs(1));
    let restarted = Instant::now();
    let _agent = self::agent(lab);
    let (at, _) = fresh_state(&mut remote, before, Duration::from_secs(30));
    let reconnect = remote
        .seen
        .iter()
        .find(|(t, l)| *t >= restarted && l.starts_with("connected agent"))
        .map(|(t, _)| *t - restarted);
    assert!(reconnect.is_some(), "no new session:\n{}", remote.transcript());
    eprintln!(
        "netns kill -9: new session {:.2?} after the agent restarted, fresh state after {:.2?}",
        reconnect.unwrap_or_default(),
        at - restarted
    );
}

#[test]
fn the_session_follows_the_agent_to_a_new_address() {
    let Some(turn) = lab_turn("address change", &["--delay-ms", "5"]) else {
        return;
    };
    let lab = &turn.lab;
    let _agent = agent(lab);
    let mut remote = remote(lab, 300);
    connected(&mut remote);
    lab.move_agent("10.77.0.11");
    let moved = Instant::now();
    let line = remote.expect_line(Duration::from_secs(10), |l| {
        l == format!("agent moved to 10.77.0.11:{AGENT_PORT}")
    });
    let Some((at, _)) = line else {
        panic!("no move seen:\n{}", remote.transcript());
    };
    let before = last_heading(&mut remote);
    fresh_state(&mut remote, before, Duration::from_secs(5));
    assert!(
        !remote.seen.iter().any(|(_, l)| l.starts_with("disconnected")),
        "the session ended:\n{}",
        remote.transcript()
    );
    eprintln!(
        "netns address change: the remote followed in {:.2?}, same session",
        at - moved
    );
}

#[test]
fn state_stays_fresh_under_20_ms_jitter_with_reordering() {
    // One-way delay 20 ms ± 20 ms (netem's `delay 20ms 20ms`), and 10 % of
    // packets skip the delay and overtake the rest.
    let Some(turn) = lab_turn(
        "jitter",
        &[
            "--delay-ms",
            "20",
            "--jitter-ms",
            "20",
            "--reorder",
            "10",
            "--seed",
            "5",
        ],
    ) else {
        return;
    };
    let lab = &turn.lab;
    let _agent = agent(lab);
    let mut remote = remote(lab, 20);
    connected(&mut remote);
    assert_eq!(remote.wait(Duration::from_secs(40)), Some(true));
    let text = remote.transcript();
    let summary = text
        .lines()
        .find(|l| l.starts_with("staleness"))
        .unwrap_or_else(|| panic!("no staleness summary:\n{text}"));
    let p99_ms: f64 = summary
        .split("p99 ")
        .nth(1)
        .and_then(|r| r.split("ms").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable: {summary}"));
    // Publish period 50 ms + one-way delay up to 40 ms + scheduling.
    assert!(p99_ms < 200.0, "{summary}");
    eprintln!("netns jitter: {summary}");
}
