//! SCSI Command (RFC 7143 §11.3) and SCSI Response (§11.4).
//!
//! The SCSI Response data segment is `SenseLength (2 bytes) || sense data || response data`
//! (§11.4.7); [`ScsiResponse`] splits it so that callers never index into raw sense bytes.
//! CDBs longer than 16 bytes continue in an Extended CDB AHS, which is not part of the
//! `Repr`: parse [`crate::frame::Frame::ahs`] with [`crate::ahs::parse`] and join the two with
//! [`crate::ahs::full_cdb`].

use super::{check, copy_data, PduRepr};
use crate::bhs::{enum_with_unknown, Bhs, Lun, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

enum_with_unknown! {
    /// Task attribute, the ATTR field of a SCSI Command (RFC 7143 §11.3.1.1).
    pub enum TaskAttr(u8) {
        /// 0: untagged.
        Untagged = 0,
        /// 1: simple.
        Simple = 1,
        /// 2: ordered.
        Ordered = 2,
        /// 3: head of queue.
        HeadOfQueue = 3,
        /// 4: ACA.
        Aca = 4,
    }
}

const F_BIT: u8 = 0x80;
const R_BIT: u8 = 0x40;
const W_BIT: u8 = 0x20;

/// SCSI Command (opcode 0x01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiCommand {
    /// I: immediate delivery.
    pub immediate: bool,
    /// F: no unsolicited Data-Out PDUs follow.
    pub fin: bool,
    /// R: data is expected from the target.
    pub read: bool,
    /// W: data is expected from the initiator.
    pub write: bool,
    /// ATTR.
    pub attr: TaskAttr,
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Expected Data Transfer Length.
    pub expected_data_transfer_length: u32,
    /// CmdSN.
    pub cmd_sn: SerialNumber,
    /// ExpStatSN.
    pub exp_stat_sn: SerialNumber,
    /// The first 16 bytes of the CDB.
    pub cdb: [u8; 16],
    /// Immediate data.
    pub data: Vec<u8>,
}

impl PduRepr for ScsiCommand {
    const OPCODE: Opcode = Opcode::ScsiCommand;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        let f = bhs.flags();
        let mut cdb = [0u8; 16];
        for (i, b) in cdb.iter_mut().enumerate() {
            *b = bhs.u8_at(32 + i);
        }
        Ok(ScsiCommand {
            immediate: bhs.immediate(),
            fin: f & F_BIT != 0,
            read: f & R_BIT != 0,
            write: f & W_BIT != 0,
            attr: TaskAttr::from(f & 0x07),
            lun: bhs.lun(),
            itt: bhs.itt(),
            expected_data_transfer_length: bhs.u32_at(20),
            cmd_sn: bhs.sn_at(24),
            exp_stat_sn: bhs.sn_at(28),
            cdb,
            data: data.to_vec(),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, self.immediate);
        let mut f = u8::from(self.attr) & 0x07;
        if self.fin {
            f |= F_BIT;
        }
        if self.read {
            f |= R_BIT;
        }
        if self.write {
            f |= W_BIT;
        }
        bhs.set_flags(f);
        bhs.set_lun(self.lun);
        bhs.set_itt(self.itt);
        bhs.set_u32_at(20, self.expected_data_transfer_length);
        bhs.set_sn_at(24, self.cmd_sn);
        bhs.set_sn_at(28, self.exp_stat_sn);
        for (i, b) in self.cdb.iter().enumerate() {
            bhs.set_u8_at(32 + i, *b);
        }
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }

    fn emit_data(&self, out: &mut [u8]) {
        copy_data(out, &self.data);
    }
}

const BIDI_OVERFLOW: u8 = 0x10;
const BIDI_UNDERFLOW: u8 = 0x08;
const OVERFLOW: u8 = 0x04;
const UNDERFLOW: u8 = 0x02;

