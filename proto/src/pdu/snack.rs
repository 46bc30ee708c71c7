//! SNACK Request (RFC 7143 §11.16). Only useful at ErrorRecoveryLevel > 0, which pxeroot
//! does not negotiate; a target parses it so it can answer with a Reject.

use super::{check, PduRepr};
use crate::bhs::{enum_with_unknown, Bhs, Lun, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

enum_with_unknown! {
    /// SNACK Type (4 bits, RFC 7143 §11.16.1).
    pub enum SnackType(u8) {
        /// 0: Data/R2T SNACK.
        DataR2t = 0,
        /// 1: Status SNACK.
        Status = 1,
        /// 2: DataACK.
        DataAck = 2,
        /// 3: R-Data SNACK.
        RData = 3,
    }
}

/// SNACK Request (opcode 0x10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnackRequest {
    /// Type.
    pub snack_type: SnackType,
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag or SNACK Tag.
    pub ttt: u32,
    /// ExpStatSN.
    pub exp_stat_sn: SerialNumber,
    /// BegRun.
    pub beg_run: u32,
    /// RunLength.
    pub run_length: u32,
}

impl PduRepr for SnackRequest {
    const OPCODE: Opcode = Opcode::SnackRequest;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        if !data.is_empty() {
            return Err(WireError::UnexpectedData(bhs.data_segment_length()));
        }
        Ok(SnackRequest {
            snack_type: SnackType::from(bhs.flags() & 0x0f),
            lun: bhs.lun(),
            itt: bhs.itt(),
            ttt: bhs.u32_at(20),
            exp_stat_sn: bhs.sn_at(28),
            beg_run: bhs.u32_at(36),
            run_length: bhs.u32_at(40),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        bhs.set_flags(0x80 | (u8::from(self.snack_type) & 0x0f));
        bhs.set_lun(self.lun);
        bhs.set_itt(self.itt);
        bhs.set_u32_at(20, self.ttt);
        bhs.set_sn_at(28, self.exp_stat_sn);
        bhs.set_u32_at(36, self.beg_run);
        bhs.set_u32_at(40, self.run_length);
    }

    fn data_len(&self) -> usize {
        0
    }

    fn emit_data(&self, _out: &mut [u8]) {}
}
