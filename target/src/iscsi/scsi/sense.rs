//! Fixed-format sense data (SPC-4 4.5.3) and the sense codes this target reports.
//!
//! We always return fixed format (response code 0x70, current errors): every initiator we care
//! about parses it, and D_SENSE in the control mode page is reported as 0.

/// Sense keys (SPC-4 table 27).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SenseKey {
    /// 0x0: no error to report.
    NoSense,
    /// 0x2: the logical unit is not ready.
    NotReady,
    /// 0x3: unrecovered medium error.
    MediumError,
    /// 0x4: hardware failure.
    HardwareError,
    /// 0x5: bad CDB or parameter list.
    IllegalRequest,
    /// 0x6: unit attention condition.
    UnitAttention,
    /// 0x7: write protected medium.
    DataProtect,
    /// 0xA: an EXTENDED COPY was aborted by an error in a copy target or a segment.
    CopyAborted,
    /// 0xB: command aborted.
    AbortedCommand,
    /// 0xE: source data did not match the medium.
    Miscompare,
}

impl SenseKey {
    /// The 4-bit code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::NoSense => 0x0,
            Self::NotReady => 0x2,
            Self::MediumError => 0x3,
            Self::HardwareError => 0x4,
            Self::IllegalRequest => 0x5,
            Self::UnitAttention => 0x6,
            Self::DataProtect => 0x7,
            Self::CopyAborted => 0xA,
            Self::AbortedCommand => 0xB,
            Self::Miscompare => 0xE,
        }
    }
}

/// Length of the fixed-format sense data we emit.
pub const SENSE_LEN: usize = 18;

/// One sense condition: key, additional sense code and qualifier, and optional fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Sense key.
    pub key: SenseKey,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// INFORMATION field; when set, the VALID bit is set too.
    pub information: Option<u32>,
    /// Sense-key specific field pointer: (`true` for CDB / `false` for parameter data, byte).
    pub field_pointer: Option<(bool, u16)>,
}

impl Sense {
    /// A sense condition with no INFORMATION and no field pointer.
    pub const fn new(key: SenseKey, asc: u8, ascq: u8) -> Self {
        Self {
            key,
            asc,
            ascq,
            information: None,
            field_pointer: None,
        }
    }

    /// The same condition with the INFORMATION field set.
    #[must_use]
    pub const fn with_information(mut self, info: u32) -> Self {
        self.information = Some(info);
        self
    }

    /// The same condition pointing at byte `byte` of the CDB.
    #[must_use]
    pub const fn in_cdb(mut self, byte: u16) -> Self {
        self.field_pointer = Some((true, byte));
        self
    }

    /// The same condition pointing at byte `byte` of the parameter list.
    #[must_use]
    pub const fn in_param(mut self, byte: u16) -> Self {
        self.field_pointer = Some((false, byte));
        self
    }

    /// Encodes as 18 bytes of fixed-format sense data (response code 0x70).
    pub fn to_fixed(&self) -> [u8; SENSE_LEN] {
        let mut s = [0u8; SENSE_LEN];
        s[0] = 0x70;
        if let Some(info) = self.information {
            s[0] |= 0x80;
            s[3..7].copy_from_slice(&info.to_be_bytes());
        }
        s[2] = self.key.code();
        s[7] = (SENSE_LEN - 8) as u8;
        s[12] = self.asc;
        s[13] = self.ascq;
        if let Some((cdb, field)) = self.field_pointer {
            s[15] = 0x80 | if cdb { 0x40 } else { 0 };
            s[16..18].copy_from_slice(&field.to_be_bytes());
        }
        s
    }
}

use SenseKey::*;

