//! SCSI block device (SPC-4 / SBC-3) for disk LUNs, sans-IO with respect to the network.
//!
//! The transport hands [`LunSet::execute`] a CDB, the Data-Out buffer and the I_T nexus that
//! sent it, and gets back a [`ScsiResult`]: a status, the Data-In bytes already truncated to the
//! allocation length, and fixed-format sense data. Residual counts are the transport's business:
//! it compares `data_in.len()` (or the Data-Out it expected from [`LunSet::transfer`]) with the
//! initiator's Expected Data Transfer Length.
//!
//! Transport contract, in order:
//! 1. [`LunSet::decode_lun`] the LUN field; [`LunSet::transfer`] tells how much Data-Out to
//!    solicit (R2T) and the most Data-In the command can produce.
//! 2. [`LunSet::execute`] with all the Data-Out received. It blocks on file I/O, so call it
//!    from a blocking thread (`tokio::task::spawn_blocking`), never on the reactor.
//! 3. Task management: [`LunSet::reset`] (LOGICAL UNIT RESET), [`LunSet::reset_all`] (TARGET
//!    WARM/COLD RESET), and [`LunSet::nexus_lost`] when a session ends.
//!
//! Commands: TEST UNIT READY, REQUEST SENSE, INQUIRY (VPD 00/80/83/B0/B1/B2), MODE SENSE and
//! MODE SELECT (6/10), START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, READ CAPACITY (10/16),
//! READ / WRITE (6/10/12/16), WRITE AND VERIFY and VERIFY (10/12/16), ORWRITE (16), COMPARE
//! AND WRITE, WRITE ATOMIC (16) (atomic with respect to other commands, not to crashes), PRE-FETCH and SYNCHRONIZE CACHE (10/16), WRITE SAME (10/16), UNMAP, GET LBA
//! STATUS, READ DEFECT DATA (10/12), REPORT LUNS, REPORT SUPPORTED OPERATION CODES, REPORT
//! TARGET PORT GROUPS, RESERVE / RELEASE (6), PERSISTENT RESERVE IN / OUT, EXTENDED COPY (LID1,
//! between LUNs of one [`LunSet`]) and RECEIVE COPY RESULTS. The list in
//! `opcodes.rs` is the one REPORT SUPPORTED OPERATION CODES returns.
//!
//! Design: one file per command family (SPC-4 / SBC-3 section named in each file), each adding
//! an `impl Lun` block with its handlers. Handlers return `Result<Vec<u8>, Failure>` so every
//! error path is a sense constant from [`sense`], never a panic: CDBs come straight off the
//! wire, so every read of a CDB or parameter list goes through bounds-checked helpers.

mod alua;
mod capacity;
mod cdb;
mod control;
mod inquiry;
mod lun;
mod mode;
mod opcodes;
mod persistent;
mod provisioning;
mod reservation;
mod rw;
pub mod sense;
mod xcopy;

#[cfg(test)]
mod tests;

pub use cdb::{Transfer, MAX_TRANSFER_BLOCKS};
pub use lun::{Lun, LunConfig, LunSet};
pub use reservation::ItNexus;
pub use sense::{Sense, SenseKey};

/// SCSI status codes (SAM-5 5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScsiStatus {
    /// 0x00.
    Good,
    /// 0x02: sense data is in [`ScsiResult::sense`].
    CheckCondition,
    /// 0x08.
    Busy,
    /// 0x18.
    ReservationConflict,
    /// 0x28.
    TaskSetFull,
}

impl ScsiStatus {
    /// The status byte for the SCSI Response PDU.
    pub fn code(self) -> u8 {
        match self {
            Self::Good => 0x00,
            Self::CheckCondition => 0x02,
            Self::Busy => 0x08,
            Self::ReservationConflict => 0x18,
            Self::TaskSetFull => 0x28,
        }
    }
}

/// Outcome of one SCSI command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiResult {
    /// Status byte.
    pub status: ScsiStatus,
    /// Data-In, already truncated to the CDB's allocation length (empty on error).
    pub data_in: Vec<u8>,
    /// Sense data, present exactly when `status` is CHECK CONDITION.
    pub sense: Option<Sense>,
}

impl ScsiResult {
    /// GOOD status with Data-In.
    pub fn good(data_in: Vec<u8>) -> Self {
        Self {
            status: ScsiStatus::Good,
            data_in,
            sense: None,
        }
    }

    /// CHECK CONDITION with `sense`.
    pub fn check(sense: Sense) -> Self {
        Self {
            status: ScsiStatus::CheckCondition,
            data_in: Vec::new(),
            sense: Some(sense),
        }
    }

    /// RESERVATION CONFLICT.
    pub fn conflict() -> Self {
        Self {
            status: ScsiStatus::ReservationConflict,
            data_in: Vec::new(),
            sense: None,
        }
    }

    /// Fixed-format sense bytes (18), or empty when there is no sense data. The iSCSI layer
    /// prefixes these with the 2-byte SenseLength in the SCSI Response data segment.
    pub fn sense_bytes(&self) -> Vec<u8> {
        self.sense
            .map(|s| s.to_fixed().to_vec())
            .unwrap_or_default()
    }
}

/// Why a command handler failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// CHECK CONDITION with this sense.
    Check(Sense),
    /// RESERVATION CONFLICT.
    Conflict,
}

impl From<Sense> for Failure {
    fn from(s: Sense) -> Self {
        Self::Check(s)
    }
}

impl From<Result<Vec<u8>, Failure>> for ScsiResult {
    fn from(r: Result<Vec<u8>, Failure>) -> Self {
        match r {
            Ok(d) => Self::good(d),
            Err(Failure::Check(s)) => Self::check(s),
            Err(Failure::Conflict) => Self::conflict(),
        }
    }
}

/// What a command handler returns.
pub(crate) type CmdResult = Result<Vec<u8>, Failure>;

/// Truncates `data` to the allocation length `alloc` (SPC-4 4.2.5.6).
pub(crate) fn truncate(mut data: Vec<u8>, alloc: usize) -> Vec<u8> {
    data.truncate(alloc);
    data
}
