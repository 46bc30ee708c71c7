//! Backing stores for disk LUNs: a file or block device, or memory (for tests).
//!
//! The SCSI layer (SBC-3) only needs positional reads and writes, a cache flush, hole punching
//! for UNMAP / WRITE SAME with the UNMAP bit, and the size. Everything takes `&self` and uses
//! positional I/O (`pread`/`pwrite` through [`std::os::unix::fs::FileExt`]) so that one
//! backstore can serve many connection tasks at once without a lock around a file cursor.
//!
//! Hole punching uses `fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`. Filesystems and
//! block devices that reject it get zeros written instead, so a deallocated range always reads
//! back as zeros (we report LBPRZ = 1).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use nix::errno::Errno;
use nix::fcntl::{fallocate, FallocateFlags};
use nix::unistd::{lseek, Whence};

/// Size of one logical block in bytes. Every LUN uses 512-byte blocks.
pub const BLOCK_SIZE: u64 = 512;

/// Largest buffer used when writing zeros in place of a punched hole.
const ZERO_CHUNK: usize = 1 << 20;

/// Provisioning state of a byte range, as answered by [`Backstore::extent_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// `true` when the range holds data, `false` when it is a hole (deallocated).
    pub mapped: bool,
    /// Length in bytes of the run of the same state, starting at the queried offset.
    pub len: u64,
}

/// Storage behind a LUN.
///
/// Implementations must be usable from many threads at once; all methods take `&self`.
pub trait Backstore: Send + Sync + std::fmt::Debug {
    /// Reads exactly `buf.len()` bytes at byte `offset`.
    ///
    /// # Errors
    /// Any I/O error, including a short read past the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at byte `offset`.
    ///
    /// # Errors
    /// Any I/O error (for example `ENOSPC` on a sparse file).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes previously written data durable (`fdatasync`).
    ///
    /// # Errors
    /// Any I/O error reported by the flush.
    fn flush(&self) -> io::Result<()>;

    /// Deallocates `len` bytes at `offset`; the range reads back as zeros afterwards.
    ///
    /// # Errors
    /// Any I/O error; "not supported" is handled inside by writing zeros.
    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()>;

    /// Size in bytes.
    fn len(&self) -> u64;

    /// `true` when the store has no blocks at all.
    fn is_empty(&self) -> bool {
        self.len() < BLOCK_SIZE
    }

    /// Logical block size in bytes (always [`BLOCK_SIZE`]).
    fn block_size(&self) -> u64 {
        BLOCK_SIZE
    }

    /// Provisioning state of the run starting at `offset` (used by GET LBA STATUS).
    ///
    /// The default reports everything from `offset` to the end as mapped.
    ///
    /// # Errors
    /// Any I/O error while probing.
    fn extent_at(&self, offset: u64) -> io::Result<Extent> {
        Ok(Extent {
            mapped: true,
            len: self.len().saturating_sub(offset),
        })
    }
}

/// A backstore over a regular file or a block device, using positional I/O.
#[derive(Debug)]
pub struct FileBackstore {
    file: File,
    len: u64,
    /// Cleared after the first `EOPNOTSUPP` from fallocate, so later UNMAPs go straight to zeros.
    punch_supported: AtomicBool,
}

impl FileBackstore {
    /// Opens `path` read-write (or read-only) and measures its size by seeking to the end, which
    /// also works for block devices whose metadata length is 0.
    ///
    /// # Errors
    /// Any error from `open` or `lseek`.
    pub fn open(path: &Path, read_only: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path)?;
        Self::from_file(file)
    }

    /// Wraps an already opened file.
    ///
    /// # Errors
    /// Any error from `lseek` while measuring the size.
    pub fn from_file(file: File) -> io::Result<Self> {
        let len = (&file).seek(SeekFrom::End(0))?;
        Ok(Self {
            file,
            len,
            punch_supported: AtomicBool::new(true),
        })
    }

    fn write_zeros(&self, mut offset: u64, len: u64) -> io::Result<()> {
        let end = offset.saturating_add(len);
        let chunk = vec![0u8; ZERO_CHUNK.min(usize::try_from(len).unwrap_or(ZERO_CHUNK))];
        while offset < end {
            let n = usize::try_from(end - offset)
                .unwrap_or(chunk.len())
                .min(chunk.len());
            self.file.write_all_at(&chunk[..n], offset)?;
            offset += n as u64;
        }
        Ok(())
    }
}

