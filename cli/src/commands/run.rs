//! agent and remote: long-running nodes that print what happens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use octolink::Event;
use octolink_couriers::{BlobEvent, CommandEvent, StateEvent};

use crate::error::Result;
use crate::home::{create_private_dir, Home};
use crate::node::{interrupted, keep_running, set_param, show_param, Node, NodeOptions, PARAMS};

/// Prints one engine event in a stable, greppable form.
pub fn print_event(node: &Node, e: &Event) {
    match e {
        Event::Connected { peer, addr, .. } => println!("connected {} {addr}", node.name_of(peer)),
        Event::Disconnected { peer, reason } => println!("disconnected {} {reason:?}", node.name_of(peer)),
        Event::ConnectFailed { peer, .. } => {
            println!("no answer from {} yet; still trying", node.name_of(peer))
        }
        Event::AddressChanged { peer, addr } => println!("{} moved to {addr}", node.name_of(peer)),
        Event::Alert(a) => println!("ALERT {a:?}"),
        Event::LinkQuality { peer, good } => {
            println!(
                "link to {} is {}",
                node.name_of(peer),
                if *good { "good" } else { "bad" }
            )
        }
        _ => {}
    }
}

/// Drains couriers' news: commands, blobs and state changes.
fn print_courier_news(node: &Node) -> Result<()> {
    for (peer, c) in &node.couriers {
        let name = node.name_of(peer);
        for cmd in c.take_commands(&node.channel)? {
            println!("command from {name}: {}", String::from_utf8_lossy(&cmd.body));
        }
        for e in c.take_command_events(&node.channel)? {
            match e {
                CommandEvent::Delivered(id) => println!("command {id} delivered to {name}"),
                CommandEvent::Expired(id) => println!("command {id} expired before delivery"),
                CommandEvent::Failed(id) => println!("command {id} not confirmed: session ended"),
            }
        }
        for e in c.take_blob_events(&node.channel)? {
            match e {
                BlobEvent::Offered {
                    name: file,
                    size,
                    accepted,
                    ..
                } => {
                    println!(
                        "{name} offers {file} ({size} bytes): {}",
                        if accepted { "accepted" } else { "refused" }
                    )
                }
                BlobEvent::Completed {
                    outgoing: false,
                    path,
                    sha256,
                    ..
                } => println!(
                    "received {} sha256 {}",
                    path.map_or("(memory)".into(), |p| p.display().to_string()),
                    hex(&sha256)
                ),
                BlobEvent::Failed { reason, .. } => println!("transfer failed: {reason}"),
                _ => {}
            }
        }
    }
    while let Some(StateEvent::Changed { param, .. }) = node.state.poll_event() {
        let name = PARAMS.iter().find(|p| p.0 == param).map_or("?", |p| p.1);
        println!("state {name} = {}", show_param(&node.state, param));
    }
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn agent(home: &Home, bind: SocketAddr, dir: Option<PathBuf>, limit: Option<Duration>) -> Result<()> {
    let inbox = dir.unwrap_or_else(|| home.inbox());
    create_private_dir(&inbox)?;
    let node = Node::start(
        home,
        NodeOptions {
            bind,
            connect_all: true,
            inbox: Some(inbox.clone()),
        },
    )?;
    println!(
        "agent {} on {} (files into {})",
        node.channel.node_id().short(),
        node.channel.local_addr(),
        inbox.display()
    );
    let stop = interrupted();
    let started = Instant::now();
    let mut last_publish = Instant::now();
    let mut battery = 1.0f32;
    while keep_running(&stop, started, limit) {
        if let Ok(e) = node.channel.events().recv_timeout(Duration::from_millis(50)) {
            print_event(&node, &e);
            while let Ok(e) = node.channel.events().try_recv() {
                print_event(&node, &e);
            }
        }
        if last_publish.elapsed() >= Duration::from_millis(100) {
            last_publish = Instant::now();
            battery = (battery - 0.0005).max(0.0);
            let t = started.elapsed().as_secs_f32();
            let now = Instant::now();
            node.state.set(now, 1, &battery)?;
            node.state.set(now, 3, &((t * 20.0) % 360.0))?;
        }
        print_courier_news(&node)?;
    }
    node.channel.shutdown()?;
    Ok(())
}

pub fn remote(
    home: &Home,
    peer: &str,
    bind: SocketAddr,
    sets: &[String],
    commands: &[String],
    limit: Option<Duration>,
) -> Result<()> {
    let node = Node::client(home, bind)?;
    let peer = node.resolve(peer)?;
    let name = node.name_of(&peer);
    node.connect_and_wait(peer, Duration::from_secs(10))?;
    println!("connected {name}");
    let couriers = node.couriers_for(&peer)?;
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            crate::error::fail!("--set wants NAME=VALUE, not {s:?}");
        };
        set_param(&node.state, k, v)?;
    }
    for c in commands {
        couriers
            .send_command(
                &node.channel,
                c.as_bytes().to_vec(),
                Some(Duration::from_secs(10)),
            )
            .map_err(|e| crate::error::CliError(e.to_string()))?;
    }
    let stop = interrupted();
    let started = Instant::now();
    let mut last_show = Instant::now();
    while keep_running(&stop, started, limit) {
        if let Ok(e) = node.channel.events().recv_timeout(Duration::from_millis(50)) {
            print_event(&node, &e);
        }
        print_courier_news(&node)?;
        if last_show.elapsed() >= Duration::from_secs(1) {
            last_show = Instant::now();
            let line: Vec<String> = PARAMS
                .iter()
                .map(|&(id, n, _)| format!("{n}={}", show_param(&node.state, id)))
                .collect();
            println!("{name}: {}", line.join("  "));
        }
    }
    node.channel.shutdown()?;
    Ok(())
}
