//! Every decoder on arbitrary bytes: header, frames, handshake messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use octolink::wire::{FrameIter, HandshakeFields, Header, HsAck, Syn, SynAck};

fuzz_target!(|data: &[u8]| {
    let _ = Header::decode(data);
    let _ = Syn::decode(data);
    let _ = SynAck::decode(data);
    let _ = HsAck::decode(data);
    let _ = octolink::wire::decode_retry(data);
    let _ = octolink::wire::trailer_cookie(data);
    // A SYN's cookie trailer survives replacement.
    if let Ok(m) = Syn::decode(data) {
        let with = octolink::wire::with_cookie(data, m.trailer_at, &[7; 16]);
        if with.len() <= octolink::wire::MAX_DATAGRAM {
            assert_eq!(Syn::decode(&with).map(|m| m.cookie), Ok(Some([7; 16])));
        }
    }
    // Frame bodies: validate, then iterate (ack ranges included).
    if FrameIter::validate(data).is_ok() {
        for frame in FrameIter::new(data) {
            if let Ok(octolink::wire::Frame::Ack(ack)) = frame {
                for (lo, hi) in ack.ranges {
                    assert!(lo <= hi);
                }
            }
        }
    }
});
