//! ping: round-trip times through the whole stack, with a summary like
//! ping(8)'s.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use octolink::Event;

use crate::error::Result;
use crate::home::Home;
use crate::node::{interrupted, Node};

pub fn ping(home: &Home, peer: &str, count: u32, interval_ms: u64, bind: SocketAddr) -> Result<()> {
    let node = Node::client(home, bind)?;
    let peer = node.resolve(peer)?;
    let name = node.name_of(&peer);
    node.connect_and_wait(peer, Duration::from_secs(10))?;
    println!("PING {name} ({})", peer.short());
    let stop = interrupted();
    let mut rtts = Vec::new();
    let mut sent = 0;
    for seq in 1..=count {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let start = Instant::now();
        let token = node.channel.ping(peer)?;
        sent += 1;
        let pong = node.channel.wait_for(
            Duration::from_secs(2),
            |e| matches!(e, Event::Pong { token: t, .. } if *t == token),
        );
        match pong {
            Some(Event::Pong { rtt, .. }) => {
                println!(
                    "reply from {name}: seq={seq} time={:.3} ms",
                    rtt.as_secs_f64() * 1e3
                );
                rtts.push(rtt);
            }
            _ => println!("no reply: seq={seq}"),
        }
        if seq < count {
            let wait = Duration::from_millis(interval_ms).saturating_sub(start.elapsed());
            std::thread::sleep(wait);
        }
    }
    let received = rtts.len() as u32;
    println!("--- {name} ping statistics ---");
    println!(
        "{sent} transmitted, {received} received, {:.1}% packet loss",
        if sent == 0 {
            0.0
        } else {
            100.0 * f64::from(sent - received) / f64::from(sent)
        }
    );
    if !rtts.is_empty() {
        let ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let min = ms.iter().copied().fold(f64::MAX, f64::min);
        let max = ms.iter().copied().fold(0.0, f64::max);
        let avg = ms.iter().sum::<f64>() / ms.len() as f64;
        let mdev = (ms.iter().map(|x| (x - avg).powi(2)).sum::<f64>() / ms.len() as f64).sqrt();
        println!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    }
    node.channel.shutdown()?;
    if received == 0 {
        crate::error::fail!("no replies");
    }
    Ok(())
}
