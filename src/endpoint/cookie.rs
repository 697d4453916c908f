//! Return routability under load. While SYNs fit the verification budgets
//! nothing changes. When a SYN without a valid cookie finds its budget
//! spent, it gets a RETRY instead of silence: a cookie bound to its source
//! address, its claimed initiator and a 4-second epoch. The SYN comes back
//! carrying the cookie and draws on budgets of its own, which spoofed SYNs
//! (their senders never see a RETRY) cannot touch. A flood that spoofs a
//! peer's exact address, or drains the endpoint-wide budget from many
//! ports, so no longer shuts that peer out.

use std::net::SocketAddr;
use std::time::Instant;

use hkdf::Hkdf;
use sha2::Sha256;

use super::{Endpoint, MAX_HANDSHAKE_QUEUE};
use crate::crypto::NodeId;
use crate::stats::DropReason;
use crate::wire::{self, Cookie, HandshakeFields, Syn, COOKIE_LEN, RETRY_LEN};

/// Cookies are valid in the epoch they were made and the next.
const COOKIE_EPOCH_SECS: u64 = 4;
/// RETRYs an attempt follows at most (a forged RETRY costs us a SYN).
const MAX_RETRIES_FOLLOWED: u32 = 4;

impl Endpoint {
    fn cookie(&self, now: Instant, from: SocketAddr, initiator: &NodeId, epochs_ago: u64) -> Cookie {
        let epoch = (now.saturating_duration_since(self.epoch).as_secs() / COOKIE_EPOCH_SECS)
            .saturating_sub(epochs_ago);
        let ip = match from.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            std::net::IpAddr::V6(v6) => v6,
        };
        let mut input = [0u8; 16 + 2 + 32 + 8];
        input[..16].copy_from_slice(&ip.octets());
        input[16..18].copy_from_slice(&from.port().to_be_bytes());
        input[18..50].copy_from_slice(initiator.as_bytes());
        input[50..].copy_from_slice(&epoch.to_be_bytes());
        // HKDF-Extract is HMAC-SHA-256 keyed with the salt.
        let (mac, _) = Hkdf::<Sha256>::extract(Some(&self.cookie_key), &input);
        let mut cookie = [0u8; COOKIE_LEN];
        cookie.copy_from_slice(&mac[..COOKIE_LEN]);
        cookie
    }

    pub(crate) fn cookie_is_valid(
        &self,
        now: Instant,
        from: SocketAddr,
        initiator: &NodeId,
        c: &Cookie,
    ) -> bool {
        (0..2).any(|ago| {
            let want = self.cookie(now, from, initiator, ago);
            want.iter().zip(c).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        })
    }

    /// The verification budgets for a SYN: its own source's and the
    /// endpoint's, or, with a valid cookie, the separate ones for returned
    /// cookies. Counts the verification it allows.
    pub(crate) fn take_syn_budget(&mut self, now: Instant, from: SocketAddr, returned_cookie: bool) -> bool {
        let ok = if returned_cookie {
            self.cookie_sources.take(now, from) && self.cookie_verify_budget.take(now)
        } else {
            self.source_budgets.take(now, from) && self.verify_budget.take(now)
        };
        if ok {
            self.stats.rsa_verifications += 1;
        }
        ok
    }

    /// Answers a SYN that found its budget spent with a RETRY (30 bytes, far
    /// smaller than any SYN), unless answers to real handshakes would be
    /// crowded out of the queue.
    pub(crate) fn send_retry(&mut self, now: Instant, from: SocketAddr, initiator: &NodeId, session_id: u32) {
        self.drop_datagram(DropReason::CookieRequired);
        if self.handshake_out.len() >= MAX_HANDSHAKE_QUEUE / 2 {
            return;
        }
        let cookie = self.cookie(now, from, initiator, 0);
        let mut buf = [0u8; RETRY_LEN];
        if let Ok(n) = wire::encode_retry(session_id, &cookie, &mut buf) {
            self.stats.retries_sent += 1;
            self.queue_handshake(from, buf[..n].to_vec());
        }
    }

    /// A RETRY from the address one of our attempts dials: the SYN goes
    /// again, byte for byte but for the cookie trailer. The session id it
    /// echoes is not checked: a RETRY provoked by someone spoofing our
    /// address carries a cookie just as good for us.
    pub(crate) fn handle_retry(&mut self, from: SocketAddr, datagram: &[u8]) {
        let cookie = match wire::decode_retry(datagram) {
            Ok((_, c)) => c,
            Err(e) => return self.drop_datagram(e.into()),
        };
        let attempt = self
            .peers
            .values_mut()
            .filter_map(|p| p.outgoing.as_mut())
            .find(|o| o.addr == from && o.retries_followed < MAX_RETRIES_FOLLOWED);
        let Some(out) = attempt else {
            return self.drop_datagram(DropReason::UnexpectedHandshake);
        };
        let Ok(trailer_at) = Syn::decode(&out.syn).map(|m| m.trailer_at) else {
            return;
        };
        out.retries_followed += 1;
        out.syn = wire::with_cookie(&out.syn, trailer_at, &cookie);
        let syn = out.syn.clone();
        self.stats.whole += 1;
        self.queue_handshake(from, syn);
    }
}
