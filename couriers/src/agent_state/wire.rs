//! The AgentState courier's records.
//!
//! * `0x01 UPDATE`: param id (u16) ‖ version (varint) ‖ writer (u64) ‖
//!   length (varint) ‖ value (postcard bytes).
//! * `0x02 DIGEST`: digest of the whole state (u64) ‖ flags (u8; bit 0:
//!   "my view differs, send me everything").

use octolink::wire::{DecodeError, Reader, Writer};

pub const UPDATE: u8 = 0x01;
pub const DIGEST: u8 = 0x02;
pub const FLAG_REQUEST_FULL: u8 = 1;
/// Largest size of an UPDATE record besides its value.
pub const UPDATE_OVERHEAD: usize = 1 + 2 + 8 + 8 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Update {
        id: u16,
        version: u64,
        writer: u64,
        value: &'a [u8],
    },
    Digest {
        digest: u64,
        flags: u8,
    },
}

/// Every record of a payload, or the first error (the tests' view).
#[cfg(test)]
pub fn parse(payload: &[u8]) -> Result<Vec<Record<'_>>, DecodeError> {
    records(payload).collect()
}

/// The records of a payload, in order, without collecting them; an error
/// ends the walk (check the whole payload first, then apply it).
pub fn records(payload: &[u8]) -> impl Iterator<Item = Result<Record<'_>, DecodeError>> + '_ {
    let mut r = Reader::new(payload);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || r.is_empty() {
            return None;
        }
        let record = next_record(&mut r);
        failed = record.is_err();
        Some(record)
    })
}

fn next_record<'a>(r: &mut Reader<'a>) -> Result<Record<'a>, DecodeError> {
    Ok(match r.u8()? {
        UPDATE => {
            let id = r.u16()?;
            let version = r.varint()?;
            let writer = r.u64()?;
            let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::BadFrame)?;
            Record::Update {
                id,
                version,
                writer,
                value: r.take(len)?,
            }
        }
        DIGEST => Record::Digest {
            digest: r.u64()?,
            flags: r.u8()?,
        },
        _ => return Err(DecodeError::UnknownFrame),
    })
}

pub fn write_update(w: &mut Writer<'_>, id: u16, version: u64, writer: u64, value: &[u8]) -> bool {
    let start = w.len();
    let ok = w.u8(UPDATE).is_ok()
        && w.u16(id).is_ok()
        && w.varint(version).is_ok()
        && w.u64(writer).is_ok()
        && w.varint(value.len() as u64).is_ok()
        && w.bytes(value).is_ok();
    if !ok {
        w.truncate(start);
    }
    ok
}

pub fn write_digest(w: &mut Writer<'_>, digest: u64, flags: u8) -> bool {
    let start = w.len();
    let ok = w.u8(DIGEST).is_ok() && w.u64(digest).is_ok() && w.u8(flags).is_ok();
    if !ok {
        w.truncate(start);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_round_trip() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        assert!(write_update(&mut w, 7, 300, u64::MAX, b"abc"));
        assert!(write_digest(&mut w, 42, FLAG_REQUEST_FULL));
        let n = w.len();
        let recs = parse(&buf[..n]).unwrap();
        assert_eq!(
            recs,
            vec![
                Record::Update {
                    id: 7,
                    version: 300,
                    writer: u64::MAX,
                    value: b"abc"
                },
                Record::Digest { digest: 42, flags: 1 },
            ]
        );
    }

    proptest! {
        #[test]
        fn the_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }
    }
}
