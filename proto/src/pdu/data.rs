//! SCSI Data-Out and Data-In (RFC 7143 §11.7).
//!
//! The last Data-In of a read may carry the SCSI status (S bit, "phase collapse",
//! §11.7.1); [`DataIn::status`] is `Some` exactly when the S bit is set. RFC 7143 requires F
//! whenever S is set, and `parse` rejects a Data-In that violates that.

use super::{check, copy_data, PduRepr};
use crate::bhs::{Bhs, Lun, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

const F_BIT: u8 = 0x80;
const A_BIT: u8 = 0x40;
const O_BIT: u8 = 0x04;
const U_BIT: u8 = 0x02;
const S_BIT: u8 = 0x01;

/// SCSI Data-Out (opcode 0x05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataOut {
    /// F: last PDU of this sequence.
    pub fin: bool,
    /// LUN (with a TTT other than 0xffffffff, echoed from the R2T).
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag (from the R2T, or 0xffffffff for unsolicited data).
    pub ttt: u32,
    /// ExpStatSN.
    pub exp_stat_sn: SerialNumber,
    /// DataSN.
    pub data_sn: SerialNumber,
    /// Buffer Offset.
    pub buffer_offset: u32,
    /// The data.
    pub data: Vec<u8>,
}

impl PduRepr for DataOut {
    const OPCODE: Opcode = Opcode::DataOut;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        Ok(DataOut {
            fin: bhs.final_bit(),
            lun: bhs.lun(),
            itt: bhs.itt(),
            ttt: bhs.u32_at(20),
            exp_stat_sn: bhs.sn_at(28),
            data_sn: bhs.sn_at(36),
            buffer_offset: bhs.u32_at(40),
            data: data.to_vec(),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        bhs.set_flags(if self.fin { F_BIT } else { 0 });
        bhs.set_lun(self.lun);
        bhs.set_itt(self.itt);
        bhs.set_u32_at(20, self.ttt);
        bhs.set_sn_at(28, self.exp_stat_sn);
        bhs.set_sn_at(36, self.data_sn);
        bhs.set_u32_at(40, self.buffer_offset);
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }

    fn emit_data(&self, out: &mut [u8]) {
        copy_data(out, &self.data);
    }
}

/// SCSI Data-In (opcode 0x25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIn {
    /// F: last PDU of this sequence.
    pub fin: bool,
    /// A: the target asks for a DataACK (ErrorRecoveryLevel > 0).
    pub ack: bool,
    /// O: residual overflow (valid with status).
    pub overflow: bool,
    /// U: residual underflow (valid with status).
    pub underflow: bool,
    /// SCSI status; `Some` iff the S bit is set.
    pub status: Option<u8>,
    /// LUN (with the A bit), else reserved.
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag (with the A bit), else 0xffffffff.
    pub ttt: u32,
    /// StatSN (valid with status).
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// DataSN.
    pub data_sn: SerialNumber,
    /// Buffer Offset.
    pub buffer_offset: u32,
    /// Residual Count (valid with status).
    pub residual_count: u32,
    /// The data.
    pub data: Vec<u8>,
}

impl PduRepr for DataIn {
    const OPCODE: Opcode = Opcode::DataIn;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        let f = bhs.flags();
        if f & S_BIT != 0 && f & F_BIT == 0 {
            return Err(WireError::BadField {
                field: "Data-In S without F",
                value: f.into(),
            });
        }
        Ok(DataIn {
            fin: f & F_BIT != 0,
            ack: f & A_BIT != 0,
            overflow: f & O_BIT != 0,
            underflow: f & U_BIT != 0,
            status: (f & S_BIT != 0).then(|| bhs.u8_at(3)),
            lun: bhs.lun(),
            itt: bhs.itt(),
            ttt: bhs.u32_at(20),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
            data_sn: bhs.sn_at(36),
            buffer_offset: bhs.u32_at(40),
            residual_count: bhs.u32_at(44),
            data: data.to_vec(),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        let mut f = 0;
        for (set, bit) in [
            (self.fin, F_BIT),
            (self.ack, A_BIT),
            (self.overflow, O_BIT),
            (self.underflow, U_BIT),
            (self.status.is_some(), S_BIT),
        ] {
            if set {
                f |= bit;
            }
        }
        bhs.set_flags(f);
        bhs.set_u8_at(3, self.status.unwrap_or(0));
        bhs.set_lun(self.lun);
        bhs.set_itt(self.itt);
        bhs.set_u32_at(20, self.ttt);
        bhs.set_sn_at(24, self.stat_sn);
        bhs.set_sn_at(28, self.exp_cmd_sn);
        bhs.set_sn_at(32, self.max_cmd_sn);
        bhs.set_sn_at(36, self.data_sn);
        bhs.set_u32_at(40, self.buffer_offset);
        bhs.set_u32_at(44, self.residual_count);
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }

    fn emit_data(&self, out: &mut [u8]) {
        copy_data(out, &self.data);
    }
}
