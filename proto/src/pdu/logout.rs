//! Logout Request (RFC 7143 §11.14) and Logout Response (§11.15).

use super::{check, PduRepr};
use crate::bhs::{enum_with_unknown, Bhs, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

enum_with_unknown! {
    /// Reason Code (7 bits) of a Logout Request (RFC 7143 §11.14.1).
    pub enum LogoutReason(u8) {
        /// 0: close the session.
        CloseSession = 0,
        /// 1: close the connection.
        CloseConnection = 1,
        /// 2: remove the connection for recovery.
        RemoveConnectionForRecovery = 2,
    }
}

enum_with_unknown! {
    /// Response of a Logout Response (RFC 7143 §11.15.1).
    pub enum LogoutResponseCode(u8) {
        /// 0: connection or session closed successfully.
        Closed = 0,
        /// 1: CID not found.
        CidNotFound = 1,
        /// 2: connection recovery is not supported.
        RecoveryNotSupported = 2,
        /// 3: cleanup failed for various reasons.
        CleanupFailed = 3,
    }
}

/// Logout Request (opcode 0x06).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// I: immediate delivery.
    pub immediate: bool,
    /// Reason Code.
    pub reason: LogoutReason,
    /// Initiator Task Tag.
    pub itt: u32,
    /// CID of the connection to close (reasons 1 and 2).
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: SerialNumber,
    /// ExpStatSN.
    pub exp_stat_sn: SerialNumber,
}

impl PduRepr for LogoutRequest {
    const OPCODE: Opcode = Opcode::LogoutRequest;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        if !data.is_empty() {
            return Err(WireError::UnexpectedData(bhs.data_segment_length()));
        }
        Ok(LogoutRequest {
            immediate: bhs.immediate(),
            reason: LogoutReason::from(bhs.flags() & 0x7f),
            itt: bhs.itt(),
            cid: bhs.u16_at(20),
            cmd_sn: bhs.sn_at(24),
            exp_stat_sn: bhs.sn_at(28),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, self.immediate);
        bhs.set_flags(0x80 | (u8::from(self.reason) & 0x7f));
        bhs.set_itt(self.itt);
        bhs.set_u16_at(20, self.cid);
        bhs.set_sn_at(24, self.cmd_sn);
        bhs.set_sn_at(28, self.exp_stat_sn);
    }

    fn data_len(&self) -> usize {
        0
    }

    fn emit_data(&self, _out: &mut [u8]) {}
}

/// Logout Response (opcode 0x26).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    /// Response.
    pub response: LogoutResponseCode,
    /// Initiator Task Tag.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// Time2Wait (seconds).
    pub time2wait: u16,
    /// Time2Retain (seconds).
    pub time2retain: u16,
}

impl PduRepr for LogoutResponse {
    const OPCODE: Opcode = Opcode::LogoutResponse;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        if !data.is_empty() {
            return Err(WireError::UnexpectedData(bhs.data_segment_length()));
        }
        Ok(LogoutResponse {
            response: LogoutResponseCode::from(bhs.u8_at(2)),
            itt: bhs.itt(),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
            time2wait: bhs.u16_at(40),
            time2retain: bhs.u16_at(42),
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
        bhs.set_u16_at(40, self.time2wait);
        bhs.set_u16_at(42, self.time2retain);
    }

    fn data_len(&self) -> usize {
        0
    }

    fn emit_data(&self, _out: &mut [u8]) {}
}
