//! The target side of the login phase.

use core::fmt;
use std::collections::VecDeque;

use super::{LoginError, LoginOutcome, LoginState, MAX_LOGIN_SEGMENT, MAX_LOGIN_TEXT};
use crate::bhs::Isid;
use crate::chap::{ChapAlgorithm, ChapTarget, Credentials, Random};
use crate::negotiate::{LocalParams, Negotiator, Role};
use crate::pdu::{LoginRequest, LoginResponse, LoginStatus, Pdu, Stage, VERSION};
use crate::serial::SerialNumber;
use crate::text::{Key, TextAccumulator, TextPairs, REJECT};

/// How the target authenticates one initiator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetAuth {
    /// No authentication (`AuthMethod=None`).
    None,
    /// CHAP is required.
    Chap {
        /// The initiator's expected CHAP_N and secret.
        expected: Credentials,
        /// Our name and secret if the initiator asks for mutual CHAP.
        mutual: Option<Credentials>,
    },
}

/// What the target learned from the first Login Request, for the [`LoginPolicy`].
#[derive(Debug, Clone, Copy)]
pub struct LoginContext<'a> {
    /// InitiatorName.
    pub initiator_name: &'a str,
    /// TargetName (`None` in a discovery session).
    pub target_name: Option<&'a str>,
    /// SessionType=Discovery.
    pub discovery: bool,
    /// ISID.
    pub isid: Isid,
    /// TSIH from the request (0 for a new session).
    pub tsih: u16,
    /// CID.
    pub cid: u16,
}

/// The policy's answer when the login may proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Authentication to require.
    pub auth: TargetAuth,
    /// TSIH for a new session (ignored when the request carries a TSIH).
    pub tsih: u16,
    /// TargetAlias to declare, if any.
    pub target_alias: Option<String>,
    /// TargetPortalGroupTag to declare in the first response of a normal session.
    pub target_portal_group_tag: u16,
}

/// Target-side access control: ACLs by initiator name, CHAP credentials, TSIH allocation.
pub trait LoginPolicy {
    /// Decides whether the login may proceed. Return e.g. [`LoginStatus::NotFound`]
    /// (0x0203) for an unknown target or [`LoginStatus::AuthorizationFailure`] (0x0202) for
    /// an initiator outside the ACL.
    ///
    /// # Errors
    /// The login status to refuse the login with.
    fn admit(&self, ctx: &LoginContext<'_>) -> Result<Admission, LoginStatus>;
}

/// Target configuration.
pub struct TargetConfig {
    /// Operational preferences (`auth_methods` is set from the [`Admission`]).
    pub params: LocalParams,
    /// CHAP algorithms we accept.
    pub chap_algorithms: Vec<ChapAlgorithm>,
    /// StatSN of the first Login Response.
    pub stat_sn: SerialNumber,
    /// Size of the CmdSN window granted at login (MaxCmdSN = ExpCmdSN + window - 1).
    pub cmd_window: u32,
    /// The access policy.
    pub policy: Box<dyn LoginPolicy + Send>,
}

impl fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetConfig")
            .field("params", &self.params)
            .field("chap_algorithms", &self.chap_algorithms)
            .field("stat_sn", &self.stat_sn)
            .field("cmd_window", &self.cmd_window)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Admitted {
    chap: Option<ChapTarget>,
    tsih: u16,
    negotiator: Negotiator,
}

/// The target's login state machine.
#[derive(Debug)]
pub struct TargetLogin {
    cfg: TargetConfig,
    stage: Stage,
    state: LoginState,
    isid: Isid,
    tsih: u16,
    cid: u16,
    stat_sn: SerialNumber,
    exp_cmd_sn: SerialNumber,
    admitted: Option<Admitted>,
    first: bool,
    declared: bool,
    pending_first: TextPairs,
    acc: TextAccumulator,
    tx: VecDeque<LoginResponse>,
    outcome: Option<LoginOutcome>,
}

impl TargetLogin {
    /// A target waiting for the first Login Request.
    pub fn new(cfg: TargetConfig) -> Self {
        TargetLogin {
            stat_sn: cfg.stat_sn,
            cfg,
            stage: Stage::SecurityNegotiation,
            state: LoginState::Security,
            isid: Isid::default(),
            tsih: 0,
            cid: 0,
            exp_cmd_sn: SerialNumber(0),
            admitted: None,
            first: true,
            declared: false,
            pending_first: TextPairs::new(),
            acc: TextAccumulator::new(MAX_LOGIN_TEXT),
            tx: VecDeque::new(),
            outcome: None,
        }
    }

    /// The next Login Response to send.
    pub fn poll_transmit(&mut self) -> Option<LoginResponse> {
        self.tx.pop_front()
    }

