//! Login Request (RFC 7143 §11.12) and Login Response (§11.13).
//!
//! Byte 1 carries T (transit), C (continue), CSG and NSG. The login status is kept as one
//! 16-bit code (`class << 8 | detail`) so that callers can match on named codes such as
//! [`LoginStatus::AuthenticationFailure`] (0x0201).

use super::{check, copy_data, PduRepr};
use crate::bhs::{enum_with_unknown, Bhs, Isid, Opcode};
use crate::error::WireError;
use crate::serial::SerialNumber;

/// The only iSCSI version defined (Version-max/Version-min/Version-active = 0x00).
pub const VERSION: u8 = 0x00;

const T_BIT: u8 = 0x80;
const C_BIT: u8 = 0x40;

enum_with_unknown! {
    /// A login stage, as carried in CSG and NSG (RFC 7143 §11.12.3).
    pub enum Stage(u8) {
        /// 0: SecurityNegotiation.
        SecurityNegotiation = 0,
        /// 1: LoginOperationalNegotiation.
        LoginOperationalNegotiation = 1,
        /// 3: FullFeaturePhase.
        FullFeaturePhase = 3,
    }
}

enum_with_unknown! {
    /// Login Status-Class and Status-Detail as one code (RFC 7143 §11.13.5).
    pub enum LoginStatus(u16) {
        /// 0x0000: login is proceeding OK.
        Success = 0x0000,
        /// 0x0101: the target has moved temporarily.
        TargetMovedTemporarily = 0x0101,
        /// 0x0102: the target has moved permanently.
        TargetMovedPermanently = 0x0102,
        /// 0x0200: miscellaneous initiator error.
        InitiatorError = 0x0200,
        /// 0x0201: authentication failed.
        AuthenticationFailure = 0x0201,
        /// 0x0202: the initiator is not authorized to access the target.
        AuthorizationFailure = 0x0202,
        /// 0x0203: the target name does not exist.
        NotFound = 0x0203,
        /// 0x0204: the target has been removed.
        TargetRemoved = 0x0204,
        /// 0x0205: unsupported version.
        UnsupportedVersion = 0x0205,
        /// 0x0206: too many connections.
        TooManyConnections = 0x0206,
        /// 0x0207: missing parameter.
        MissingParameter = 0x0207,
        /// 0x0208: the connection cannot be included in the session.
        CantIncludeInSession = 0x0208,
        /// 0x0209: session type not supported.
        SessionTypeNotSupported = 0x0209,
        /// 0x020a: the session does not exist.
        SessionDoesNotExist = 0x020a,
        /// 0x020b: invalid request during login.
        InvalidDuringLogin = 0x020b,
        /// 0x0300: target hardware or software error.
        TargetError = 0x0300,
        /// 0x0301: service unavailable.
        ServiceUnavailable = 0x0301,
        /// 0x0302: out of resources.
        OutOfResources = 0x0302,
    }
}

impl LoginStatus {
    /// Status-Class (0 success, 1 redirection, 2 initiator error, 3 target error).
    pub fn class(self) -> u8 {
        (u16::from(self) >> 8) as u8
    }

    /// Status-Detail.
    pub fn detail(self) -> u8 {
        (u16::from(self) & 0xff) as u8
    }

    /// Builds the code from class and detail bytes.
    pub fn from_parts(class: u8, detail: u8) -> Self {
        LoginStatus::from(u16::from_be_bytes([class, detail]))
    }
}

fn stage_bits(s: Stage) -> u8 {
    u8::from(s) & 0x03
}

fn login_flags(transit: bool, cont: bool, csg: Stage, nsg: Stage) -> u8 {
    (if transit { T_BIT } else { 0 })
        | (if cont { C_BIT } else { 0 })
        | (stage_bits(csg) << 2)
        | stage_bits(nsg)
}

/// Login Request (opcode 0x03, always immediate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// T: the initiator is ready to move to `nsg`.
    pub transit: bool,
    /// C: the text is continued in the next PDU.
    pub cont: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage (meaningful only with `transit`).
    pub nsg: Stage,
    /// Version-max.
    pub version_max: u8,
    /// Version-min.
    pub version_min: u8,
    /// Initiator Session ID.
    pub isid: Isid,
    /// Target Session Identifying Handle (0 for a new session).
    pub tsih: u16,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Connection ID.
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: SerialNumber,
    /// ExpStatSN.
    pub exp_stat_sn: SerialNumber,
    /// Text key=value pairs (see [`crate::text`]).
    pub data: Vec<u8>,
}

