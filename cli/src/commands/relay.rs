//! The demo's in-process lossy relay: forwards datagrams between one client
//! and one server on loopback, dropping a seeded random share.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rand::{Rng, SeedableRng};

pub struct Relay {
    pub addr: SocketAddr,
    pub forwarded: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on loopback; everything from `server` goes to the last
    /// client seen, everything else to `server`.
    pub fn start(server: SocketAddr, loss: f64, seed: u64) -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let (forwarded, dropped): (Arc<AtomicU64>, Arc<AtomicU64>) = (Arc::default(), Arc::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (f, d, s) = (Arc::clone(&forwarded), Arc::clone(&dropped), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
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
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
