//! Task Management Function Request (RFC 7143 §11.5) and Response (§11.6).

use super::{check, PduRepr};
use crate::bhs::{enum_with_unknown, Bhs, Lun, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

enum_with_unknown! {
    /// The Function field (7 bits) of a TMF request (RFC 7143 §11.5.1).
    pub enum TaskMgmtFunction(u8) {
        /// 1: ABORT TASK.
        AbortTask = 1,
        /// 2: ABORT TASK SET.
        AbortTaskSet = 2,
        /// 3: CLEAR ACA.
        ClearAca = 3,
        /// 4: CLEAR TASK SET.
        ClearTaskSet = 4,
        /// 5: LOGICAL UNIT RESET.
        LogicalUnitReset = 5,
        /// 6: TARGET WARM RESET.
        TargetWarmReset = 6,
        /// 7: TARGET COLD RESET.
        TargetColdReset = 7,
        /// 8: TASK REASSIGN.
        TaskReassign = 8,
    }
}

enum_with_unknown! {
    /// The Response field of a TMF response (RFC 7143 §11.6.1).
    pub enum TaskMgmtResponseCode(u8) {
        /// 0: function complete.
        FunctionComplete = 0,
        /// 1: task does not exist.
        TaskDoesNotExist = 1,
        /// 2: LUN does not exist.
        LunDoesNotExist = 2,
        /// 3: task still allegiant.
        TaskStillAllegiant = 3,
        /// 4: task allegiance reassignment not supported.
        ReassignmentNotSupported = 4,
        /// 5: task management function not supported.
        NotSupported = 5,
        /// 6: function authorization failed.
        AuthorizationFailed = 6,
        /// 255: function rejected.
        Rejected = 255,
    }
}

/// Task Management Function Request (opcode 0x02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMgmtRequest {
    /// I: immediate delivery.
    pub immediate: bool,
    /// Function (7 bits).
    pub function: TaskMgmtFunction,
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag of this request.
    pub itt: u32,
    /// Referenced Task Tag (ABORT TASK, TASK REASSIGN), else 0xffffffff.
    pub referenced_task_tag: u32,
    /// CmdSN.
    pub cmd_sn: SerialNumber,
    /// ExpStatSN.
    pub exp_stat_sn: SerialNumber,
    /// RefCmdSN.
    pub ref_cmd_sn: SerialNumber,
    /// ExpDataSN.
    pub exp_data_sn: SerialNumber,
}

impl PduRepr for TaskMgmtRequest {
    const OPCODE: Opcode = Opcode::TaskMgmtRequest;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        if !data.is_empty() {
            return Err(WireError::UnexpectedData(bhs.data_segment_length()));
        }
        Ok(TaskMgmtRequest {
            immediate: bhs.immediate(),
            function: TaskMgmtFunction::from(bhs.flags() & 0x7f),
            lun: bhs.lun(),
            itt: bhs.itt(),
            referenced_task_tag: bhs.u32_at(20),
            cmd_sn: bhs.sn_at(24),
            exp_stat_sn: bhs.sn_at(28),
            ref_cmd_sn: bhs.sn_at(32),
            exp_data_sn: bhs.sn_at(36),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, self.immediate);
        bhs.set_flags(0x80 | (u8::from(self.function) & 0x7f));
        bhs.set_lun(self.lun);
        bhs.set_itt(self.itt);
        bhs.set_u32_at(20, self.referenced_task_tag);
        bhs.set_sn_at(24, self.cmd_sn);
        bhs.set_sn_at(28, self.exp_stat_sn);
        bhs.set_sn_at(32, self.ref_cmd_sn);
        bhs.set_sn_at(36, self.exp_data_sn);
    }

    fn data_len(&self) -> usize {
        0
    }

    fn emit_data(&self, _out: &mut [u8]) {}
}

/// Task Management Function Response (opcode 0x22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMgmtResponse {
    /// Response.
    pub response: TaskMgmtResponseCode,
    /// Initiator Task Tag of the request.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
}

impl PduRepr for TaskMgmtResponse {
    const OPCODE: Opcode = Opcode::TaskMgmtResponse;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        if !data.is_empty() {
            return Err(WireError::UnexpectedData(bhs.data_segment_length()));
        }
        Ok(TaskMgmtResponse {
            response: TaskMgmtResponseCode::from(bhs.u8_at(2)),
            itt: bhs.itt(),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        bhs.set_flags(0x80);
        bhs.set_u8_at(2, u8::from(self.response));
        bhs.set_itt(self.itt);
        bhs.set_sn_at(24, self.stat_sn);
        bhs.set_sn_at(28, self.exp_cmd_sn);
        bhs.set_sn_at(32, self.max_cmd_sn);
    }

    fn data_len(&self) -> usize {
        0
    }

    fn emit_data(&self, _out: &mut [u8]) {}
}
