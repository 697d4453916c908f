//! One shared in-process UDP relay for the lossy workloads: it delays every
//! datagram by a fixed time and drops a seeded random share, identically for
//! every library.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

/// A datagram waiting out its delay: release time, order, destination, bytes.
type Delayed = (Instant, u64, SocketAddr, Vec<u8>);

pub struct Relay {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Datagrams from `server` go to the last client seen; all others go
    /// to `server`. Each waits `delay`, and `loss` of them vanish.
    pub fn start(server: SocketAddr, delay: Duration, loss: f64, seed: u64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("relay binds");
        socket.set_nonblocking(true).expect("nonblocking");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut client: Option<SocketAddr> = None;
            let mut queue: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
            let mut seq = 0u64;
            let mut buf = [0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                let mut idle = true;
                while let Ok((n, from)) = socket.recv_from(&mut buf) {
                    idle = false;
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
                        continue;
                    }
                    seq += 1;
                    queue.push(Reverse((Instant::now() + delay, seq, to, buf[..n].to_vec())));
                }
                let now = Instant::now();
                while let Some(Reverse((t, _, _, _))) = queue.peek() {
                    if *t > now {
                        break;
                    }
                    let Some(Reverse((_, _, to, d))) = queue.pop() else {
                        break;
                    };
                    let _ = socket.send_to(&d, to);
                    idle = false;
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
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