fn to_off(v: u64) -> io::Result<i64> {
    i64::try_from(v).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

impl Backstore for FileBackstore {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        if self.punch_supported.load(Ordering::Relaxed) {
            let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
            match fallocate(self.file.as_raw_fd(), flags, to_off(offset)?, to_off(len)?) {
                Ok(()) => return Ok(()),
                // Not supported here (or not for this file type): fall back to zeros.
                Err(Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::ENODEV | Errno::EINVAL) => {
                    self.punch_supported.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.write_zeros(offset, len)
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn extent_at(&self, offset: u64) -> io::Result<Extent> {
        let fd = self.file.as_raw_fd();
        let rest = self.len.saturating_sub(offset);
        let whole = Extent {
            mapped: true,
            len: rest,
        };
        // SEEK_DATA from `offset`: if it lands on `offset` the run is data up to the next hole.
        let data = match lseek(fd, to_off(offset)?, Whence::SeekData) {
            Ok(d) => u64::try_from(d).unwrap_or(offset),
            // ENXIO: no data after offset, so the rest is a hole.
            Err(Errno::ENXIO) => {
                return Ok(Extent {
                    mapped: false,
                    len: rest,
                })
            }
            // Not supported (block devices, some filesystems): report mapped.
            Err(_) => return Ok(whole),
        };
        if data > offset {
            return Ok(Extent {
                mapped: false,
                len: (data - offset).min(rest),
            });
        }
        match lseek(fd, to_off(offset)?, Whence::SeekHole) {
            Ok(h) => {
                let hole = u64::try_from(h).unwrap_or(self.len);
                Ok(Extent {
                    mapped: true,
                    len: hole.saturating_sub(offset).min(rest),
                })
            }
            Err(_) => Ok(whole),
        }
    }
}

/// An in-memory backstore, for tests and for scratch LUNs.
///
/// Tracks which blocks were punched so GET LBA STATUS can be tested without a filesystem.
#[derive(Debug)]
pub struct MemBackstore {
    inner: RwLock<MemInner>,
    len: u64,
}

#[derive(Debug)]
struct MemInner {
    data: Vec<u8>,
    /// One flag per block: `true` when deallocated.
    holes: Vec<bool>,
    flushes: u64,
}

impl MemBackstore {
    /// Creates a zero-filled store of `blocks` logical blocks.
    ///
    /// # Errors
    /// `InvalidInput` when the size does not fit in memory addressing.
    pub fn new(blocks: u64) -> io::Result<Self> {
        let len = blocks
            .checked_mul(BLOCK_SIZE)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let bytes =
            usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let nblocks =
            usize::try_from(blocks).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(Self {
            inner: RwLock::new(MemInner {
                data: vec![0; bytes],
                holes: vec![false; nblocks],
                flushes: 0,
            }),
            len,
        })
    }

    /// How many times [`Backstore::flush`] was called (lets tests check FUA and write-through).
    pub fn flush_count(&self) -> u64 {
        self.inner.read().map(|i| i.flushes).unwrap_or(0)
    }

    fn range(&self, offset: u64, len: usize) -> io::Result<std::ops::Range<usize>> {
        let start =
            usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let end = start
            .checked_add(len)
            .filter(|&e| e as u64 <= self.len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        Ok(start..end)
    }
}

fn poisoned<T>(_: T) -> io::Error {
    io::Error::other("memory backstore lock poisoned")
}

impl Backstore for MemBackstore {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let r = self.range(offset, buf.len())?;
        let inner = self.inner.read().map_err(poisoned)?;
        let src = inner
            .data
            .get(r)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let r = self.range(offset, buf.len())?;
        let mut inner = self.inner.write().map_err(poisoned)?;
        let first = r.start / BLOCK_SIZE as usize;
        let last = r.end.div_ceil(BLOCK_SIZE as usize);
        if let Some(dst) = inner.data.get_mut(r) {
            dst.copy_from_slice(buf);
        }
        if let Some(h) = inner.holes.get_mut(first..last) {
            h.fill(false);
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.inner.write().map_err(poisoned)?.flushes += 1;
        Ok(())
    }

    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        let n = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let r = self.range(offset, n)?;
        let mut inner = self.inner.write().map_err(poisoned)?;
        let first = r.start.div_ceil(BLOCK_SIZE as usize);
        let last = r.end / BLOCK_SIZE as usize;
        if let Some(dst) = inner.data.get_mut(r) {
            dst.fill(0);
        }
        if let Some(h) = inner.holes.get_mut(first..last.max(first)) {
            h.fill(true);
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn extent_at(&self, offset: u64) -> io::Result<Extent> {
        let inner = self.inner.read().map_err(poisoned)?;
        let first = usize::try_from(offset / BLOCK_SIZE).unwrap_or(usize::MAX);
        let Some(&state) = inner.holes.get(first) else {
            return Ok(Extent {
                mapped: true,
                len: 0,
            });
        };
        let run = inner
            .holes
            .get(first..)
            .map(|rest| rest.iter().take_while(|&&h| h == state).count())
            .unwrap_or(0);
        Ok(Extent {
            mapped: !state,
            len: run as u64 * BLOCK_SIZE,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A temporary file that is removed on drop.
    pub(crate) struct TempFile(pub PathBuf);

    impl TempFile {
        pub(crate) fn new(tag: &str, len: u64) -> Self {
            use std::sync::atomic::AtomicU64;
            static N: AtomicU64 = AtomicU64::new(0);
            let name = format!(
                "pxeroot-scsi-{}-{}-{}",
                tag,
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            let f = File::create(&path).unwrap();
            f.set_len(len).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn exercise(b: &dyn Backstore) {
        assert_eq!(b.len(), 64 * BLOCK_SIZE);
        assert_eq!(b.block_size(), 512);
        b.write_at(&[7u8; 1024], 4096).unwrap();
        let mut buf = [0u8; 1024];
        b.read_at(&mut buf, 4096).unwrap();
        assert_eq!(buf, [7u8; 1024]);
        b.flush().unwrap();
        b.punch_hole(4096, 512).unwrap();
        b.read_at(&mut buf, 4096).unwrap();
        assert_eq!(&buf[..512], &[0u8; 512][..]);
        assert_eq!(&buf[512..], &[7u8; 512][..]);
        let mut big = vec![0u8; 1024];
        assert!(b.read_at(&mut big, 63 * BLOCK_SIZE).is_err());
        let e = b.extent_at(0).unwrap();
        assert!(e.len > 0);
    }

    #[test]
    fn memory_backstore() {
        let m = MemBackstore::new(64).unwrap();
        exercise(&m);
        assert_eq!(m.flush_count(), 1);
        let e = m.extent_at(8 * BLOCK_SIZE).unwrap();
        assert_eq!(
            e,
            Extent {
                mapped: false,
                len: 512
            }
        );
        assert!(MemBackstore::new(u64::MAX).is_err());
    }

    #[test]
    fn file_backstore() {
        let t = TempFile::new("bs", 64 * BLOCK_SIZE);
        let f = FileBackstore::open(&t.0, false).unwrap();
        exercise(&f);
        f.write_zeros(0, 3 * BLOCK_SIZE).unwrap();
        let ro = FileBackstore::open(&t.0, true).unwrap();
        assert!(ro.write_at(&[1], 0).is_err());
        assert!(!ro.is_empty());
    }
}