impl PduRepr for LoginRequest {
    const OPCODE: Opcode = Opcode::LoginRequest;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        let f = bhs.flags();
        let b = bhs.bytes_8_15();
        Ok(LoginRequest {
            transit: f & T_BIT != 0,
            cont: f & C_BIT != 0,
            csg: Stage::from((f >> 2) & 0x03),
            nsg: Stage::from(f & 0x03),
            version_max: bhs.u8_at(2),
            version_min: bhs.u8_at(3),
            isid: Isid([b[0], b[1], b[2], b[3], b[4], b[5]]),
            tsih: bhs.u16_at(14),
            itt: bhs.itt(),
            cid: bhs.u16_at(20),
            cmd_sn: bhs.sn_at(24),
            exp_stat_sn: bhs.sn_at(28),
            data: data.to_vec(),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, true);
        bhs.set_flags(login_flags(self.transit, self.cont, self.csg, self.nsg));
        bhs.set_u8_at(2, self.version_max);
        bhs.set_u8_at(3, self.version_min);
        for (i, b) in self.isid.0.iter().enumerate() {
            bhs.set_u8_at(8 + i, *b);
        }
        bhs.set_u16_at(14, self.tsih);
        bhs.set_itt(self.itt);
        bhs.set_u16_at(20, self.cid);
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

/// Login Response (opcode 0x23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginResponse {
    /// T: the target agrees to move to `nsg`.
    pub transit: bool,
    /// C: the text is continued in the next PDU.
    pub cont: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage.
    pub nsg: Stage,
    /// Version-max.
    pub version_max: u8,
    /// Version-active.
    pub version_active: u8,
    /// Initiator Session ID (echoed).
    pub isid: Isid,
    /// Target Session Identifying Handle (set on the final response).
    pub tsih: u16,
    /// Initiator Task Tag (echoed).
    pub itt: u32,
    /// StatSN.
    pub stat_sn: SerialNumber,
    /// ExpCmdSN.
    pub exp_cmd_sn: SerialNumber,
    /// MaxCmdSN.
    pub max_cmd_sn: SerialNumber,
    /// Status-Class and Status-Detail.
    pub status: LoginStatus,
    /// Text key=value pairs.
    pub data: Vec<u8>,
}

impl PduRepr for LoginResponse {
    const OPCODE: Opcode = Opcode::LoginResponse;

    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError> {
        let data = check(bhs, Self::OPCODE, data)?;
        let f = bhs.flags();
        let b = bhs.bytes_8_15();
        Ok(LoginResponse {
            transit: f & T_BIT != 0,
            cont: f & C_BIT != 0,
            csg: Stage::from((f >> 2) & 0x03),
            nsg: Stage::from(f & 0x03),
            version_max: bhs.u8_at(2),
            version_active: bhs.u8_at(3),
            isid: Isid([b[0], b[1], b[2], b[3], b[4], b[5]]),
            tsih: bhs.u16_at(14),
            itt: bhs.itt(),
            stat_sn: bhs.sn_at(24),
            exp_cmd_sn: bhs.sn_at(28),
            max_cmd_sn: bhs.sn_at(32),
            status: LoginStatus::from(bhs.u16_at(36)),
            data: data.to_vec(),
        })
    }

    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>) {
        bhs.set_opcode(Self::OPCODE, false);
        bhs.set_flags(login_flags(self.transit, self.cont, self.csg, self.nsg));
        bhs.set_u8_at(2, self.version_max);
        bhs.set_u8_at(3, self.version_active);
        for (i, b) in self.isid.0.iter().enumerate() {
            bhs.set_u8_at(8 + i, *b);
        }
        bhs.set_u16_at(14, self.tsih);
        bhs.set_itt(self.itt);
        bhs.set_sn_at(24, self.stat_sn);
        bhs.set_sn_at(28, self.exp_cmd_sn);
        bhs.set_sn_at(32, self.max_cmd_sn);
        bhs.set_u16_at(36, u16::from(self.status));
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }

    fn emit_data(&self, out: &mut [u8]) {
        copy_data(out, &self.data);
    }
}
