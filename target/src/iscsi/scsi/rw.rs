//! READ (6/10/12/16), WRITE (6/10/12/16), WRITE AND VERIFY (10/12/16), VERIFY (10/12/16),
//! COMPARE AND WRITE, ORWRITE (16) (SBC-3 5.8-5.34 for each opcode; 4.18 for the write cache and
//! FUA) and WRITE ATOMIC (16) (SBC-4 5.48, 4.29 atomic writes).
//!
//! Atomicity: every command that reads or writes blocks of a LUN holds its medium lock
//! ([`Lun::io_shared`]) for the duration of its I/O, and WRITE ATOMIC (16), COMPARE AND WRITE
//! and ORWRITE hold it exclusively ([`Lun::io_exclusive`]). So no command on the same LUN
//! (through any connection) sees part of an atomic write, and none of their writes lands between
//! the read and the write of a COMPARE AND WRITE or ORWRITE. This does NOT make WRITE ATOMIC
//! atomic across a crash or power loss: the data goes out with ordinary `pwrite`s, and a crash
//! in the middle can leave the range part old and part new on the backing file. Nor does it
//! cover other writers of the backing file (another LUN or process opening the same path).
//!
//! Durability: a write returns GOOD after `pwrite` when the write cache is on (WCE = 1), and
//! after `pwrite` + `fdatasync` when the command has FUA set, is a WRITE AND VERIFY, or the LUN
//! is write-through (WCE = 0). No protection information is supported, so any non-zero
//! RDPROTECT / WRPROTECT / VRPROTECT is an invalid field in the CDB.

use std::io;

use super::cdb::{self, check_range, check_transfer_len, Cdb, MAX_ATOMIC_BLOCKS, MAX_CAW_BLOCKS};
use super::lun::Lun;
use super::sense::{
    Sense, INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_IU, MISCOMPARE, READ_ERROR,
    SPACE_ALLOCATION_FAILED, WRITE_ERROR, WRITE_PROTECTED,
};
use super::CmdResult;
use crate::iscsi::backstore::BLOCK_SIZE;

/// Maps a backstore write error to sense data; a full file system is not a medium error.
pub(crate) fn write_err(e: io::Error) -> Sense {
    if e.raw_os_error() == Some(nix::libc::ENOSPC) || e.kind() == io::ErrorKind::StorageFull {
        SPACE_ALLOCATION_FAILED
    } else {
        WRITE_ERROR
    }
}

fn read_err(_: io::Error) -> Sense {
    READ_ERROR
}

/// Offset of the first differing byte, if any.
fn first_mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

fn miscompare_at(offset: usize) -> Sense {
    MISCOMPARE.with_information(u32::try_from(offset).unwrap_or(u32::MAX))
}

