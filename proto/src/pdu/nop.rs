//! NOP-Out (RFC 7143 §11.18) and NOP-In (§11.19): pings and keepalives.
//!
//! A NOP-Out with ITT 0xffffffff is unsolicited and wants no answer; a NOP-In with TTT other
//! than 0xffffffff asks the initiator for a NOP-Out echoing that TTT.

use super::{check, copy_data, PduRepr};
use crate::bhs::{Bhs, Lun, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

/// NOP-Out (opcode 0x00).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NopOut {
    /// I: immediate delivery.
    pub immediate: bool,
    /// LUN (echoed from a NOP-In, else 0).
    pub lun: Lun,
    /// Initiator Task Tag, 0xffffffff when no answer is wanted.
    pub itt: u32,
    /// Target Transfer Tag, echoing a NOP-In's TTT or 0xffffffff.
    pub ttt: u32,
    /// CmdSN.
    pub cmd_sn: SerialNumber,
    /// ExpStatSN.
    pub exp_stat_sn: SerialNumber,
    /// Ping data.
    pub data: Vec<u8>,
}

impl PduRepr for NopOut {
    const OPCODE: Opcode = Opcode::NopOut;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        Ok(NopOut {
            immediate: bhs.immediate(),
            lun: bhs.lun(),
            itt: bhs.itt(),
            ttt: bhs.u32_at(20),
            cmd_sn: bhs.sn_at(24),
            exp_stat_sn: bhs.sn_at(28),
            data: data.to_vec(),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, self.immediate);
        bhs.set_flags(0x80);
        bhs.set_lun(self.lun);
        bhs.set_itt(self.itt);
        bhs.set_u32_at(20, self.ttt);
        bhs.set_sn_at(24, self.cmd_sn);
        bhs.set_sn_at(28, self.exp_stat_sn);
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }

    fn emit_data(&self, out: &mut [u8]) {
        copy_data(out, &self.data);
    }
}

/// NOP-In (opcode 0x20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NopIn {
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag (echoed, or 0xffffffff for a target-initiated ping).
    pub itt: u32,
    /// Target Transfer Tag (0xffffffff unless an answer is wanted).
    pub ttt: u32,
    /// StatSN.
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// Ping data.
    pub data: Vec<u8>,
}

impl PduRepr for NopIn {
    const OPCODE: Opcode = Opcode::NopIn;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        Ok(NopIn {
            lun: bhs.lun(),
            itt: bhs.itt(),
            ttt: bhs.u32_at(20),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
            data: data.to_vec(),
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
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }

    fn emit_data(&self, out: &mut [u8]) {
        copy_data(out, &self.data);
    }
}
