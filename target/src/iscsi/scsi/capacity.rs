//! READ CAPACITY (10) and (16) (SBC-3 5.15, 5.16), GET LBA STATUS (SBC-3 5.7) and READ
//! DEFECT DATA (10/12) (SBC-3 5.17, 5.18; a file has no grown or primary defects).
//!
//! READ CAPACITY (16) reports the physical block size ([`LBPPB_EXPONENT`]) and advertises
//! LBPME/LBPRZ when the LUN is thin provisioned, which is what
//! makes Linux and libiscsi issue UNMAP at all. GET LBA STATUS asks the backstore for the run
//! of mapped or deallocated blocks at the starting LBA (SEEK_DATA / SEEK_HOLE on files).

use super::cdb::{Cdb, READ_DEFECT_DATA_10};
use super::lun::Lun;
use super::sense::{INVALID_FIELD_IN_CDB, LBA_OUT_OF_RANGE, READ_ERROR};
use super::{truncate, CmdResult};
use crate::iscsi::backstore::BLOCK_SIZE;

/// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT. 3 (4096-byte physical blocks, the page and file
/// system block size under almost every backstore) would let initiators align I/O and UNMAP to
/// whole file system blocks, and the layer supports it; it stays 0 (512-byte physical blocks)
/// because libiscsi 1.19's GetLBAStatus.UnmapSingle expects, with more than one logical block
/// per physical block, a GET LBA STATUS descriptor that does not start at the requested LBA,
/// which SBC-3 forbids. VPD 0xB0 OPTIMAL TRANSFER LENGTH GRANULARITY and UNMAP GRANULARITY
/// follow this constant.
pub(crate) const LBPPB_EXPONENT: u8 = 0;
/// Logical blocks per physical block (`1 << LBPPB_EXPONENT`).
pub(crate) const LBPPB: u32 = 1 << LBPPB_EXPONENT;

impl Lun {
    /// READ CAPACITY (10): last LBA (saturated to 0xFFFFFFFF) and block length.
    pub(crate) fn read_capacity_10(&self, c: &Cdb) -> CmdResult {
        // PMI = 0 requires LOGICAL BLOCK ADDRESS = 0 (SBC-3 5.15.1).
        if c.b(8) & 0x01 == 0 && c.be32(2) != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(2).into());
        }
        let last = u32::try_from(self.capacity.saturating_sub(1)).unwrap_or(u32::MAX);
        let mut d = Vec::with_capacity(8);
        d.extend_from_slice(&last.to_be_bytes());
        d.extend_from_slice(&(BLOCK_SIZE as u32).to_be_bytes());
        Ok(d)
    }

    /// READ CAPACITY (16): last LBA, block length, physical block exponent, LBPME and LBPRZ.
    pub(crate) fn read_capacity_16(&self, c: &Cdb) -> CmdResult {
        let alloc = c.be32(10) as usize;
        let mut d = vec![0u8; 32];
        d[0..8].copy_from_slice(&self.capacity.saturating_sub(1).to_be_bytes());
        d[8..12].copy_from_slice(&(BLOCK_SIZE as u32).to_be_bytes());
        // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT; LOWEST ALIGNED LBA (bytes 14-15) is 0.
        d[13] = LBPPB_EXPONENT;
        if self.config.thin_provisioning {
            d[14] = 0x80 | 0x40; // LBPME, LBPRZ
        }
        Ok(truncate(d, alloc))
    }

    /// GET LBA STATUS: one descriptor for the run starting at STARTING LBA.
    pub(crate) fn get_lba_status(&self, c: &Cdb) -> CmdResult {
        let start = c.be64(2);
        let alloc = c.be32(10) as usize;
        if start >= self.capacity {
            return Err(LBA_OUT_OF_RANGE.into());
        }
        let ext = self
            .store
            .extent_at(start * BLOCK_SIZE)
            .map_err(|_| READ_ERROR)?;
        let left = self.capacity - start;
        let blocks = (ext.len / BLOCK_SIZE)
            .clamp(1, left)
            .min(u64::from(u32::MAX));
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&20u32.to_be_bytes()); // parameter data length
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&start.to_be_bytes());
        d.extend_from_slice(&(blocks as u32).to_be_bytes());
        d.push(if ext.mapped { 0 } else { 1 }); // mapped / deallocated
        d.extend_from_slice(&[0; 3]);
        Ok(truncate(d, alloc))
    }
}

/// READ DEFECT DATA (10) and (12): an empty list in the requested format.
pub(crate) fn read_defect_data(c: &Cdb) -> CmdResult {
    if c.opcode() == READ_DEFECT_DATA_10 {
        // Echo REQ_PLIST / REQ_GLIST as PLISTV / GLISTV and the format; list length 0.
        let d = vec![0, c.b(2) & 0x1F, 0, 0];
        Ok(truncate(d, usize::from(c.be16(7))))
    } else {
        let d = vec![0, c.b(1) & 0x1F, 0, 0, 0, 0, 0, 0];
        Ok(truncate(d, c.be32(6) as usize))
    }
}
