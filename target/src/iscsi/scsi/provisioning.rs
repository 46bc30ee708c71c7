//! Logical block provisioning: WRITE SAME (10/16) (SBC-3 5.42, 5.43) and UNMAP (SBC-3 5.28).
//!
//! UNMAP and WRITE SAME with the UNMAP bit punch holes in the backstore (on a thin LUN the
//! UNMAP bit deallocates whatever the data block holds, as LIO and tgt do, and the blocks then
//! read back as zeros: LBPRZ = 1). On a thick LUN the UNMAP bit is ignored and the data is
//! written. ANCHOR is not supported (ANC_SUP = 0).

use super::cdb::{check_range, Cdb, WRITE_SAME_16};
use super::inquiry::{MAX_UNMAP_BLOCKS, MAX_UNMAP_DESCRIPTORS, MAX_WRITE_SAME_BLOCKS};
use super::lun::Lun;
use super::rw::write_err;
use super::sense::{
    INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_IU, INVALID_FIELD_IN_PARAM, INVALID_OPCODE,
    LBA_OUT_OF_RANGE, PARAM_LIST_LENGTH, WRITE_PROTECTED,
};
use super::CmdResult;
use crate::iscsi::backstore::BLOCK_SIZE;

/// Blocks written per `pwrite` when replicating a WRITE SAME pattern (1 MiB).
const WRITE_SAME_CHUNK_BLOCKS: u64 = 2048;

impl Lun {
    /// WRITE SAME (10) and (16), including UNMAP and NDOB.
    pub(crate) fn write_same(&self, c: &Cdb, data: &[u8]) -> CmdResult {
        let (lba, n) = c.lba_range().ok_or(INVALID_FIELD_IN_CDB)?;
        let flags = c.b(1);
        let ws16 = c.opcode() == WRITE_SAME_16;
        // WRPROTECT, ANCHOR, PBDATA / LBDATA.
        if c.protect() != 0 || flags & 0x16 != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let unmap = flags & 0x08 != 0;
        let ndob = ws16 && flags & 0x01 != 0;
        let len_byte = if ws16 { 10 } else { 7 };
        if self.write_protected() {
            return Err(WRITE_PROTECTED.into());
        }
        // NUMBER OF LOGICAL BLOCKS = 0 means "to the end of the medium" (WSNZ = 0).
        let n = match n {
            0 if lba > self.capacity => return Err(LBA_OUT_OF_RANGE.into()),
            0 => self.capacity - lba,
            n => u64::from(n),
        };
        if n > MAX_WRITE_SAME_BLOCKS {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(len_byte).into());
        }
        check_range(lba, n, self.capacity)?;
        let bs = BLOCK_SIZE as usize;
        let zeros = [0u8; BLOCK_SIZE as usize];
        let block = match data.get(..bs) {
            _ if ndob => &zeros[..],
            Some(b) if data.len() == bs => b,
            _ => return Err(INVALID_FIELD_IN_IU.into()),
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        let _io = self.io_shared();
        if unmap && self.config.thin_provisioning {
            self.store
                .punch_hole(lba * BLOCK_SIZE, n * BLOCK_SIZE)
                .map_err(write_err)?;
        } else {
            let chunk_blocks = n.min(WRITE_SAME_CHUNK_BLOCKS);
            let chunk = block.repeat(chunk_blocks as usize);
            let mut done = 0;
            while done < n {
                let k = (n - done).min(chunk_blocks) as usize;
                let part = chunk.get(..k * bs).ok_or(INVALID_FIELD_IN_CDB)?;
                self.store
                    .write_at(part, (lba + done) * BLOCK_SIZE)
                    .map_err(write_err)?;
                done += k as u64;
            }
        }
        if !self.write_cache_enabled() {
            self.store.flush().map_err(write_err)?;
        }
        Ok(Vec::new())
    }

    /// UNMAP: validates every block descriptor, then deallocates them.
    pub(crate) fn unmap(&self, c: &Cdb, data: &[u8]) -> CmdResult {
        if !self.config.thin_provisioning {
            return Err(INVALID_OPCODE.into());
        }
        if c.b(1) & 0x01 != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        if self.write_protected() {
            return Err(WRITE_PROTECTED.into());
        }
        let plen = usize::from(c.be16(7));
        if plen == 0 {
            return Ok(Vec::new());
        }
        if plen < 8 {
            return Err(PARAM_LIST_LENGTH.into());
        }
        let p = data.get(..plen).ok_or(INVALID_FIELD_IN_IU)?;
        let bdl = usize::from(u16::from_be_bytes([p[2], p[3]])).min(plen - 8);
        let count = bdl / 16;
        if count as u64 > u64::from(MAX_UNMAP_DESCRIPTORS) {
            return Err(INVALID_FIELD_IN_PARAM.in_param(2).into());
        }
        let mut ranges = Vec::with_capacity(count);
        for (i, d) in p[8..8 + count * 16].chunks_exact(16).enumerate() {
            let mut l = [0u8; 8];
            l.copy_from_slice(&d[0..8]);
            let lba = u64::from_be_bytes(l);
            let blocks = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
            if blocks > MAX_UNMAP_BLOCKS {
                return Err(INVALID_FIELD_IN_PARAM
                    .in_param((8 + i * 16 + 8) as u16)
                    .into());
            }
            check_range(lba, u64::from(blocks), self.capacity)?;
            ranges.push((lba, u64::from(blocks)));
        }
        let _io = self.io_shared();
        for (lba, blocks) in ranges {
            self.store
                .punch_hole(lba * BLOCK_SIZE, blocks * BLOCK_SIZE)
                .map_err(write_err)?;
        }
        Ok(Vec::new())
    }
}
