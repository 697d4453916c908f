//! The demo's attacker: floods the agent's real socket, as fast as one
//! thread can send, with junk datagrams and SYNs forged in the remote's
//! name (garbage signatures), from a socket the agent has never trusted.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use octolink::NodeId;
use rand::{Rng, RngCore, SeedableRng};

use super::worker::Worker;

pub struct Flood {
    pub sent: Arc<AtomicU64>,
    _worker: Worker,
}

/// A SYN from `claimed` to `target` with random key material and a random
/// 256-byte "signature": passes every check but the signature.
fn forged_syn(rng: &mut impl RngCore, claimed: &NodeId, target: &NodeId) -> Vec<u8> {
    let mut p = Vec::with_capacity(398);
    p.extend_from_slice(&[0x6f, 0x6c, 1, 1]); // magic, version, SYN
    p.extend_from_slice(&[0; 10]); // session id 0, packet number 0
    p.extend_from_slice(claimed.as_bytes());
    p.extend_from_slice(target.as_bytes());
    let mut random = [0u8; 4 + 16 + 32];
    rng.fill_bytes(&mut random);
    random[0] |= 1; // a non-zero session id
    p.extend_from_slice(&random);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    p.extend_from_slice(&micros.to_be_bytes());
    p.extend_from_slice(&512u16.to_be_bytes());
    p.extend_from_slice(&256u16.to_be_bytes());
    let mut signature = [0u8; 256];
    rng.fill_bytes(&mut signature);
    p.extend_from_slice(&signature);
    p
}

impl Flood {
    pub fn start(target: SocketAddr, claimed: NodeId, target_id: NodeId) -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(target)?;
        let sent = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&sent);
        let worker = Worker::spawn(move |s| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0xf100d);
            let mut junk = [0u8; 600];
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                // One forged SYN per three datagrams; the rest junk.
                let ok = if n.is_multiple_of(3) {
                    socket.send(&forged_syn(&mut rng, &claimed, &target_id))
                } else {
                    let len = rng.gen_range(0..junk.len());
                    rng.fill_bytes(&mut junk[..len]);
                    socket.send(&junk[..len])
                };
                // A full buffer or a refused port is the point of a flood.
                if ok.is_ok() {
                    n += 1;
                    count.store(n, Ordering::Relaxed);
                }
            }
        });
        Ok(Self {
            sent,
            _worker: worker,
        })
    }
}

/// The process's peak resident memory, from `/proc/self/status` (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
