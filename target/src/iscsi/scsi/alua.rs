//! REPORT TARGET PORT GROUPS (SPC-4 6.37) for implicit ALUA (TPGS = 01b).
//!
//! Every LUN has one target port group (id 1), always active/optimized, holding the target port
//! the command came through. Reporting ALUA lets multipath initiators (dm-multipath with
//! scsi_dh_alua, VMware) treat all portals as equal paths instead of guessing.

use super::cdb::Cdb;
use super::lun::Lun;
use super::reservation::ItNexus;
use super::sense::INVALID_FIELD_IN_CDB;
use super::{truncate, CmdResult};

/// The single target port group identifier.
pub(crate) const TARGET_PORT_GROUP: u16 = 1;

/// Relative target port identifier of `nexus` (0 is reserved, so it maps to 1).
pub(crate) fn relative_port(nexus: &ItNexus) -> u16 {
    nexus.target_port().max(1)
}

impl Lun {
    /// REPORT TARGET PORT GROUPS, length-only (0) or extended (1) header format.
    pub(crate) fn report_target_port_groups(&self, nexus: &ItNexus, c: &Cdb) -> CmdResult {
        let format = c.b(1) >> 5;
        let alloc = c.be32(6) as usize;
        let mut d = vec![0u8; 4];
        match format {
            0 => {}
            // FORMAT TYPE 1, IMPLICIT TRANSITION TIME 0.
            1 => d.extend_from_slice(&[0x10, 0, 0, 0]),
            _ => return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into()),
        }
        let tpg = TARGET_PORT_GROUP.to_be_bytes();
        // ASYMMETRIC ACCESS STATE 0 (active/optimized), AO_SUP, one target port.
        d.extend_from_slice(&[0x00, 0x01, tpg[0], tpg[1], 0, 0, 0, 1]);
        let port = relative_port(nexus).to_be_bytes();
        d.extend_from_slice(&[0, 0, port[0], port[1]]);
        let len = (d.len() - 4) as u32;
        d[0..4].copy_from_slice(&len.to_be_bytes());
        Ok(truncate(d, alloc))
    }
}
