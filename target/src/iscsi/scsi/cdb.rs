//! CDB decoding (SPC-4 4.2 "The Command Descriptor Block") and transfer-length prediction.
//!
//! The transport must know how much Data-Out a command wants before it has the data, to issue
//! R2Ts, and how much Data-In it may send. [`transfer_for`] answers from the CDB alone, using
//! the same field decoding as the handlers, so the two cannot disagree.
//!
//! CDBs are copied into a zero-padded 16-byte array on entry, so field reads with constant
//! offsets cannot go out of bounds; the helpers still use checked access.

use super::sense::{Sense, INVALID_FIELD_IN_CDB, LBA_OUT_OF_RANGE};

pub(crate) const TEST_UNIT_READY: u8 = 0x00;
pub(crate) const REQUEST_SENSE: u8 = 0x03;
pub(crate) const READ_6: u8 = 0x08;
pub(crate) const WRITE_6: u8 = 0x0A;
pub(crate) const INQUIRY: u8 = 0x12;
pub(crate) const MODE_SELECT_6: u8 = 0x15;
pub(crate) const RESERVE_6: u8 = 0x16;
pub(crate) const RELEASE_6: u8 = 0x17;
pub(crate) const MODE_SENSE_6: u8 = 0x1A;
pub(crate) const START_STOP_UNIT: u8 = 0x1B;
pub(crate) const PREVENT_ALLOW: u8 = 0x1E;
pub(crate) const READ_CAPACITY_10: u8 = 0x25;
pub(crate) const READ_10: u8 = 0x28;
pub(crate) const WRITE_10: u8 = 0x2A;
pub(crate) const WRITE_VERIFY_10: u8 = 0x2E;
pub(crate) const VERIFY_10: u8 = 0x2F;
pub(crate) const PREFETCH_10: u8 = 0x34;
pub(crate) const SYNC_CACHE_10: u8 = 0x35;
pub(crate) const READ_DEFECT_DATA_10: u8 = 0x37;
pub(crate) const WRITE_SAME_10: u8 = 0x41;
pub(crate) const UNMAP: u8 = 0x42;
pub(crate) const MODE_SELECT_10: u8 = 0x55;
pub(crate) const MODE_SENSE_10: u8 = 0x5A;
pub(crate) const PR_IN: u8 = 0x5E;
pub(crate) const PR_OUT: u8 = 0x5F;
pub(crate) const READ_16: u8 = 0x88;
pub(crate) const COMPARE_AND_WRITE: u8 = 0x89;
pub(crate) const WRITE_16: u8 = 0x8A;
pub(crate) const ORWRITE_16: u8 = 0x8B;
pub(crate) const WRITE_VERIFY_16: u8 = 0x8E;
pub(crate) const VERIFY_16: u8 = 0x8F;
pub(crate) const EXTENDED_COPY: u8 = 0x83;
pub(crate) const RECEIVE_COPY_RESULTS: u8 = 0x84;
pub(crate) const PREFETCH_16: u8 = 0x90;
pub(crate) const SYNC_CACHE_16: u8 = 0x91;
pub(crate) const WRITE_SAME_16: u8 = 0x93;
pub(crate) const WRITE_ATOMIC_16: u8 = 0x9C;
pub(crate) const SERVICE_ACTION_IN_16: u8 = 0x9E;
pub(crate) const REPORT_LUNS: u8 = 0xA0;
pub(crate) const MAINTENANCE_IN: u8 = 0xA3;
pub(crate) const READ_12: u8 = 0xA8;
pub(crate) const WRITE_12: u8 = 0xAA;
pub(crate) const WRITE_VERIFY_12: u8 = 0xAE;
pub(crate) const VERIFY_12: u8 = 0xAF;
pub(crate) const READ_DEFECT_DATA_12: u8 = 0xB7;

/// SERVICE ACTION IN(16) service actions.
pub(crate) const SA_READ_CAPACITY_16: u8 = 0x10;
pub(crate) const SA_GET_LBA_STATUS: u8 = 0x12;
/// MAINTENANCE IN service action REPORT SUPPORTED OPERATION CODES.
pub(crate) const SA_REPORT_OPCODES: u8 = 0x0C;
/// MAINTENANCE IN service action REPORT TARGET PORT GROUPS.
pub(crate) const SA_REPORT_TPGS: u8 = 0x0A;

/// Largest READ/WRITE/VERIFY transfer in blocks (32 MiB), reported in VPD page 0xB0 and
/// enforced. libiscsi's WriteSame16.Unmap writes 65536 blocks in one command; Linux caps its
/// own requests far lower (BLK_DEF_MAX_SECTORS) as we report no optimal transfer length.
pub const MAX_TRANSFER_BLOCKS: u32 = 65536;
/// Largest WRITE ATOMIC (16), in blocks (VPD 0xB0 MAXIMUM ATOMIC TRANSFER LENGTH, 4 MiB). The
/// whole LUN waits while one runs, so it is kept well below [`MAX_TRANSFER_BLOCKS`].
pub(crate) const MAX_ATOMIC_BLOCKS: u32 = 8192;
/// Largest COMPARE AND WRITE, in blocks (VPD 0xB0 MAXIMUM COMPARE AND WRITE LENGTH).
pub(crate) const MAX_CAW_BLOCKS: u32 = 1;
/// Largest parameter list we accept (UNMAP, MODE SELECT, PR OUT).
pub(crate) const MAX_PARAM_LIST: u32 = 65535;

