//! Unit control commands: REQUEST SENSE (SPC-4 6.39), REPORT LUNS (SPC-4 6.33), START STOP
//! UNIT (SBC-3 5.25), PREVENT ALLOW MEDIUM REMOVAL (SBC-3 5.14), PRE-FETCH (10/16) and
//! SYNCHRONIZE CACHE (10/16) (SBC-3 5.22, 5.23). TEST UNIT READY needs no handler: it only
//! runs the pre-checks.
//!
//! SYNCHRONIZE CACHE flushes the whole backstore (`fdatasync` has no range form that helps
//! here) after checking the range, and ignores IMMED: the flush is done before GOOD either way.

use super::cdb::{check_range, Cdb, SYNC_CACHE_10};
use super::lun::{Lun, LunSet};
use super::reservation::ItNexus;
use super::rw::write_err;
use super::sense::{self, INVALID_FIELD_IN_CDB, NO_SENSE, REMOVAL_PREVENTED};
use super::{truncate, CmdResult};

/// REPORT LUNS for `luns` (SELECT REPORT 0 and 2 list them all, 1 lists none: we have no
/// well-known logical units).
pub(crate) fn report_luns(c: &Cdb, luns: &[u64]) -> CmdResult {
    let alloc = c.be32(6) as usize;
    let listed: &[u64] = match c.b(2) {
        0x00 | 0x02 => luns,
        0x01 => &[],
        _ => return Err(INVALID_FIELD_IN_CDB.in_cdb(2).into()),
    };
    if alloc < 16 {
        return Err(INVALID_FIELD_IN_CDB.in_cdb(6).into());
    }
    let mut d = Vec::with_capacity(8 + listed.len() * 8);
    d.extend_from_slice(&((listed.len() * 8) as u32).to_be_bytes());
    d.extend_from_slice(&[0; 4]);
    for &id in listed {
        d.extend_from_slice(&LunSet::encode_lun(id));
    }
    Ok(truncate(d, alloc))
}

impl Lun {
    /// REQUEST SENSE: a pending unit attention (which it clears), MEDIUM NOT PRESENT after an
    /// eject, or NO SENSE. Only fixed format is supported.
    pub(crate) fn request_sense(&self, nexus: &ItNexus, c: &Cdb) -> CmdResult {
        if c.b(1) & 0x01 != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let mut st = self.state();
        let s = match st.pop_ua(nexus) {
            Some(ua) => ua,
            None if !st.medium_present => sense::MEDIUM_NOT_PRESENT,
            None => NO_SENSE,
        };
        Ok(truncate(s.to_fixed().to_vec(), usize::from(c.b(4))))
    }

    /// START STOP UNIT. We have no spindle or power states: START/STOP and the power
    /// conditions only flush (unless NO_FLUSH). LOEJ ejects or loads a removable medium,
    /// unless some nexus prevents medium removal.
    pub(crate) fn start_stop(&self, c: &Cdb) -> CmdResult {
        let b4 = c.b(4);
        let (loej, start, no_flush) = (b4 & 0x02 != 0, b4 & 0x01 != 0, b4 & 0x04 != 0);
        match b4 >> 4 {
            0 => {}
            1..=3 | 7 | 0xA | 0xB => return Ok(Vec::new()),
            _ => return Err(INVALID_FIELD_IN_CDB.in_cdb(4).into()),
        }
        if loej && self.config.removable {
            let mut st = self.state();
            if !st.prevent.is_empty() {
                return Err(REMOVAL_PREVENTED.into());
            }
            st.medium_present = start;
        }
        if !start && !no_flush {
            self.store.flush().map_err(write_err)?;
        }
        Ok(Vec::new())
    }

    /// PREVENT ALLOW MEDIUM REMOVAL: records PREVENT per I_T nexus (SBC-3 5.14).
    pub(crate) fn prevent_allow(&self, nexus: &ItNexus, c: &Cdb) -> CmdResult {
        let mut st = self.state();
        match c.b(4) & 0x03 {
            0 => st.prevent.remove(nexus),
            1 => st.prevent.insert(nexus.clone()),
            _ => return Err(INVALID_FIELD_IN_CDB.in_cdb(4).into()),
        };
        Ok(Vec::new())
    }

    /// PRE-FETCH (10/16) (SBC-3 5.11, 5.12): range check only; the page cache does the rest.
    /// Returns GOOD rather than CONDITION MET, as allowed when nothing is guaranteed cached.
    pub(crate) fn prefetch(&self, c: &Cdb) -> CmdResult {
        let (lba, n) = c.lba_range().ok_or(INVALID_FIELD_IN_CDB)?;
        check_range(lba, u64::from(n), self.capacity)?;
        Ok(Vec::new())
    }

    /// SYNCHRONIZE CACHE (10/16): range check, then `fdatasync`.
    pub(crate) fn sync_cache(&self, c: &Cdb) -> CmdResult {
        let (lba, n) = if c.opcode() == SYNC_CACHE_10 {
            (u64::from(c.be32(2)), u64::from(c.be16(7)))
        } else {
            (c.be64(2), u64::from(c.be32(10)))
        };
        check_range(lba, n, self.capacity)?;
        self.store.flush().map_err(write_err)?;
        Ok(Vec::new())
    }
}
