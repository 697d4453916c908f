//! send and recv: files with a progress bar.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use octolink_couriers::BlobEvent;

use crate::commands::run::{hex, print_event};
use crate::error::{fail, Result};
use crate::home::{create_private_dir, Home};
use crate::node::{interrupted, keep_running, Node, NodeOptions};

/// A progress bar showing bytes, rate and ETA.
pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub fn send(home: &Home, peer: &str, file: &Path, bind: SocketAddr) -> Result<()> {
    // Fail on an unreadable file before touching the network.
    let size = match std::fs::File::open(file).and_then(|f| f.metadata()) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => fail!("{} is not a regular file", file.display()),
        Err(e) => fail!("cannot read {}: {e}", file.display()),
    };
    let node = Node::client(home, bind)?;
    let peer = node.resolve(peer)?;
    node.connect_and_wait(peer, Duration::from_secs(10))?;
    let couriers = node.couriers_for(&peer)?;
    let id = couriers
        .send_file(&node.channel, file, 100)
        .map_err(|e| crate::error::CliError(e.to_string()))?;
    let bar = progress_bar(size);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let outcome = loop {
        let _ = node.channel.events().recv_timeout(Duration::from_millis(50));
        let mut done = None;
        for e in couriers.take_blob_events(&node.channel)? {
            match e {
                BlobEvent::Progress { id: i, progress, .. } if i == id => {
                    bar.set_position(progress.done);
                    last_progress = Instant::now();
                }
                BlobEvent::Completed { id: i, digest, .. } if i == id => done = Some(Ok(digest)),
                BlobEvent::Failed { id: i, reason, .. } | BlobEvent::Cancelled { id: i, reason, .. }
                    if i == id =>
                {
                    done = Some(Err(reason))
                }
                _ => {}
            }
        }
        if let Some(d) = done {
            break d;
        }
        if last_progress.elapsed() > Duration::from_secs(30) {
            break Err("no progress for 30 s".to_string());
        }
    };
    bar.finish_and_clear();
    let took = started.elapsed();
    let link = node
        .channel
        .stats()?
        .sessions
        .into_iter()
        .find(|s| s.peer == peer);
    node.channel.shutdown()?;
    match outcome {
        Ok(digest) => {
            println!(
                "sent {} ({size} bytes) in {:.2} s, {:.2} MiB/s, verified blake3 {}",
                file.display(),
                took.as_secs_f64(),
                size as f64 / took.as_secs_f64().max(1e-9) / f64::from(1 << 20),
                hex(&digest)
            );
            if let Some(s) = link {
                println!(
                    "link: {} packets sent, {} lost ({} taken as congestion), rtt {:?} (min {:?})",
                    s.sent.packets,
                    s.packets_lost,
                    s.congestion_events,
                    s.rtt.smoothed.unwrap_or_default(),
                    s.rtt.min.unwrap_or_default()
                );
            }
            Ok(())
        }
        Err(reason) => fail!("transfer failed: {reason}"),
    }
}

pub fn recv(
    home: &Home,
    dir: &Path,
    bind: SocketAddr,
    count: Option<usize>,
    limit: Option<Duration>,
) -> Result<()> {
    create_private_dir(dir)?;
    let node = Node::start(
        home,
        NodeOptions {
            bind,
            connect_all: false,
            inbox: Some(dir.to_path_buf()),
        },
    )?;
    println!(
        "receiving into {} on {}",
        dir.display(),
        node.channel.local_addr()
    );
    let stop = interrupted();
    let started = Instant::now();
    let mut received = 0;
    while keep_running(&stop, started, limit) && count.is_none_or(|c| received < c) {
        if let Ok(e) = node.channel.events().recv_timeout(Duration::from_millis(50)) {
            print_event(&node, &e);
        }
        for (peer, c) in &node.couriers {
            for e in c.take_blob_events(&node.channel)? {
                match e {
                    BlobEvent::Offered { name, size, .. } => {
                        println!("incoming {name} ({size} bytes) from {}", node.name_of(peer))
                    }
                    BlobEvent::Completed {
                        outgoing: false,
                        path,
                        digest,
                        ..
                    } => {
                        received += 1;
                        let p = path.map_or("(memory)".into(), |p| p.display().to_string());
                        println!("received {p} blake3 {}", hex(&digest));
                    }
                    BlobEvent::Failed { reason, .. } => println!("transfer failed: {reason}"),
                    _ => {}
                }
            }
        }
    }
    node.channel.shutdown()?;
    Ok(())
}
