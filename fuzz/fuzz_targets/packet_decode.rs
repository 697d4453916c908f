//! Every decoder on arbitrary bytes: header, frames, handshake messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use octolink::wire::{FrameIter, HandshakeFields, Header, HsAck, Syn, SynAck};

fuzz_target!(|data: &[u8]| {
    let _ = Header::decode(data);
    let _ = Syn::decode(data);
    let _ = SynAck::decode(data);
    let _ = HsAck::decode(data);
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
