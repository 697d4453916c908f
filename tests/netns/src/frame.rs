//! Just enough Ethernet/IPv4/UDP to find a datagram's payload and to set
//! its checksum. Anything else passes through untouched.

use std::ops::Range;

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTO_UDP: u8 = 17;
const UDP_HEADER: usize = 8;

/// Where a UDP-in-IPv4 frame keeps its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpFrame {
    ip: Range<usize>,
    udp: Range<usize>,
}

impl UdpFrame {
    /// Parses `frame`, or `None` if it is not a well-formed, unfragmented
    /// UDP datagram in IPv4.
    pub fn parse(frame: &[u8]) -> Option<Self> {
        let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
        if ethertype != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = frame.get(ETH_HEADER..)?;
        let header_len = usize::from(ip.first()? & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?));
        let fragment = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?) & 0x3fff;
        if header_len < 20 || total > ip.len() || total < header_len + UDP_HEADER {
            return None;
        }
        if *ip.get(9)? != PROTO_UDP || fragment != 0 {
            return None;
        }
        let udp_start = ETH_HEADER + header_len;
        let udp_len = usize::from(u16::from_be_bytes(
            frame.get(udp_start + 4..udp_start + 6)?.try_into().ok()?,
        ));
        if udp_len < UDP_HEADER || udp_len > total - header_len {
            return None;
        }
        Some(Self {
            ip: ETH_HEADER..ETH_HEADER + total,
            udp: udp_start..udp_start + udp_len,
        })
    }

    /// The datagram's payload, as a range of the frame.
    pub fn payload(&self) -> Range<usize> {
        self.udp.start + UDP_HEADER..self.udp.end
    }

    /// Writes the UDP checksum. The sender's kernel leaves it to the NIC
    /// (veth offload), so a frame copied off the wire carries only a
    /// partial sum; the receiver's kernel would drop it.
    pub fn fill_checksum(&self, frame: &mut [u8]) {
        let sum_at = self.udp.start + 6;
        frame[sum_at..sum_at + 2].copy_from_slice(&[0, 0]);
        let src_dst = &frame[self.ip.start + 12..self.ip.start + 20];
        let len = (self.udp.len() as u16).to_be_bytes();
        let pseudo = [0, PROTO_UDP, len[0], len[1]];
        let sum = ones_complement_sum(&[src_dst, &pseudo, &frame[self.udp.clone()]]);
        let sum = match !sum {
            0 => 0xffff,
            s => s,
        };
        frame[sum_at..sum_at + 2].copy_from_slice(&sum.to_be_bytes());
    }

    /// Clears the checksum: "none" in IPv4, so the receiver's kernel hands
    /// even a corrupted payload to the application.
    pub fn clear_checksum(&self, frame: &mut [u8]) {
        let sum_at = self.udp.start + 6;
        frame[sum_at..sum_at + 2].copy_from_slice(&[0, 0]);
    }
}

/// The 16-bit ones' complement sum of `parts` joined (RFC 1071).
fn ones_complement_sum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u64;
    let mut odd: Option<u8> = None;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        match odd.take() {
            Some(hi) => sum += u64::from(u16::from_be_bytes([hi, b])),
            None => odd = Some(b),
        }
    }
    if let Some(hi) = odd {
        sum += u64::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An Ethernet frame carrying UDP 10.0.0.1:1000 -> 10.0.0.2:2000.
    pub fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let total = (20 + UDP_HEADER + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, PROTO_UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&1000u16.to_be_bytes());
        f.extend_from_slice(&2000u16.to_be_bytes());
        f.extend_from_slice(&((UDP_HEADER + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_filled_checksum_verifies_to_zero_and_other_frames_are_not_parsed() {
        let mut f = udp_frame(b"hello, robot");
        let u = UdpFrame::parse(&f).unwrap();
        assert_eq!(&f[u.payload()], b"hello, robot");
        u.fill_checksum(&mut f);
        assert_ne!(&f[u.udp.start + 6..u.udp.start + 8], &[0, 0]);
        // Receiver's check: the sum over pseudo-header and datagram is all ones.
        let len = (u.udp.len() as u16).to_be_bytes();
        let check = ones_complement_sum(&[&f[26..34], &[0, PROTO_UDP, len[0], len[1]], &f[u.udp.clone()]]);
        assert_eq!(check, 0xffff);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(UdpFrame::parse(&arp), None);
        assert_eq!(UdpFrame::parse(&f[..30]), None, "truncated");
    }
}
