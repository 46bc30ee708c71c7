//! Text Request (RFC 7143 §11.10) and Text Response (§11.11).
//!
//! Both carry key=value pairs in the data segment (see [`crate::text`]); the C bit marks a
//! text that continues in the next PDU and the TTT links the PDUs of one long exchange.

use super::{check, copy_data, PduRepr};
use crate::bhs::{Bhs, Lun, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

const F_BIT: u8 = 0x80;
const C_BIT: u8 = 0x40;

fn flags(fin: bool, cont: bool) -> u8 {
    (if fin { F_BIT } else { 0 }) | (if cont { C_BIT } else { 0 })
}

/// Text Request (opcode 0x04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRequest {
    /// I: immediate delivery.
    pub immediate: bool,
    /// F: last PDU of this text request.
    pub fin: bool,
    /// C: the text continues in the next PDU.
    pub cont: bool,
    /// LUN (reserved unless a key needs it).
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag (0xffffffff to start a new exchange).
    pub ttt: u32,
    /// CmdSN.
    pub cmd_sn: SerialNumber,
    /// ExpStatSN.
    pub exp_stat_sn: SerialNumber,
    /// key=value pairs.
    pub data: Vec<u8>,
}

impl PduRepr for TextRequest {
    const OPCODE: Opcode = Opcode::TextRequest;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        Ok(TextRequest {
            immediate: bhs.immediate(),
            fin: bhs.flags() & F_BIT != 0,
            cont: bhs.flags() & C_BIT != 0,
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
        bhs.set_flags(flags(self.fin, self.cont));
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

/// Text Response (opcode 0x24).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextResponse {
    /// F: last PDU of this text response.
    pub fin: bool,
    /// C: the text continues in the next PDU.
    pub cont: bool,
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag (0xffffffff on the final response).
    pub ttt: u32,
    /// StatSN.
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// key=value pairs.
    pub data: Vec<u8>,
}

impl PduRepr for TextResponse {
    const OPCODE: Opcode = Opcode::TextResponse;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        Ok(TextResponse {
            fin: bhs.flags() & F_BIT != 0,
            cont: bhs.flags() & C_BIT != 0,
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
        bhs.set_flags(flags(self.fin, self.cont));
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