/// NO SENSE, no additional information (REQUEST SENSE with nothing pending).
pub const NO_SENSE: Sense = Sense::new(NoSense, 0x00, 0x00);
/// ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
pub const INVALID_OPCODE: Sense = Sense::new(IllegalRequest, 0x20, 0x00);
/// ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE.
pub const LBA_OUT_OF_RANGE: Sense = Sense::new(IllegalRequest, 0x21, 0x00);
/// ILLEGAL REQUEST, INVALID FIELD IN CDB.
pub const INVALID_FIELD_IN_CDB: Sense = Sense::new(IllegalRequest, 0x24, 0x00);
/// ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED.
pub const LUN_NOT_SUPPORTED: Sense = Sense::new(IllegalRequest, 0x25, 0x00);
/// ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT: the Data-Out the initiator
/// sent does not match what the CDB asks for.
pub const INVALID_FIELD_IN_IU: Sense = Sense::new(IllegalRequest, 0x0E, 0x03);
/// ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED.
pub const REMOVAL_PREVENTED: Sense = Sense::new(IllegalRequest, 0x53, 0x02);
/// ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST.
pub const INVALID_FIELD_IN_PARAM: Sense = Sense::new(IllegalRequest, 0x26, 0x00);
/// ILLEGAL REQUEST, INVALID RELEASE OF PERSISTENT RESERVATION.
pub const INVALID_RELEASE: Sense = Sense::new(IllegalRequest, 0x26, 0x04);
/// ILLEGAL REQUEST, PARAMETER LIST LENGTH ERROR.
pub const PARAM_LIST_LENGTH: Sense = Sense::new(IllegalRequest, 0x1A, 0x00);
/// ILLEGAL REQUEST, SAVING PARAMETERS NOT SUPPORTED.
pub const SAVING_NOT_SUPPORTED: Sense = Sense::new(IllegalRequest, 0x39, 0x00);
/// DATA PROTECT, WRITE PROTECTED.
pub const WRITE_PROTECTED: Sense = Sense::new(DataProtect, 0x27, 0x00);
/// DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (backing file system is full).
pub const SPACE_ALLOCATION_FAILED: Sense = Sense::new(DataProtect, 0x27, 0x07);
/// MEDIUM ERROR, UNRECOVERED READ ERROR.
pub const READ_ERROR: Sense = Sense::new(MediumError, 0x11, 0x00);
/// MEDIUM ERROR, WRITE ERROR.
pub const WRITE_ERROR: Sense = Sense::new(MediumError, 0x0C, 0x00);
/// MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION.
pub const MISCOMPARE: Sense = Sense::new(Miscompare, 0x1D, 0x00);
/// NOT READY, MEDIUM NOT PRESENT (removable LUN after an eject).
pub const MEDIUM_NOT_PRESENT: Sense = Sense::new(NotReady, 0x3A, 0x00);
/// UNIT ATTENTION, POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
pub const UA_POWER_ON: Sense = Sense::new(UnitAttention, 0x29, 0x00);
/// UNIT ATTENTION after a LOGICAL UNIT RESET. SAM-5 allows the generic POWER ON, RESET, OR
/// BUS DEVICE RESET OCCURRED code, which initiators (and libiscsi's test helpers) treat as
/// benign; the more specific 29/03 is not.
pub const UA_LU_RESET: Sense = UA_POWER_ON;
/// UNIT ATTENTION, MODE PARAMETERS CHANGED.
pub const UA_MODE_CHANGED: Sense = Sense::new(UnitAttention, 0x2A, 0x01);
/// UNIT ATTENTION, RESERVATIONS PREEMPTED.
pub const UA_RESERVATIONS_PREEMPTED: Sense = Sense::new(UnitAttention, 0x2A, 0x03);
/// UNIT ATTENTION, RESERVATIONS RELEASED.
pub const UA_RESERVATIONS_RELEASED: Sense = Sense::new(UnitAttention, 0x2A, 0x04);
/// UNIT ATTENTION, REGISTRATIONS PREEMPTED.
pub const UA_REGISTRATIONS_PREEMPTED: Sense = Sense::new(UnitAttention, 0x2A, 0x05);
/// UNIT ATTENTION, CAPACITY DATA HAS CHANGED.
pub const UA_CAPACITY_CHANGED: Sense = Sense::new(UnitAttention, 0x2A, 0x09);
/// ILLEGAL REQUEST, OPERATION IN PROGRESS (an EXTENDED COPY with the same list identifier is
/// still running).
pub const OPERATION_IN_PROGRESS: Sense = Sense::new(IllegalRequest, 0x00, 0x16);
/// ILLEGAL REQUEST, TOO MANY TARGET DESCRIPTORS (EXTENDED COPY).
pub const TOO_MANY_TARGET_DESCRIPTORS: Sense = Sense::new(IllegalRequest, 0x26, 0x06);
/// ILLEGAL REQUEST, UNSUPPORTED TARGET DESCRIPTOR TYPE CODE (EXTENDED COPY).
pub const UNSUPPORTED_TARGET_DESCRIPTOR: Sense = Sense::new(IllegalRequest, 0x26, 0x07);
/// ILLEGAL REQUEST, TOO MANY SEGMENT DESCRIPTORS (EXTENDED COPY).
pub const TOO_MANY_SEGMENT_DESCRIPTORS: Sense = Sense::new(IllegalRequest, 0x26, 0x08);
/// ILLEGAL REQUEST, UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE (EXTENDED COPY).
pub const UNSUPPORTED_SEGMENT_DESCRIPTOR: Sense = Sense::new(IllegalRequest, 0x26, 0x09);
/// COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE: a target descriptor names no logical unit
/// this copy manager can reach, or a segment names a target descriptor that does not exist.
pub const COPY_TARGET_NOT_REACHABLE: Sense = Sense::new(CopyAborted, 0x0D, 0x02);
/// COPY ABORTED, INCORRECT COPY TARGET DEVICE TYPE (target descriptor is not a block device).
pub const INCORRECT_COPY_TARGET_TYPE: Sense = Sense::new(CopyAborted, 0x0D, 0x03);
/// COPY ABORTED, no additional sense information: a segment addresses blocks beyond the end of
/// its copy target, or reading or writing a copy target failed.
pub const COPY_SEGMENT_FAILED: Sense = Sense::new(CopyAborted, 0x00, 0x00);
/// ABORTED COMMAND, no additional information (used by transports).
pub const ABORTED: Sense = Sense::new(AbortedCommand, 0x00, 0x00);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_format_layout() {
        let s = MISCOMPARE.with_information(0x1234).to_fixed();
        #[rustfmt::skip]
        let want = [
            0xF0, 0, 0x0E,          // VALID | 0x70, segment, key MISCOMPARE
            0, 0, 0x12, 0x34,       // INFORMATION
            10,                     // additional length
            0, 0, 0, 0,             // command-specific
            0x1D, 0x00,             // ASC, ASCQ
            0, 0, 0, 0,             // FRU, sense-key specific
        ];
        assert_eq!(s, want);
        let s = INVALID_FIELD_IN_CDB.in_cdb(2).to_fixed();
        assert_eq!(s[0], 0x70);
        assert_eq!(s[2], 5);
        assert_eq!(&s[12..18], &[0x24, 0, 0, 0xC0, 0, 2]);
        let s = INVALID_FIELD_IN_PARAM.in_param(20).to_fixed();
        assert_eq!(&s[15..18], &[0x80, 0, 20]);
        for k in [
            NoSense,
            NotReady,
            HardwareError,
            UnitAttention,
            CopyAborted,
            AbortedCommand,
        ] {
            assert!(k.code() < 16);
        }
    }
}
