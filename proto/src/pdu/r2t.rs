//! Ready To Transfer (RFC 7143 §11.8): the target asks for a range of write data.

use super::{check, PduRepr};
use crate::bhs::{Bhs, Lun, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

/// R2T (opcode 0x31). Carries no data segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2t {
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag of the command.
    pub itt: u32,
    /// Target Transfer Tag the Data-Out PDUs must echo.
    pub ttt: u32,
    /// StatSN (next StatSN, not advanced).
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// R2TSN.
    pub r2t_sn: SerialNumber,
    /// Buffer Offset.
    pub buffer_offset: u32,
    /// Desired Data Transfer Length.
    pub desired_data_transfer_length: u32,
}

impl PduRepr for R2t {
    const OPCODE: Opcode = Opcode::R2t;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        if !data.is_empty() {
            return Err(WireError::UnexpectedData(bhs.data_segment_length()));
        }
        Ok(R2t {
            lun: bhs.lun(),
            itt: bhs.itt(),
            ttt: bhs.u32_at(20),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
            r2t_sn: bhs.sn_at(36),
            buffer_offset: bhs.u32_at(40),
            desired_data_transfer_length: bhs.u32_at(44),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        bhs.set_flags(0x80);
        bhs.set_lun(self.lun);
        bhs.set_itt(self.itt);
        bhs.set_u32_at(20, self.ttt);
        bhs.set_sn_at(24, self.stat_sn);
        bhs.set_sn_at(28, self.exp_cmd_sn);
        bhs.set_sn_at(32, self.max_cmd_sn);
        bhs.set_sn_at(36, self.r2t_sn);
        bhs.set_u32_at(40, self.buffer_offset);
        bhs.set_u32_at(44, self.desired_data_transfer_length);
    }

    fn data_len(&self) -> usize {
        0
    }

    fn emit_data(&self, _out: &mut [u8]) {}
}