    /// The current state.
    pub fn state(&self) -> LoginState {
        self.state
    }

    /// The result after a successful login.
    pub fn outcome(&self) -> Option<&LoginOutcome> {
        self.outcome.as_ref()
    }

    /// Feeds a received PDU (must be a Login Request). On error a final Login Response with
    /// the matching status is queued; send it, then close the connection.
    ///
    /// # Errors
    /// [`LoginError`]; see [`LoginError::status`] for the status sent.
    pub fn handle_pdu(&mut self, pdu: &Pdu, rng: &mut dyn Random) -> Result<(), LoginError> {
        if matches!(self.state, LoginState::Failed | LoginState::FullFeature) {
            return Err(LoginError::Finished);
        }
        let (result, itt) = match pdu {
            Pdu::LoginRequest(req) => (self.handle_request(req, rng), req.itt),
            other => (Err(LoginError::UnexpectedPdu(other.opcode())), 0),
        };
        if let Err(e) = &result {
            self.tx.clear();
            self.respond(
                itt,
                e.status(),
                false,
                Stage::SecurityNegotiation,
                TextPairs::new(),
            )?;
            self.state = LoginState::Failed;
        }
        result
    }

    fn respond(
        &mut self,
        itt: u32,
        status: LoginStatus,
        transit: bool,
        nsg: Stage,
        text: TextPairs,
    ) -> Result<(), LoginError> {
        let bytes = text.to_bytes()?;
        if bytes.len() > MAX_LOGIN_SEGMENT {
            return Err(LoginError::Protocol("login response text too long"));
        }
        let max_cmd_sn = self.exp_cmd_sn.wrapping_add(self.cfg.cmd_window.max(1) - 1);
        self.tx.push_back(LoginResponse {
            transit,
            cont: false,
            csg: self.stage,
            nsg: if transit {
                nsg
            } else {
                Stage::SecurityNegotiation
            },
            version_max: VERSION,
            version_active: VERSION,
            isid: self.isid,
            // 0 until the final response of a new session; echoed when the initiator
            // logs in to an existing session.
            tsih: self.tsih,
            itt,
            stat_sn: self.stat_sn,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn,
            status,
            data: bytes,
        });
        self.stat_sn = self.stat_sn.next();
        Ok(())
    }

    fn handle_request(
        &mut self,
        req: &LoginRequest,
        rng: &mut dyn Random,
    ) -> Result<(), LoginError> {
        if req.version_min > VERSION {
            return Err(LoginError::UnsupportedVersion);
        }
        if self.first {
            self.first = false;
            self.isid = req.isid;
            self.tsih = req.tsih;
            self.cid = req.cid;
            self.stage = match req.csg {
                s @ (Stage::SecurityNegotiation | Stage::LoginOperationalNegotiation) => s,
                _ => return Err(LoginError::Protocol("first request in an invalid stage")),
            };
            self.state = LoginState::from_stage(self.stage);
        } else if req.isid != self.isid || req.tsih != self.tsih || req.cid != self.cid {
            return Err(LoginError::Protocol(
                "ISID, TSIH or CID changed during login",
            ));
        } else if req.csg != self.stage {
            return Err(LoginError::Protocol("CSG differs from the current stage"));
        }
        self.exp_cmd_sn = req.cmd_sn;
        if req.transit && req.cont {
            return Err(LoginError::Protocol("T and C both set"));
        }
        let Some(text) = self.acc.push(&req.data, req.cont)? else {
            return self.respond(
                req.itt,
                LoginStatus::Success,
                false,
                self.stage,
                TextPairs::new(),
            );
        };
        let mut pairs = TextPairs::parse(&text)?;
        let chap_pairs = pairs.take_where(Key::is_chap);
        let mut admitted = match self.admitted.take() {
            Some(a) => a,
            None => self.admit(&pairs)?,
        };
        let result = self.step(req, &mut admitted, pairs, chap_pairs, rng);
        self.admitted = Some(admitted);
        result
    }