impl Lun {
    /// Common checks of a block command: no protection, in range, write protection.
    /// Returns (LBA, block count).
    fn block_command(&self, c: &Cdb, writes: bool) -> Result<(u64, u32), Sense> {
        let (lba, n) = c.lba_range().ok_or(INVALID_FIELD_IN_CDB)?;
        if c.protect() != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1));
        }
        if writes && self.write_protected() {
            return Err(WRITE_PROTECTED);
        }
        check_range(lba, u64::from(n), self.capacity)?;
        Ok((lba, n))
    }

    /// Reads `n` blocks at `lba` into a new buffer, holding the medium lock shared.
    pub(crate) fn read_blocks(&self, lba: u64, n: u32) -> Result<Vec<u8>, Sense> {
        let _io = self.io_shared();
        self.read_locked(lba, n)
    }

    /// Writes `buf` at `lba` holding the medium lock shared, then flushes when `fua` or when
    /// the LUN is write-through.
    pub(crate) fn write_blocks(&self, lba: u64, buf: &[u8], fua: bool) -> Result<(), Sense> {
        let _io = self.io_shared();
        self.write_locked(lba, buf, fua)
    }

    /// [`Self::read_blocks`] for a caller that already holds the medium lock.
    fn read_locked(&self, lba: u64, n: u32) -> Result<Vec<u8>, Sense> {
        let mut buf = vec![0u8; n as usize * BLOCK_SIZE as usize];
        self.store
            .read_at(&mut buf, lba * BLOCK_SIZE)
            .map_err(read_err)?;
        Ok(buf)
    }

    /// [`Self::write_blocks`] for a caller that already holds the medium lock.
    fn write_locked(&self, lba: u64, buf: &[u8], fua: bool) -> Result<(), Sense> {
        self.store
            .write_at(buf, lba * BLOCK_SIZE)
            .map_err(write_err)?;
        if fua || !self.write_cache_enabled() {
            self.store.flush().map_err(write_err)?;
        }
        Ok(())
    }

    /// READ (6/10/12/16).
    pub(crate) fn read(&self, c: &Cdb) -> CmdResult {
        let (lba, n) = self.block_command(c, false)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        check_transfer_len(n)?;
        Ok(self.read_blocks(lba, n)?)
    }

    /// WRITE (6/10/12/16) and WRITE AND VERIFY (10/12/16).
    pub(crate) fn write(&self, c: &Cdb, data: &[u8]) -> CmdResult {
        let (lba, n) = self.block_command(c, true)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        check_transfer_len(n)?;
        let len = n as usize * BLOCK_SIZE as usize;
        let buf = data.get(..len).ok_or(INVALID_FIELD_IN_IU)?;
        let verify = matches!(
            c.opcode(),
            cdb::WRITE_VERIFY_10 | cdb::WRITE_VERIFY_12 | cdb::WRITE_VERIFY_16
        );
        self.write_blocks(lba, buf, c.fua() || verify)?;
        Ok(Vec::new())
    }

    /// VERIFY (10/12/16): BYTCHK 0 checks the medium can be read, 1 compares the Data-Out
    /// buffer, 3 compares one Data-Out block against every block.
    pub(crate) fn verify(&self, c: &Cdb, data: &[u8]) -> CmdResult {
        let (lba, n) = self.block_command(c, false)?;
        let bytchk = c.bytchk();
        if bytchk == 2 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        check_transfer_len(n)?;
        let medium = self.read_blocks(lba, n)?;
        let bs = BLOCK_SIZE as usize;
        let mismatch = match bytchk {
            0 => None,
            1 => {
                let want = data.get(..medium.len()).ok_or(INVALID_FIELD_IN_IU)?;
                first_mismatch(&medium, want)
            }
            _ => {
                let block = data.get(..bs).ok_or(INVALID_FIELD_IN_IU)?;
                medium
                    .chunks(bs)
                    .enumerate()
                    .find_map(|(i, m)| first_mismatch(m, block).map(|o| i * bs + o))
            }
        };
        match mismatch {
            Some(off) => Err(miscompare_at(off).into()),
            None => Ok(Vec::new()),
        }
    }

    /// COMPARE AND WRITE: compares the first half of Data-Out with the medium and, if equal,
    /// writes the second half, holding the medium lock exclusively throughout.
    pub(crate) fn compare_and_write(&self, c: &Cdb, data: &[u8]) -> CmdResult {
        let (lba, n) = c.lba_range().ok_or(INVALID_FIELD_IN_CDB)?;
        if n > MAX_CAW_BLOCKS {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(13).into());
        }
        let (lba, n) = self.block_command(c, true).map(|_| (lba, n))?;
        if n == 0 {
            // Nothing to compare; Data-Out for 0 blocks means the CDB is not what was meant
            // (e.g. 256 blocks truncated to the 8-bit field).
            if !data.is_empty() {
                return Err(INVALID_FIELD_IN_CDB.in_cdb(13).into());
            }
            return Ok(Vec::new());
        }
        let len = n as usize * BLOCK_SIZE as usize;
        if data.len() != 2 * len {
            return Err(INVALID_FIELD_IN_IU.into());
        }
        let (verify, write) = data.split_at(len);
        let _io = self.io_exclusive();
        let medium = self.read_locked(lba, n)?;
        if let Some(off) = first_mismatch(&medium, verify) {
            return Err(miscompare_at(off).into());
        }
        self.write_locked(lba, write, c.fua())?;
        Ok(Vec::new())
    }

    /// ORWRITE (16) (SBC-3 5.10): ORs the Data-Out into the medium, holding the medium lock
    /// exclusively so the read-modify-write is atomic with respect to every other command.
    pub(crate) fn orwrite(&self, c: &Cdb, data: &[u8]) -> CmdResult {
        let (lba, n) = self.block_command(c, true)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        check_transfer_len(n)?;
        let len = n as usize * BLOCK_SIZE as usize;
        let src = data.get(..len).ok_or(INVALID_FIELD_IN_IU)?;
        let _io = self.io_exclusive();
        let mut medium = self.read_locked(lba, n)?;
        medium.iter_mut().zip(src).for_each(|(m, s)| *m |= s);
        self.write_locked(lba, &medium, c.fua())?;
        Ok(Vec::new())
    }

    /// WRITE ATOMIC (16) (SBC-4 5.48): a WRITE (16) that holds the medium lock exclusively, so
    /// other commands on this LUN see all of it or none of it (not crash atomic; see above).
    /// No alignment or granularity restriction; atomic boundaries are not supported.
    pub(crate) fn write_atomic(&self, c: &Cdb, data: &[u8]) -> CmdResult {
        let (lba, n) = self.block_command(c, true)?;
        if c.be16(10) != 0 {
            // ATOMIC BOUNDARY: VPD 0xB0 MAXIMUM ATOMIC BOUNDARY SIZE is 0.
            return Err(INVALID_FIELD_IN_CDB.in_cdb(10).into());
        }
        if n > MAX_ATOMIC_BLOCKS {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(12).into());
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let len = n as usize * BLOCK_SIZE as usize;
        let buf = data.get(..len).ok_or(INVALID_FIELD_IN_IU)?;
        let _io = self.io_exclusive();
        self.write_locked(lba, buf, c.fua())?;
        Ok(Vec::new())
    }
}
