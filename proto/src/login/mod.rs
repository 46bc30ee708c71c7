//! The sans-IO login state machine (RFC 7143 §6.3 login phase, §11.12-§11.13 PDUs), one
//! type for both roles.
//!
//! A login walks through SecurityNegotiation (CSG 0), LoginOperationalNegotiation (CSG 1)
//! and ends in FullFeaturePhase (3). A stage is left when the initiator sets T with an NSG and
//! the target answers with T set. CHAP ([`crate::chap`]) runs inside the security stage; the
//! other keys go through [`crate::negotiate`].
//!
//! The machine never touches a socket or a clock: feed it received PDUs with
//! [`LoginFsm::handle_pdu`] and send what [`LoginFsm::poll_transmit`] returns. Randomness
//! (CHAP_I and CHAP_C) comes through [`Random`] so that tests are deterministic. The target
//! asks the [`LoginPolicy`] in its [`TargetConfig`] whether the initiator may log in (ACLs, CHAP credentials, TSIH).
//!
//! Failures are [`LoginError`]s. On the initiator side, a non-zero login status becomes a
//! named variant such as [`LoginError::AuthenticationFailed`] (0x0201); on the target side
//! every error also queues a final Login Response carrying [`LoginError::status`], after
//! which the caller closes the connection.

mod initiator;
mod target;

pub use initiator::{InitiatorAuth, InitiatorConfig, InitiatorLogin};
pub use target::{Admission, LoginContext, LoginPolicy, TargetAuth, TargetConfig, TargetLogin};

use crate::bhs::{Isid, Opcode};
use crate::chap::{ChapError, ChapWarning, Random};
use crate::error::WireError;
use crate::negotiate::{ConnParams, NegotiationError, SessionParams};
use crate::pdu::{LoginStatus, Pdu, Stage};
use crate::serial::SerialNumber;

/// Largest login text we buffer across C-bit continuations (RFC 7143 limits each PDU to
/// 8192 bytes during login; several are allowed, but not without bound).
pub const MAX_LOGIN_TEXT: usize = 64 * 1024;

