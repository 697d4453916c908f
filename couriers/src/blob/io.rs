//! Where blobs come from and go to: read and write at offsets, so a blob
//! is streamed rather than held whole in memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A blob being sent: read-only, random access.
pub trait BlobSource: Send {
    /// Fills `buf` from `offset`; returns bytes read (short only at the end).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// A blob being received: written at offsets, then read back to verify.
pub trait BlobSink: Send {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// The blob arrived whole and verified.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The transfer failed or was cancelled: clean up.
    fn abort(&mut self) {}
}

impl BlobSource for File {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match FileExt::read_at(self, &mut buf[done..], offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }
}

/// An in-memory blob (for small objects and tests).
impl BlobSource for Vec<u8> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// An in-memory sink (only for blobs known to be small).
#[derive(Debug, Default)]
pub struct MemorySink {
    pub data: Vec<u8>,
}

impl MemorySink {
    /// A sink with room for `size` bytes reserved up front, so a blob
    /// arriving in order is copied once: growing as it came re-copied it on
    /// every doubling and zeroed it first (a tenth of a loopback bulk
    /// receiver's time). The room is address space until written. Fails if
    /// it cannot be had.
    pub fn with_capacity(size: u64) -> io::Result<Self> {
        let size = usize::try_from(size).map_err(|_| io::ErrorKind::OutOfMemory)?;
        let mut data = Vec::new();
        data.try_reserve_exact(size)
            .map_err(|_| io::ErrorKind::OutOfMemory)?;
        Ok(Self { data })
    }
}

impl BlobSink for MemorySink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let end = start.checked_add(data.len()).ok_or(io::ErrorKind::InvalidInput)?;
        if start == self.data.len() {
            // In order: no zeroing first.
            self.data.extend_from_slice(data);
            return Ok(());
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[start..end].copy_from_slice(data);
        Ok(())
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.data.read_at(offset, buf)
    }
}

/// A file written as `<dir>/<name>.part` and renamed to `<dir>/<name>` once
/// verified; removed on failure.
#[derive(Debug)]
pub struct FileSink {
    file: File,
    part: PathBuf,
    target: PathBuf,
}

impl FileSink {
    /// Creates the partial file. `name` comes from the network: only its
    /// safe characters are used, never a path.
    pub fn create(dir: &Path, name: &str) -> io::Result<Self> {
        let safe = safe_file_name(name);
        let target = dir.join(&safe);
        let part = dir.join(format!("{safe}.part"));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)?;
        Ok(Self { file, part, target })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl BlobSink for FileSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        BlobSource::read_at(&mut self.file, offset, buf)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.part, &self.target)
    }
    fn abort(&mut self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

/// Keeps `[A-Za-z0-9._-]`, at most 100 characters, never empty, never
/// starting with a dot (no hidden files, no `..`).
pub fn safe_file_name(name: &str) -> String {
    let mut s: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(100)
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    if s.is_empty() {
        s.push_str("blob");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_sink_holds_its_blob_without_growing_and_takes_pieces_in_any_order() {
        let mut sink = MemorySink::with_capacity(10).unwrap();
        let room = sink.data.as_ptr();
        sink.write_at(0, b"abc").unwrap();
        sink.write_at(6, b"ghij").unwrap();
        sink.write_at(3, b"def").unwrap();
        assert_eq!(sink.data, b"abcdefghij");
        assert_eq!(sink.data.as_ptr(), room, "reserved up front, never moved");
        let mut back = [0u8; 4];
        assert_eq!(sink.read_at(6, &mut back).unwrap(), 4);
        assert_eq!(&back, b"ghij");
    }

    #[test]
    fn names_from_the_network_cannot_escape_the_directory() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("..\\..\\x"), "x");
        assert_eq!(safe_file_name(".."), "blob");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name("map v2 (final).bin"), "mapv2final.bin");
        assert_eq!(safe_file_name(""), "blob");
    }
}