    fn admit(&mut self, pairs: &TextPairs) -> Result<Admitted, LoginError> {
        let initiator_name = pairs
            .get(&Key::InitiatorName)
            .ok_or(LoginError::MissingParameter("InitiatorName"))?;
        let discovery = match pairs.get(&Key::SessionType) {
            None | Some("Normal") => false,
            Some("Discovery") => true,
            Some(_) => return Err(LoginError::Status(LoginStatus::SessionTypeNotSupported)),
        };
        let target_name = pairs.get(&Key::TargetName);
        if !discovery && target_name.is_none() {
            return Err(LoginError::MissingParameter("TargetName"));
        }
        let ctx = LoginContext {
            initiator_name,
            target_name,
            discovery,
            isid: self.isid,
            tsih: self.tsih,
            cid: self.cid,
        };
        let adm = self
            .cfg
            .policy
            .admit(&ctx)
            .map_err(|s| LoginError::from_status(s, None))?;
        let (chap, method) = match adm.auth {
            TargetAuth::None => (None, "None"),
            TargetAuth::Chap { expected, mutual } => {
                let chap = ChapTarget::new(&self.cfg.chap_algorithms, expected, mutual)
                    .map_err(|_| LoginError::Status(LoginStatus::TargetError))?;
                (Some(chap), "CHAP")
            }
        };
        let params = LocalParams {
            auth_methods: vec![method.to_owned()],
            ..self.cfg.params.clone()
        };
        let mut negotiator = Negotiator::new(Role::Target, params);
        // Our first response declares the portal group tag and alias (RFC 7143 §13.9).
        let mut first = TextPairs::new();
        if !discovery {
            first.extend(negotiator.declare(
                Key::TargetPortalGroupTag,
                &adm.target_portal_group_tag.to_string(),
            ));
        }
        if let Some(alias) = &adm.target_alias {
            first.extend(negotiator.declare(Key::TargetAlias, alias));
        }
        self.pending_first = first;
        Ok(Admitted {
            chap,
            tsih: adm.tsih,
            negotiator,
        })
    }

    fn step(
        &mut self,
        req: &LoginRequest,
        adm: &mut Admitted,
        pairs: TextPairs,
        chap_pairs: TextPairs,
        rng: &mut dyn Random,
    ) -> Result<(), LoginError> {
        let mut answers = core::mem::take(&mut self.pending_first);
        answers.extend(adm.negotiator.handle(&pairs)?);
        if answers.get(&Key::AuthMethod) == Some(REJECT) {
            return Err(LoginError::AuthenticationFailed);
        }
        let chap_pending = adm.chap.as_ref().is_some_and(|c| !c.is_done());
        match self.stage {
            Stage::SecurityNegotiation if !chap_pairs.is_empty() => {
                let Some(chap) = adm.chap.as_mut() else {
                    return Err(LoginError::Protocol("CHAP keys but CHAP is not in use"));
                };
                if adm.negotiator.settled(&Key::AuthMethod) != Some("CHAP") {
                    return Err(LoginError::Protocol("CHAP keys before AuthMethod=CHAP"));
                }
                answers.extend(chap.handle(&chap_pairs, rng)?);
            }
            Stage::SecurityNegotiation => {}
            _ if !chap_pairs.is_empty() => {
                return Err(LoginError::Protocol("CHAP key outside security stage"));
            }
            // Authentication is required but the initiator skipped the security stage.
            _ if chap_pending => return Err(LoginError::AuthenticationFailed),
            _ => {}
        }
        let to_ffp = req.transit && req.nsg == Stage::FullFeaturePhase;
        if !self.declared && (self.stage == Stage::LoginOperationalNegotiation || to_ffp) {
            self.declared = true;
            answers.extend(adm.negotiator.offer(&[Key::MaxRecvDataSegmentLength]));
        }
        // An initiator may ask to transit before CHAP has run (e.g. T=1 with
        // AuthMethod=CHAP,None); answering T=0 keeps it in the security stage (§6.3).
        if !req.transit || adm.chap.as_ref().is_some_and(|c| !c.is_done()) {
            return self.respond(req.itt, LoginStatus::Success, false, self.stage, answers);
        }
        match (self.stage, req.nsg) {
            (Stage::SecurityNegotiation, Stage::LoginOperationalNegotiation) => {
                self.respond(req.itt, LoginStatus::Success, true, req.nsg, answers)?;
                self.stage = Stage::LoginOperationalNegotiation;
                self.state = LoginState::Operational;
                Ok(())
            }
            (_, Stage::FullFeaturePhase) => {
                if self.tsih == 0 {
                    self.tsih = adm.tsih;
                }
                self.respond(req.itt, LoginStatus::Success, true, req.nsg, answers)?;
                let (session, conn) = adm.negotiator.finish();
                let warnings = adm
                    .chap
                    .as_ref()
                    .map(ChapTarget::warnings)
                    .unwrap_or_default();
                self.stage = Stage::FullFeaturePhase;
                self.state = LoginState::FullFeature;
                self.outcome = Some(LoginOutcome {
                    session,
                    conn,
                    isid: self.isid,
                    tsih: self.tsih,
                    cmd_sn: self.exp_cmd_sn,
                    exp_stat_sn: self.stat_sn,
                    max_cmd_sn: self.exp_cmd_sn.wrapping_add(self.cfg.cmd_window.max(1) - 1),
                    warnings,
                });
                Ok(())
            }
            _ => Err(LoginError::Protocol("invalid NSG")),
        }
    }
}
