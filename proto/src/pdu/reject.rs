//! Reject (RFC 7143 §11.17): the target refuses a PDU and returns its header.

use super::{check, copy_data, PduRepr};
use crate::bhs::{enum_with_unknown, Bhs, Opcode, RESERVED_TAG};
use crate::error::WireError;
use crate::serial::SerialNumber;

enum_with_unknown! {
    /// Reason of a Reject (RFC 7143 §11.17.1).
    pub enum RejectReason(u8) {
        /// 0x02: data (payload) digest error.
        DataDigestError = 0x02,
        /// 0x03: SNACK reject.
        SnackReject = 0x03,
        /// 0x04: protocol error.
        ProtocolError = 0x04,
        /// 0x05: command not supported.
        CommandNotSupported = 0x05,
        /// 0x06: immediate command reject, too many immediate commands.
        ImmediateCommandReject = 0x06,
        /// 0x07: task in progress.
        TaskInProgress = 0x07,
        /// 0x08: invalid data ack.
        InvalidDataAck = 0x08,
        /// 0x09: invalid PDU field.
        InvalidPduField = 0x09,
        /// 0x0a: long operation reject, out of resources.
        LongOperationReject = 0x0a,
        /// 0x0b: deprecated (negotiation reset).
        NegotiationReset = 0x0b,
        /// 0x0c: waiting for logout.
        WaitingForLogout = 0x0c,
    }
}

/// Reject (opcode 0x3f). ITT is always 0xffffffff on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Reason.
    pub reason: RejectReason,
    /// StatSN.
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// DataSN/R2TSN (only for data/R2T SNACK rejects).
    pub data_sn: SerialNumber,
    /// The complete header (BHS, normally 48 bytes) of the rejected PDU.
    pub header: Vec<u8>,
}

impl PduRepr for Reject {
    const OPCODE: Opcode = Opcode::Reject;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        Ok(Reject {
            reason: RejectReason::from(bhs.u8_at(2)),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
            data_sn: bhs.sn_at(36),
            header: data.to_vec(),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        bhs.set_flags(0x80);
        bhs.set_u8_at(2, u8::from(self.reason));
        bhs.set_itt(RESERVED_TAG);
        bhs.set_sn_at(24, self.stat_sn);
        bhs.set_sn_at(28, self.exp_cmd_sn);
        bhs.set_sn_at(32, self.max_cmd_sn);
        bhs.set_sn_at(36, self.data_sn);
    }

    fn data_len(&self) -> usize {
        self.header.len()
    }

    fn emit_data(&self, out: &mut [u8]) {
        copy_data(out, &self.header);
    }
}