/// Largest data segment of a Login PDU (RFC 7143 §6.1: 8192 bytes during login).
pub const MAX_LOGIN_SEGMENT: usize = 8192;

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// 0x0201: the target rejected our credentials, or we rejected the initiator's.
    #[error("authentication failed (0x0201)")]
    AuthenticationFailed,
    /// 0x0202: the initiator is not allowed to access this target.
    #[error("initiator not authorized for this target (0x0202)")]
    Forbidden,
    /// 0x0203: no such target.
    #[error("target not found (0x0203)")]
    TargetNotFound,
    /// 0x0204: the target has been removed.
    #[error("target removed (0x0204)")]
    TargetRemoved,
    /// 0x0101/0x0102: the target moved; `address` is its TargetAddress key, if sent.
    #[error("target moved ({status:?}) to {address:?}")]
    Redirected {
        /// The status (temporary or permanent).
        status: LoginStatus,
        /// TargetAddress from the response.
        address: Option<String>,
    },
    /// 0x0207: a required key (InitiatorName, TargetName) is missing.
    #[error("missing parameter: {0}")]
    MissingParameter(&'static str),
    /// 0x0205: no common protocol version.
    #[error("unsupported version")]
    UnsupportedVersion,
    /// Any other non-zero status from the target.
    #[error("login rejected with status {0:?}")]
    Status(LoginStatus),
    /// CHAP failed.
    #[error("CHAP: {0}")]
    Chap(#[from] ChapError),
    /// Text negotiation failed.
    #[error("negotiation: {0}")]
    Negotiation(#[from] NegotiationError),
    /// A PDU or its text could not be parsed.
    #[error("wire: {0}")]
    Wire(#[from] WireError),
    /// A PDU other than a login PDU arrived during login.
    #[error("unexpected {0:?} PDU during login")]
    UnexpectedPdu(Opcode),
    /// The peer broke the login rules of RFC 7143 §6.3.
    #[error("login protocol violation: {0}")]
    Protocol(&'static str),
    /// The state machine already finished or failed.
    #[error("login already finished")]
    Finished,
}

impl LoginError {
    /// Maps a non-success login status to an error.
    pub fn from_status(status: LoginStatus, address: Option<String>) -> Self {
        match status {
            LoginStatus::AuthenticationFailure => LoginError::AuthenticationFailed,
            LoginStatus::AuthorizationFailure => LoginError::Forbidden,
            LoginStatus::NotFound => LoginError::TargetNotFound,
            LoginStatus::TargetRemoved => LoginError::TargetRemoved,
            LoginStatus::UnsupportedVersion => LoginError::UnsupportedVersion,
            LoginStatus::MissingParameter => LoginError::MissingParameter("reported by target"),
            LoginStatus::TargetMovedTemporarily | LoginStatus::TargetMovedPermanently => {
                LoginError::Redirected { status, address }
            }
            other => LoginError::Status(other),
        }
    }

    /// The login status a target reports for this error.
    pub fn status(&self) -> LoginStatus {
        match self {
            LoginError::AuthenticationFailed | LoginError::Chap(_) => {
                LoginStatus::AuthenticationFailure
            }
            LoginError::Forbidden => LoginStatus::AuthorizationFailure,
            LoginError::TargetNotFound => LoginStatus::NotFound,
            LoginError::TargetRemoved => LoginStatus::TargetRemoved,
            LoginError::Redirected { status, .. } | LoginError::Status(status) => *status,
            LoginError::MissingParameter(_) => LoginStatus::MissingParameter,
            LoginError::UnsupportedVersion => LoginStatus::UnsupportedVersion,
            LoginError::UnexpectedPdu(_) => LoginStatus::InvalidDuringLogin,
            LoginError::Negotiation(_)
            | LoginError::Wire(_)
            | LoginError::Protocol(_)
            | LoginError::Finished => LoginStatus::InitiatorError,
        }
    }
}

/// What a successful login produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    /// Negotiated session parameters.
    pub session: SessionParams,
    /// Negotiated connection parameters.
    pub conn: ConnParams,
    /// The ISID.
    pub isid: Isid,
    /// The TSIH assigned by the target.
    pub tsih: u16,
    /// The next CmdSN the initiator uses (the target's ExpCmdSN).
    pub cmd_sn: SerialNumber,
    /// The next StatSN the target uses / the initiator's ExpStatSN.
    pub exp_stat_sn: SerialNumber,
    /// MaxCmdSN from the final response.
    pub max_cmd_sn: SerialNumber,
    /// Warnings to log (e.g. short CHAP secrets).
    pub warnings: Vec<ChapWarning>,
}

/// The coarse state of a login, for logs and callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginState {
    /// In SecurityNegotiation.
    Security,
    /// In LoginOperationalNegotiation.
    Operational,
    /// Login succeeded; the connection is in FullFeaturePhase.
    FullFeature,
    /// Login failed.
    Failed,
}

impl LoginState {
    fn from_stage(s: Stage) -> Self {
        match s {
            Stage::LoginOperationalNegotiation => LoginState::Operational,
            Stage::FullFeaturePhase => LoginState::FullFeature,
            _ => LoginState::Security,
        }
    }
}

/// The login state machine for either role.
#[derive(Debug)]
pub enum LoginFsm {
    /// We are the initiator.
    Initiator(InitiatorLogin),
    /// We are the target.
    Target(TargetLogin),
}

impl LoginFsm {
    /// Feeds a received PDU.
    ///
    /// # Errors
    /// [`LoginError`]; the login is then over. A target still has a final reject response to
    /// send from [`Self::poll_transmit`].
    pub fn handle_pdu(&mut self, pdu: &Pdu, rng: &mut dyn Random) -> Result<(), LoginError> {
        match self {
            LoginFsm::Initiator(i) => i.handle_pdu(pdu, rng),
            LoginFsm::Target(t) => t.handle_pdu(pdu, rng),
        }
    }

    /// The next PDU to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Pdu> {
        match self {
            LoginFsm::Initiator(i) => i.poll_transmit().map(Pdu::from),
            LoginFsm::Target(t) => t.poll_transmit().map(Pdu::from),
        }
    }

    /// The current state.
    pub fn state(&self) -> LoginState {
        match self {
            LoginFsm::Initiator(i) => i.state(),
            LoginFsm::Target(t) => t.state(),
        }
    }

    /// The result, once the state is [`LoginState::FullFeature`].
    pub fn outcome(&self) -> Option<&LoginOutcome> {
        match self {
            LoginFsm::Initiator(i) => i.outcome(),
            LoginFsm::Target(t) => t.outcome(),
        }
    }
}

#[cfg(test)]
mod tests;
