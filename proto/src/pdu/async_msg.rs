//! Asynchronous Message (RFC 7143 §11.9): target-initiated events.

use super::{check, copy_data, PduRepr};
use crate::bhs::{enum_with_unknown, Bhs, Lun, Opcode, RESERVED_TAG};
use crate::error::WireError;
use crate::serial::SerialNumber;

enum_with_unknown! {
    /// AsyncEvent (RFC 7143 §11.9.1).
    pub enum AsyncEvent(u8) {
        /// 0: SCSI asynchronous event, sense data in the data segment.
        ScsiEvent = 0,
        /// 1: the target requests a logout.
        LogoutRequested = 1,
        /// 2: the target will drop a connection.
        ConnectionDrop = 2,
        /// 3: the target will drop all connections of the session.
        SessionDrop = 3,
        /// 4: the target requests parameter negotiation.
        Renegotiate = 4,
        /// 5: the target will terminate all connections on the portal (RFC 7143 new).
        PortalDrop = 5,
        /// 255: vendor-specific.
        VendorSpecific = 255,
    }
}

/// Asynchronous Message (opcode 0x32). ITT is always 0xffffffff on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncMessage {
    /// LUN (valid for SCSI events).
    pub lun: Lun,
    /// StatSN.
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// AsyncEvent.
    pub event: AsyncEvent,
    /// AsyncVCode.
    pub vcode: u8,
    /// Parameter1.
    pub parameter1: u16,
    /// Parameter2.
    pub parameter2: u16,
    /// Parameter3.
    pub parameter3: u16,
    /// Sense data and iSCSI event data, raw.
    pub data: Vec<u8>,
}

impl PduRepr for AsyncMessage {
    const OPCODE: Opcode = Opcode::AsyncMessage;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        Ok(AsyncMessage {
            lun: bhs.lun(),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
            event: AsyncEvent::from(bhs.u8_at(36)),
            vcode: bhs.u8_at(37),
            parameter1: bhs.u16_at(38),
            parameter2: bhs.u16_at(40),
            parameter3: bhs.u16_at(42),
            data: data.to_vec(),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        bhs.set_flags(0x80);
        bhs.set_lun(self.lun);
        bhs.set_itt(RESERVED_TAG);
        bhs.set_sn_at(24, self.stat_sn);
        bhs.set_sn_at(28, self.exp_cmd_sn);
        bhs.set_sn_at(32, self.max_cmd_sn);
        bhs.set_u8_at(36, u8::from(self.event));
        bhs.set_u8_at(37, self.vcode);
        bhs.set_u16_at(38, self.parameter1);
        bhs.set_u16_at(40, self.parameter2);
        bhs.set_u16_at(42, self.parameter3);
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }

    fn emit_data(&self, out: &mut [u8]) {
        copy_data(out, &self.data);
    }
}