/// SCSI Response (opcode 0x21).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScsiResponse {
    /// o: bidirectional read residual overflow.
    pub bidi_read_overflow: bool,
    /// u: bidirectional read residual underflow.
    pub bidi_read_underflow: bool,
    /// O: residual overflow.
    pub overflow: bool,
    /// U: residual underflow.
    pub underflow: bool,
    /// iSCSI Response (0x00 command completed at target, 0x01 target failure).
    pub response: u8,
    /// SCSI status (valid when `response` is 0).
    pub status: u8,
    /// Initiator Task Tag.
    pub itt: u32,
    /// SNACK Tag.
    pub snack_tag: u32,
    /// StatSN.
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// ExpDataSN.
    pub exp_data_sn: SerialNumber,
    /// Bidirectional Read Residual Count.
    pub bidi_read_residual_count: u32,
    /// Residual Count.
    pub residual_count: u32,
    /// Sense data (without the 2-byte SenseLength).
    pub sense: Vec<u8>,
    /// Response data following the sense data.
    pub response_data: Vec<u8>,
}

impl PduRepr for ScsiResponse {
    const OPCODE: Opcode = Opcode::ScsiResponse;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        let (sense, response_data) = match data {
            [] => (Vec::new(), Vec::new()),
            [a, b, rest @ ..] => {
                let sense_len = usize::from(u16::from_be_bytes([*a, *b]));
                let sense = rest.get(..sense_len).ok_or(WireError::Truncated {
                    need: sense_len + 2,
                    have: data.len(),
                })?;
                let resp = rest.get(sense_len..).unwrap_or_default();
                (sense.to_vec(), resp.to_vec())
            }
            [_] => return Err(WireError::Truncated { need: 2, have: 1 }),
        };
        let f = bhs.flags();
        Ok(ScsiResponse {
            bidi_read_overflow: f & BIDI_OVERFLOW != 0,
            bidi_read_underflow: f & BIDI_UNDERFLOW != 0,
            overflow: f & OVERFLOW != 0,
            underflow: f & UNDERFLOW != 0,
            response: bhs.u8_at(2),
            status: bhs.u8_at(3),
            itt: bhs.itt(),
            snack_tag: bhs.u32_at(20),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
            exp_data_sn: bhs.sn_at(36),
            bidi_read_residual_count: bhs.u32_at(40),
            residual_count: bhs.u32_at(44),
            sense,
            response_data,
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        let mut f = F_BIT;
        for (set, bit) in [
            (self.bidi_read_overflow, BIDI_OVERFLOW),
            (self.bidi_read_underflow, BIDI_UNDERFLOW),
            (self.overflow, OVERFLOW),
            (self.underflow, UNDERFLOW),
        ] {
            if set {
                f |= bit;
            }
        }
        bhs.set_flags(f);
        bhs.set_u8_at(2, self.response);
        bhs.set_u8_at(3, self.status);
        bhs.set_itt(self.itt);
        bhs.set_u32_at(20, self.snack_tag);
        bhs.set_sn_at(24, self.stat_sn);
        bhs.set_sn_at(28, self.exp_cmd_sn);
        bhs.set_sn_at(32, self.max_cmd_sn);
        bhs.set_sn_at(36, self.exp_data_sn);
        bhs.set_u32_at(40, self.bidi_read_residual_count);
        bhs.set_u32_at(44, self.residual_count);
    }

    /// 0 when there is neither sense nor response data, else `2 + sense + response data`.
    /// Sense data longer than 65535 bytes is truncated to fit SenseLength.
    fn data_len(&self) -> usize {
        if self.sense.is_empty() && self.response_data.is_empty() {
            0
        } else {
            2 + self.sense.len().min(usize::from(u16::MAX)) + self.response_data.len()
        }
    }

    fn emit_data(&self, out: &mut [u8]) {
        if out.is_empty() {
            return;
        }
        let sense = self
            .sense
            .get(..usize::from(u16::MAX))
            .unwrap_or(&self.sense);
        let len = u16::try_from(sense.len()).unwrap_or(u16::MAX).to_be_bytes();
        let mut it = out.iter_mut();
        for (o, s) in (&mut it).zip(len.iter().chain(sense).chain(&self.response_data)) {
            *o = *s;
        }
    }
}