/// A CDB, zero-padded to 16 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cdb(pub [u8; 16]);

impl Cdb {
    /// Copies up to 16 bytes of `raw`.
    pub(crate) fn new(raw: &[u8]) -> Self {
        let mut c = [0u8; 16];
        let n = raw.len().min(16);
        if let (Some(dst), Some(src)) = (c.get_mut(..n), raw.get(..n)) {
            dst.copy_from_slice(src);
        }
        Self(c)
    }

    pub(crate) fn opcode(&self) -> u8 {
        self.0[0]
    }

    pub(crate) fn b(&self, i: usize) -> u8 {
        self.0.get(i).copied().unwrap_or(0)
    }

    pub(crate) fn be16(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.b(i), self.b(i + 1)])
    }

    pub(crate) fn be32(&self, i: usize) -> u32 {
        u32::from_be_bytes([self.b(i), self.b(i + 1), self.b(i + 2), self.b(i + 3)])
    }

    pub(crate) fn be64(&self, i: usize) -> u64 {
        (u64::from(self.be32(i)) << 32) | u64::from(self.be32(i + 4))
    }

    /// Service action in byte 1 (bits 4..0).
    pub(crate) fn service_action(&self) -> u8 {
        self.b(1) & 0x1F
    }

    /// LBA and block count of a block-addressed command, or `None` for other opcodes.
    pub(crate) fn lba_range(&self) -> Option<(u64, u32)> {
        Some(match self.opcode() {
            READ_6 | WRITE_6 => {
                let lba = (u64::from(self.b(1) & 0x1F) << 16) | u64::from(self.be16(2));
                let n = match self.b(4) {
                    0 => 256,
                    n => u32::from(n),
                };
                (lba, n)
            }
            READ_10 | WRITE_10 | WRITE_VERIFY_10 | VERIFY_10 | SYNC_CACHE_10 | WRITE_SAME_10
            | PREFETCH_10 => (u64::from(self.be32(2)), u32::from(self.be16(7))),
            READ_12 | WRITE_12 | WRITE_VERIFY_12 | VERIFY_12 => {
                (u64::from(self.be32(2)), self.be32(6))
            }
            READ_16 | WRITE_16 | WRITE_VERIFY_16 | VERIFY_16 | SYNC_CACHE_16 | WRITE_SAME_16
            | PREFETCH_16 | ORWRITE_16 => (self.be64(2), self.be32(10)),
            COMPARE_AND_WRITE => (self.be64(2), u32::from(self.b(13))),
            WRITE_ATOMIC_16 => (self.be64(2), u32::from(self.be16(12))),
            _ => return None,
        })
    }

    /// BYTCHK of VERIFY / WRITE AND VERIFY (byte 1 bits 2..1).
    pub(crate) fn bytchk(&self) -> u8 {
        (self.b(1) >> 1) & 0x03
    }

    /// FUA bit of READ/WRITE(10/12/16), WRITE AND VERIFY and COMPARE AND WRITE.
    pub(crate) fn fua(&self) -> bool {
        !matches!(self.opcode(), READ_6 | WRITE_6) && self.b(1) & 0x08 != 0
    }

    /// RDPROTECT / WRPROTECT / VRPROTECT (byte 1 bits 7..5) of 10/12/16-byte commands.
    pub(crate) fn protect(&self) -> u8 {
        match self.opcode() {
            READ_6 | WRITE_6 | SYNC_CACHE_10 | SYNC_CACHE_16 | PREFETCH_10 | PREFETCH_16 => 0,
            _ => self.b(1) >> 5,
        }
    }
}

/// Checks that `blocks` blocks at `lba` fit in a LUN of `capacity` blocks (SBC-3 4.5).
pub(crate) fn check_range(lba: u64, blocks: u64, capacity: u64) -> Result<(), Sense> {
    match lba.checked_add(blocks) {
        Some(end) if lba <= capacity && end <= capacity => Ok(()),
        _ => Err(LBA_OUT_OF_RANGE),
    }
}

/// Rejects transfers above [`MAX_TRANSFER_BLOCKS`].
pub(crate) fn check_transfer_len(blocks: u32) -> Result<(), Sense> {
    if blocks > MAX_TRANSFER_BLOCKS {
        Err(INVALID_FIELD_IN_CDB)
    } else {
        Ok(())
    }
}

