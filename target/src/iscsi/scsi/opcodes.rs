//! REPORT SUPPORTED OPERATION CODES (SPC-4 6.35), with CDB usage data and timeouts.
//!
//! The table below is the single list of commands this target implements; the dispatcher in
//! `lun.rs` must agree with it (a unit test checks that every entry dispatches to something
//! other than INVALID COMMAND OPERATION CODE). Usage bits are set for the fields we decode.

use super::cdb::{self, Cdb};
use super::lun::Lun;
use super::sense::INVALID_FIELD_IN_CDB;
use super::{truncate, CmdResult};

/// One supported command: opcode, service action and CDB usage data (its length is the CDB
/// length).
pub(crate) struct OpInfo {
    pub(crate) op: u8,
    pub(crate) sa: Option<u16>,
    pub(crate) usage: &'static [u8],
}

const fn op(op: u8, usage: &'static [u8]) -> OpInfo {
    OpInfo {
        op,
        sa: None,
        usage,
    }
}

const fn sa(op: u8, sa: u16, usage: &'static [u8]) -> OpInfo {
    OpInfo {
        op,
        sa: Some(sa),
        usage,
    }
}

const F: u8 = 0xFF;

#[rustfmt::skip]
pub(crate) const SUPPORTED: &[OpInfo] = &[
    op(cdb::TEST_UNIT_READY, &[0x00, 0, 0, 0, 0, 0]),
    op(cdb::REQUEST_SENSE, &[0x03, 0x01, 0, 0, F, 0]),
    op(cdb::READ_6, &[0x08, 0x1F, F, F, F, 0]),
    op(cdb::WRITE_6, &[0x0A, 0x1F, F, F, F, 0]),
    op(cdb::INQUIRY, &[0x12, 0x01, F, F, F, 0]),
    op(cdb::MODE_SELECT_6, &[0x15, 0x11, 0, 0, F, 0]),
    op(cdb::RESERVE_6, &[0x16, 0, 0, 0, 0, 0]),
    op(cdb::RELEASE_6, &[0x17, 0, 0, 0, 0, 0]),
    op(cdb::MODE_SENSE_6, &[0x1A, 0x08, F, F, F, 0]),
    op(cdb::START_STOP_UNIT, &[0x1B, 0x01, 0, 0x0F, 0xF7, 0]),
    op(cdb::PREVENT_ALLOW, &[0x1E, 0, 0, 0, 0x03, 0]),
    op(cdb::READ_CAPACITY_10, &[0x25, 0, F, F, F, F, 0, 0, 0x01, 0]),
    op(cdb::READ_10, &[0x28, 0x18, F, F, F, F, 0, F, F, 0]),
    op(cdb::WRITE_10, &[0x2A, 0x18, F, F, F, F, 0, F, F, 0]),
    op(cdb::WRITE_VERIFY_10, &[0x2E, 0x12, F, F, F, F, 0, F, F, 0]),
    op(cdb::VERIFY_10, &[0x2F, 0x16, F, F, F, F, 0, F, F, 0]),
    op(cdb::PREFETCH_10, &[0x34, 0x02, F, F, F, F, 0, F, F, 0]),
    op(cdb::SYNC_CACHE_10, &[0x35, 0x02, F, F, F, F, 0, F, F, 0]),
    op(cdb::READ_DEFECT_DATA_10, &[0x37, 0, 0x1F, 0, 0, 0, 0, F, F, 0]),
    op(cdb::WRITE_SAME_10, &[0x41, 0x08, F, F, F, F, 0, F, F, 0]),
    op(cdb::UNMAP, &[0x42, 0, 0, 0, 0, 0, 0, F, F, 0]),
    op(cdb::MODE_SELECT_10, &[0x55, 0x11, 0, 0, 0, 0, 0, F, F, 0]),
    op(cdb::MODE_SENSE_10, &[0x5A, 0x18, F, F, 0, 0, 0, F, F, 0]),
    sa(cdb::PR_IN, 0, &[0x5E, 0x1F, 0, 0, 0, 0, 0, F, F, 0]),
    sa(cdb::PR_IN, 1, &[0x5E, 0x1F, 0, 0, 0, 0, 0, F, F, 0]),
    sa(cdb::PR_IN, 2, &[0x5E, 0x1F, 0, 0, 0, 0, 0, F, F, 0]),
    sa(cdb::PR_IN, 3, &[0x5E, 0x1F, 0, 0, 0, 0, 0, F, F, 0]),
    sa(cdb::PR_OUT, 0, &[0x5F, 0x1F, F, 0, 0, F, F, F, F, 0]),
    sa(cdb::PR_OUT, 1, &[0x5F, 0x1F, F, 0, 0, F, F, F, F, 0]),
    sa(cdb::PR_OUT, 2, &[0x5F, 0x1F, F, 0, 0, F, F, F, F, 0]),
    sa(cdb::PR_OUT, 3, &[0x5F, 0x1F, F, 0, 0, F, F, F, F, 0]),
    sa(cdb::PR_OUT, 4, &[0x5F, 0x1F, F, 0, 0, F, F, F, F, 0]),
    sa(cdb::PR_OUT, 5, &[0x5F, 0x1F, F, 0, 0, F, F, F, F, 0]),
    sa(cdb::PR_OUT, 6, &[0x5F, 0x1F, F, 0, 0, F, F, F, F, 0]),
    sa(cdb::EXTENDED_COPY, 0x00, &[0x83, 0x1F, 0, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0]),
    sa(cdb::RECEIVE_COPY_RESULTS, 0x00, &[0x84, 0x1F, F, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0]),
    sa(cdb::RECEIVE_COPY_RESULTS, 0x01, &[0x84, 0x1F, F, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0]),
    sa(cdb::RECEIVE_COPY_RESULTS, 0x03, &[0x84, 0x1F, 0, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0]),
    sa(cdb::RECEIVE_COPY_RESULTS, 0x04, &[0x84, 0x1F, F, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0]),
    op(cdb::READ_16, &[0x88, 0x18, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::COMPARE_AND_WRITE, &[0x89, 0x18, F, F, F, F, F, F, F, F, 0, 0, 0, F, 0, 0]),
    op(cdb::WRITE_16, &[0x8A, 0x18, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::ORWRITE_16, &[0x8B, 0x18, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::WRITE_VERIFY_16, &[0x8E, 0x12, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::VERIFY_16, &[0x8F, 0x16, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::PREFETCH_16, &[0x90, 0x02, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::SYNC_CACHE_16, &[0x91, 0x02, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::WRITE_SAME_16, &[0x93, 0x09, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::WRITE_ATOMIC_16, &[0x9C, 0x18, F, F, F, F, F, F, F, F, 0, 0, F, F, 0, 0]),
    sa(cdb::SERVICE_ACTION_IN_16, 0x10, &[0x9E, 0x1F, 0, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0]),
    sa(cdb::SERVICE_ACTION_IN_16, 0x12, &[0x9E, 0x1F, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::REPORT_LUNS, &[0xA0, 0, F, 0, 0, 0, F, F, F, F, 0, 0]),
    sa(cdb::MAINTENANCE_IN, 0x0A, &[0xA3, 0xFF, 0, 0, 0, 0, F, F, F, F, 0, 0]),
    sa(cdb::MAINTENANCE_IN, 0x0C, &[0xA3, 0x1F, 0x87, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::READ_12, &[0xA8, 0x18, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::WRITE_12, &[0xAA, 0x18, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::WRITE_VERIFY_12, &[0xAE, 0x12, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::VERIFY_12, &[0xAF, 0x16, F, F, F, F, F, F, F, F, 0, 0]),
    op(cdb::READ_DEFECT_DATA_12, &[0xB7, 0x1F, 0, 0, 0, 0, F, F, F, F, 0, 0]),
];

/// Recommended command timeout reported with RCTD, in seconds.
const RECOMMENDED_TIMEOUT: u32 = 30;

fn timeouts() -> [u8; 12] {
    let mut t = [0u8; 12];
    t[1] = 0x0A;
    t[8..12].copy_from_slice(&RECOMMENDED_TIMEOUT.to_be_bytes());
    t
}

impl Lun {
    fn supported(&self) -> impl Iterator<Item = &'static OpInfo> + '_ {
        SUPPORTED
            .iter()
            .filter(|i| i.op != cdb::UNMAP || self.config.thin_provisioning)
    }

    /// REPORT SUPPORTED OPERATION CODES, reporting options 0 (all), 1, 2 and 3 (one command).
    pub(crate) fn report_opcodes(&self, c: &Cdb) -> CmdResult {
        let rctd = c.b(2) & 0x80 != 0;
        let options = c.b(2) & 0x07;
        let (req_op, req_sa) = (c.b(3), c.be16(4));
        let alloc = c.be32(6) as usize;
        let mut d = Vec::with_capacity(512);
        if options == 0 {
            d.extend_from_slice(&[0; 4]);
            for i in self.supported() {
                let s = i.sa.unwrap_or(0).to_be_bytes();
                let flags = if rctd { 0x02 } else { 0 } | u8::from(i.sa.is_some());
                let len = (i.usage.len() as u16).to_be_bytes();
                d.extend_from_slice(&[i.op, 0, s[0], s[1], 0, flags, len[0], len[1]]);
                if rctd {
                    d.extend_from_slice(&timeouts());
                }
            }
            let n = (d.len() - 4) as u32;
            d[0..4].copy_from_slice(&n.to_be_bytes());
            return Ok(truncate(d, alloc));
        }
        let has_sa = self.supported().any(|i| i.op == req_op && i.sa.is_some());
        let has_plain = self.supported().any(|i| i.op == req_op && i.sa.is_none());
        let want_sa = match options {
            1 if has_sa => return Err(INVALID_FIELD_IN_CDB.in_cdb(2).into()),
            1 => None,
            2 if has_plain => return Err(INVALID_FIELD_IN_CDB.in_cdb(2).into()),
            2 => Some(req_sa),
            3 if has_sa => Some(req_sa),
            3 => None,
            _ => return Err(INVALID_FIELD_IN_CDB.in_cdb(2).into()),
        };
        match self.supported().find(|i| i.op == req_op && i.sa == want_sa) {
            None => d.extend_from_slice(&[0, 0x01, 0, 0]),
            Some(i) => {
                let len = (i.usage.len() as u16).to_be_bytes();
                d.extend_from_slice(&[0, if rctd { 0x80 } else { 0 } | 0x03, len[0], len[1]]);
                d.extend_from_slice(i.usage);
                if rctd {
                    d.extend_from_slice(&timeouts());
                }
            }
        }
        Ok(truncate(d, alloc))
    }
}
