//! The demo's in-process lossy relay: forwards datagrams between one client
//! and one server on loopback, dropping a seeded random share.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use super::worker::Worker;

pub struct Relay {
    pub addr: SocketAddr,
    pub forwarded: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
    _worker: Worker,
}

impl Relay {
    /// Listens on loopback; everything from `server` goes to the last
    /// client seen, everything else to `server`.
    pub fn start(server: SocketAddr, loss: f64, seed: u64) -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let (forwarded, dropped): (Arc<AtomicU64>, Arc<AtomicU64>) = (Arc::default(), Arc::default());
        let (f, d) = (Arc::clone(&forwarded), Arc::clone(&dropped));
        let worker = Worker::spawn(move |s| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut client: Option<SocketAddr> = None;
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let to = if from == server {
                    match client {
                        Some(c) => c,
                        None => continue,
                    }
                } else {
                    client = Some(from);
                    server
                };
                if rng.gen::<f64>() < loss {
                    d.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if socket.send_to(&buf[..n], to).is_ok() {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(Self {
            addr,
            forwarded,
            dropped,
            _worker: worker,
        })
    }
}