/// Byte counts a CDB expects to move, predicted from the CDB alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transfer {
    /// Bytes of Data-Out the command consumes (0 if none, or if the CDB will be rejected
    /// before any data is looked at, for example a transfer above [`MAX_TRANSFER_BLOCKS`]).
    pub data_out: u32,
    /// Most bytes of Data-In the command can return (allocation length or blocks × 512).
    pub data_in: u32,
    /// The Data-Out must be exactly `data_out` bytes (COMPARE AND WRITE, WRITE SAME): when the
    /// initiator's Expected Data Transfer Length differs, the transport should answer CHECK
    /// CONDITION, ILLEGAL REQUEST, INVALID FIELD IN CDB ([`super::sense::INVALID_FIELD_IN_CDB`])
    /// without executing. For other commands a mismatch is a residual (over/underflow).
    pub exact: bool,
}

const fn blocks_bytes(blocks: u32) -> u32 {
    if blocks > MAX_TRANSFER_BLOCKS {
        0
    } else {
        blocks * 512
    }
}

/// Predicts the Data-Out and Data-In sizes of `cdb`.
pub(crate) fn transfer_for(cdb: &Cdb) -> Transfer {
    let blocks = cdb.lba_range().map(|(_, n)| n).unwrap_or(0);
    let out = |n: u32| Transfer {
        data_out: n,
        data_in: 0,
        exact: false,
    };
    let exact = |n: u32| Transfer {
        data_out: n,
        data_in: 0,
        exact: true,
    };
    let inn = |n: u32| Transfer {
        data_out: 0,
        data_in: n,
        exact: false,
    };
    let param = |n: u32| out(if n > MAX_PARAM_LIST { 0 } else { n });
    match cdb.opcode() {
        READ_6 | READ_10 | READ_12 | READ_16 => inn(blocks_bytes(blocks)),
        WRITE_6 | WRITE_10 | WRITE_12 | WRITE_16 | WRITE_VERIFY_10 | WRITE_VERIFY_12
        | WRITE_VERIFY_16 | ORWRITE_16 | WRITE_ATOMIC_16 => out(blocks_bytes(blocks)),
        VERIFY_10 | VERIFY_12 | VERIFY_16 => match cdb.bytchk() {
            1 => out(blocks_bytes(blocks)),
            3 if blocks <= MAX_TRANSFER_BLOCKS => out(512),
            _ => Transfer::default(),
        },
        COMPARE_AND_WRITE if blocks <= MAX_CAW_BLOCKS => exact(blocks * 1024),
        COMPARE_AND_WRITE => exact(0),
        WRITE_SAME_10 => exact(512),
        WRITE_SAME_16 if cdb.b(1) & 0x01 == 0 => exact(512),
        WRITE_SAME_16 => exact(0),
        UNMAP | MODE_SELECT_10 => param(u32::from(cdb.be16(7))),
        MODE_SELECT_6 => param(u32::from(cdb.b(4))),
        PR_OUT => param(cdb.be32(5)),
        EXTENDED_COPY => param(cdb.be32(10)),
        INQUIRY => inn(u32::from(cdb.be16(3))),
        MODE_SENSE_6 | REQUEST_SENSE => inn(u32::from(cdb.b(4))),
        MODE_SENSE_10 | PR_IN | READ_DEFECT_DATA_10 => inn(u32::from(cdb.be16(7))),
        READ_CAPACITY_10 => inn(8),
        SERVICE_ACTION_IN_16 | RECEIVE_COPY_RESULTS => inn(cdb.be32(10)),
        REPORT_LUNS | MAINTENANCE_IN | READ_DEFECT_DATA_12 => inn(cdb.be32(6)),
        _ => Transfer::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_decoding() {
        let c = Cdb::new(&[READ_6, 0x1F, 0xFF, 0xFE, 0]);
        assert_eq!(c.lba_range(), Some((0x1F_FFFE, 256)));
        let c = Cdb::new(&[READ_16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 1, 0, 0, 0]);
        assert_eq!(c.lba_range(), Some((0x0102_0304_0506_0708, 256)));
        assert_eq!(transfer_for(&c).data_in, 256 * 512);
        let c = Cdb::new(&[WRITE_10, 0x08, 0, 0, 0, 9, 0, 0, 2, 0]);
        assert!(c.fua());
        assert_eq!(transfer_for(&c).data_out, 1024);
        let c = Cdb::new(&[WRITE_12, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(transfer_for(&c), Transfer::default());
        assert_eq!(Cdb::new(&[INQUIRY]).lba_range(), None);
        assert!(check_range(10, 0, 10).is_ok());
        assert!(check_range(11, 0, 10).is_err());
        assert!(check_range(u64::MAX, 2, 10).is_err());
        assert!(check_transfer_len(MAX_TRANSFER_BLOCKS + 1).is_err());
        let c = Cdb::new(&[0u8; 40]);
        assert_eq!(c.be64(12), 0);
    }
}
