//! Reservations common part: the I_T nexus type, RESERVE(6) / RELEASE(6) (SPC-2 7.21, 7.17) and
//! the RESERVATION CONFLICT check run before every command (SPC-4 5.9.1 table 65 for persistent
//! reservations, SPC-2 5.5.1 for RESERVE(6)). Persistent reservations live in `persistent.rs`.
//!
//! Reservations are keyed by [`ItNexus`], which the transport builds from the initiator port
//! (iSCSI name + ISID) and the target portal group tag.

use std::fmt;
use std::sync::Arc;

use super::cdb::{self, Cdb};
use super::lun::{Lun, LunState};
use super::sense::INVALID_FIELD_IN_CDB;
use super::{CmdResult, Failure};

/// An I_T nexus: initiator port plus target port. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItNexus {
    initiator_port: Arc<str>,
    target_port: u16,
}

impl ItNexus {
    /// A nexus from an initiator port name (for iSCSI `"<name>,i,0x<isid>"`) and a relative
    /// target port identifier (for iSCSI the target portal group tag).
    pub fn new(initiator_port: &str, target_port: u16) -> Self {
        Self {
            initiator_port: Arc::from(initiator_port),
            target_port,
        }
    }

    /// The iSCSI form: initiator name, 6-byte ISID and target portal group tag.
    pub fn iscsi(initiator_name: &str, isid: [u8; 6], tpgt: u16) -> Self {
        let hex: String = isid.iter().map(|b| format!("{b:02x}")).collect();
        Self::new(&format!("{initiator_name},i,0x{hex}"), tpgt)
    }

    /// The initiator port name.
    pub fn initiator_port(&self) -> &str {
        &self.initiator_port
    }

    /// The relative target port identifier.
    pub fn target_port(&self) -> u16 {
        self.target_port
    }
}

impl fmt::Debug for ItNexus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.initiator_port, self.target_port)
    }
}

/// Commands allowed from any nexus whatever the reservations (SPC-4 table 65, "Allowed").
fn always_allowed(c: &Cdb) -> bool {
    use cdb::*;
    match c.opcode() {
        INQUIRY | REPORT_LUNS | REQUEST_SENSE | MAINTENANCE_IN | READ_CAPACITY_10 => true,
        SERVICE_ACTION_IN_16 => c.service_action() == SA_READ_CAPACITY_16,
        _ => false,
    }
}

/// Commands that only read (allowed from anyone under the Write Exclusive types).
fn read_only_command(c: &Cdb) -> bool {
    use cdb::*;
    matches!(
        c.opcode(),
        TEST_UNIT_READY
            | READ_6
            | READ_10
            | READ_12
            | READ_16
            | VERIFY_10
            | VERIFY_12
            | VERIFY_16
            | MODE_SENSE_6
            | MODE_SENSE_10
            | SERVICE_ACTION_IN_16
            | PREFETCH_10
            | PREFETCH_16
            | READ_DEFECT_DATA_10
            | READ_DEFECT_DATA_12
            | RECEIVE_COPY_RESULTS
    )
}

impl Lun {
    /// Whether `c` from `nexus` must get RESERVATION CONFLICT.
    pub(crate) fn reservation_conflict(&self, st: &LunState, nexus: &ItNexus, c: &Cdb) -> bool {
        let op = c.opcode();
        if let Some(holder) = &st.reserved_by {
            if holder != nexus && !always_allowed(c) && op != cdb::RELEASE_6 {
                return true;
            }
        }
        // SPC-4 table 65 also allows TEST UNIT READY under every persistent reservation type.
        if always_allowed(c) || matches!(op, cdb::PR_IN | cdb::PR_OUT | cdb::TEST_UNIT_READY) {
            return false;
        }
        let writes = !read_only_command(c) || matches!(op, cdb::RESERVE_6 | cdb::RELEASE_6);
        st.pr.conflicts(nexus, writes)
    }

    /// RESERVE(6) (SPC-2 7.21): exclusive access for the calling nexus.
    pub(crate) fn reserve6(&self, nexus: &ItNexus, c: &Cdb) -> CmdResult {
        if c.b(1) & 0x01 != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let mut st = self.state();
        if st.pr.active() {
            return Err(Failure::Conflict);
        }
        match &st.reserved_by {
            Some(h) if h != nexus => Err(Failure::Conflict),
            _ => {
                st.reserved_by = Some(nexus.clone());
                Ok(Vec::new())
            }
        }
    }

    /// RELEASE(6) (SPC-2 7.17): releases our own reservation; GOOD otherwise.
    pub(crate) fn release6(&self, nexus: &ItNexus, c: &Cdb) -> CmdResult {
        if c.b(1) & 0x01 != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let mut st = self.state();
        if st.pr.active() {
            return Err(Failure::Conflict);
        }
        if st.reserved_by.as_ref() == Some(nexus) {
            st.reserved_by = None;
        }
        Ok(Vec::new())
    }
}
