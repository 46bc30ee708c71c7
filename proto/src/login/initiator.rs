//! The initiator side of the login phase.

use std::collections::VecDeque;

use super::{LoginError, LoginOutcome, LoginState, MAX_LOGIN_SEGMENT, MAX_LOGIN_TEXT};
use crate::bhs::Isid;
use crate::chap::{ChapAlgorithm, ChapError, ChapInitiator, Credentials, Random};
use crate::negotiate::{LocalParams, Negotiator, Role};
use crate::pdu::{LoginRequest, LoginResponse, LoginStatus, Pdu, Stage, VERSION};
use crate::serial::SerialNumber;
use crate::text::{Key, TextAccumulator, TextPairs};

/// How the initiator authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitiatorAuth {
    /// `AuthMethod=None`.
    None,
    /// `AuthMethod=CHAP`.
    Chap {
        /// CHAP_A values to offer, in preference order.
        algorithms: Vec<ChapAlgorithm>,
        /// Our user name and secret.
        creds: Credentials,
        /// The target's expected name and secret, for mutual CHAP.
        mutual: Option<Credentials>,
    },
}

/// Everything the initiator needs to log in.
#[derive(Debug, Clone)]
pub struct InitiatorConfig {
    /// InitiatorName.
    pub initiator_name: String,
    /// InitiatorAlias, if any.
    pub initiator_alias: Option<String>,
    /// TargetName; `None` makes this a discovery session.
    pub target_name: Option<String>,
    /// ISID.
    pub isid: Isid,
    /// TSIH: 0 for a new session.
    pub tsih: u16,
    /// CID.
    pub cid: u16,
    /// ITT used by all Login Requests.
    pub itt: u32,
    /// CmdSN of the Login Requests.
    pub cmd_sn: SerialNumber,
    /// Authentication.
    pub auth: InitiatorAuth,
    /// Operational preferences.
    pub params: LocalParams,
}

/// The initiator's login state machine.
#[derive(Debug)]
pub struct InitiatorLogin {
    isid: Isid,
    tsih: u16,
    cid: u16,
    itt: u32,
    cmd_sn: SerialNumber,
    exp_stat_sn: SerialNumber,
    stage: Stage,
    state: LoginState,
    discovery: bool,
    negotiator: Negotiator,
    chap: Option<ChapInitiator>,
    chap_started: bool,
    acc: TextAccumulator,
    tx: VecDeque<LoginRequest>,
    outcome: Option<LoginOutcome>,
}

impl InitiatorLogin {
    /// Creates the machine and queues the first Login Request.
    ///
    /// # Errors
    /// [`LoginError::Chap`] if the CHAP configuration is invalid (same secret both ways).
    pub fn new(cfg: InitiatorConfig) -> Result<Self, LoginError> {
        let discovery = cfg.target_name.is_none();
        let (chap, method) = match cfg.auth {
            InitiatorAuth::None => (None, "None"),
            InitiatorAuth::Chap {
                algorithms,
                creds,
                mutual,
            } => (
                Some(ChapInitiator::new(&algorithms, creds, mutual)?),
                "CHAP",
            ),
        };
        let params = LocalParams {
            auth_methods: vec![method.to_owned()],
            ..cfg.params
        };
        let mut negotiator = Negotiator::new(Role::Initiator, params);
        negotiator.set_discovery(discovery);
        let mut first = negotiator.declare(Key::InitiatorName, &cfg.initiator_name);
        if let Some(alias) = &cfg.initiator_alias {
            first.extend(negotiator.declare(Key::InitiatorAlias, alias));
        }
        let session_type = if discovery { "Discovery" } else { "Normal" };
        first.extend(negotiator.declare(Key::SessionType, session_type));
        if let Some(t) = &cfg.target_name {
            first.extend(negotiator.declare(Key::TargetName, t));
        }
        first.extend(negotiator.offer(&[Key::AuthMethod]));
        let mut me = InitiatorLogin {
            isid: cfg.isid,
            tsih: cfg.tsih,
            cid: cfg.cid,
            itt: cfg.itt,
            cmd_sn: cfg.cmd_sn,
            exp_stat_sn: SerialNumber(0),
            stage: Stage::SecurityNegotiation,
            state: LoginState::Security,
            discovery,
            negotiator,
            chap,
            chap_started: false,
            acc: TextAccumulator::new(MAX_LOGIN_TEXT),
            tx: VecDeque::new(),
            outcome: None,
        };
        let transit = me.chap.is_none();
        me.queue(first, transit, Stage::LoginOperationalNegotiation)?;
        Ok(me)
    }

    /// Queues one Login Request (or several, with the C bit, if the text is long).
    fn queue(&mut self, text: TextPairs, transit: bool, nsg: Stage) -> Result<(), LoginError> {
        let bytes = text.to_bytes()?;
        let mut chunks: Vec<&[u8]> = bytes.chunks(MAX_LOGIN_SEGMENT).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (n, chunk) in chunks.into_iter().enumerate() {
            let fin = n == last;
            self.tx.push_back(LoginRequest {
                transit: transit && fin,
                cont: !fin,
                csg: self.stage,
                nsg: if transit && fin {
                    nsg
                } else {
                    Stage::SecurityNegotiation
                },
                version_max: VERSION,
                version_min: VERSION,
                isid: self.isid,
                tsih: self.tsih,
                itt: self.itt,
                cid: self.cid,
                cmd_sn: self.cmd_sn,
                exp_stat_sn: self.exp_stat_sn,
                data: chunk.to_vec(),
            });
        }
        Ok(())
    }

    /// The next Login Request to send.
    pub fn poll_transmit(&mut self) -> Option<LoginRequest> {
        self.tx.pop_front()
    }

    /// The current state.
    pub fn state(&self) -> LoginState {
        self.state
    }

    /// The CHAP algorithm the target chose, once it has answered our `CHAP_A` offer.
    pub fn chap_algorithm(&self) -> Option<ChapAlgorithm> {
        self.chap.as_ref().and_then(ChapInitiator::algorithm)
    }

    /// Whether the last request offered `CHAP_A` and the target has not yet answered it: a
    /// failure now means the target refused the offer itself (see
    /// [`ChapInitiator::awaiting_algorithm`]).
    pub fn chap_awaiting_algorithm(&self) -> bool {
        self.chap_started
            && self
                .chap
                .as_ref()
                .is_some_and(ChapInitiator::awaiting_algorithm)
    }

    /// The result after a successful login.
    pub fn outcome(&self) -> Option<&LoginOutcome> {
        self.outcome.as_ref()
    }

    /// Feeds a received PDU (must be a Login Response).
    ///
    /// # Errors
    /// [`LoginError`]; the machine is then in [`LoginState::Failed`].
    pub fn handle_pdu(&mut self, pdu: &Pdu, rng: &mut dyn Random) -> Result<(), LoginError> {
        if matches!(self.state, LoginState::Failed | LoginState::FullFeature) {
            return Err(LoginError::Finished);
        }
        let result = match pdu {
            Pdu::LoginResponse(rsp) => self.handle_response(rsp, rng),
            other => Err(LoginError::UnexpectedPdu(other.opcode())),
        };
        if result.is_err() {
            self.state = LoginState::Failed;
            self.tx.clear();
        }
        result
    }

    fn handle_response(
        &mut self,
        rsp: &LoginResponse,
        rng: &mut dyn Random,
    ) -> Result<(), LoginError> {
        if rsp.status != LoginStatus::Success {
            let address = TextPairs::parse(&rsp.data)
                .ok()
                .and_then(|p| p.get(&Key::TargetAddress).map(str::to_owned));
            return Err(LoginError::from_status(rsp.status, address));
        }
        if rsp.version_active != VERSION {
            return Err(LoginError::UnsupportedVersion);
        }
        if rsp.itt != self.itt || rsp.isid != self.isid {
            return Err(LoginError::Protocol("ITT or ISID mismatch"));
        }
        if rsp.csg != self.stage {
            return Err(LoginError::Protocol("CSG differs from our stage"));
        }
        if rsp.transit && rsp.cont {
            return Err(LoginError::Protocol("T and C both set"));
        }
        self.exp_stat_sn = rsp.stat_sn.next();
        let Some(text) = self.acc.push(&rsp.data, rsp.cont)? else {
            // Partial text: ask for the rest with an empty request.
            return self.queue(TextPairs::new(), false, Stage::SecurityNegotiation);
        };
        let mut pairs = TextPairs::parse(&text)?;
        let chap_pairs = pairs.take_where(Key::is_chap);
        let mut answers = self.negotiator.handle(&pairs)?;
        match self.stage {
            Stage::SecurityNegotiation => {
                self.security(rsp, chap_pairs, &mut answers, rng)?;
            }
            Stage::LoginOperationalNegotiation => {
                if !chap_pairs.is_empty() {
                    return Err(LoginError::Protocol("CHAP key outside security stage"));
                }
                if rsp.transit {
                    self.transit(rsp, answers)?;
                } else {
                    self.queue(answers, true, Stage::FullFeaturePhase)?;
                }
            }
            _ => return Err(LoginError::Protocol("response in an invalid stage")),
        }
        Ok(())
    }

    fn security(
        &mut self,
        rsp: &LoginResponse,
        chap_pairs: TextPairs,
        answers: &mut TextPairs,
        rng: &mut dyn Random,
    ) -> Result<(), LoginError> {
        let method = self.negotiator.settled(&Key::AuthMethod).map(str::to_owned);
        if let Some(chap) = self.chap.as_mut() {
            if method.as_deref() == Some("CHAP") && !self.chap_started {
                answers.extend(chap.start());
                self.chap_started = true;
            } else if !chap_pairs.is_empty() {
                answers.extend(chap.handle(&chap_pairs, rng)?);
            }
        } else if !chap_pairs.is_empty() {
            return Err(LoginError::Protocol("CHAP keys without AuthMethod=CHAP"));
        }
        let chap_done = self.chap.as_ref().is_none_or(ChapInitiator::is_done);
        if rsp.transit {
            if self
                .chap
                .as_ref()
                .is_some_and(ChapInitiator::awaiting_mutual)
            {
                return Err(ChapError::MutualMissing.into());
            }
            if !chap_done || self.negotiator.awaiting_answers() {
                return Err(LoginError::Protocol("target left security stage too early"));
            }
            return self.transit(rsp, std::mem::take(answers));
        }
        // Ask to transit once our side of the authentication has been sent.
        let ready = self
            .chap
            .as_ref()
            .is_none_or(|c| c.is_done() || c.awaiting_mutual());
        self.queue(
            std::mem::take(answers),
            ready,
            Stage::LoginOperationalNegotiation,
        )
    }

    /// The target set T: move to its NSG.
    fn transit(&mut self, rsp: &LoginResponse, answers: TextPairs) -> Result<(), LoginError> {
        match rsp.nsg {
            Stage::FullFeaturePhase => {
                if !answers.is_empty() || self.negotiator.awaiting_answers() {
                    return Err(LoginError::Protocol("final response left keys unanswered"));
                }
                let (session, conn) = self.negotiator.finish();
                let warnings = self
                    .chap
                    .as_ref()
                    .map(ChapInitiator::warnings)
                    .unwrap_or_default();
                self.stage = Stage::FullFeaturePhase;
                self.state = LoginState::FullFeature;
                self.outcome = Some(LoginOutcome {
                    session,
                    conn,
                    isid: self.isid,
                    tsih: rsp.tsih,
                    cmd_sn: rsp.exp_cmd_sn,
                    exp_stat_sn: self.exp_stat_sn,
                    max_cmd_sn: rsp.max_cmd_sn,
                    warnings,
                });
                Ok(())
            }
            Stage::LoginOperationalNegotiation if self.stage == Stage::SecurityNegotiation => {
                self.stage = Stage::LoginOperationalNegotiation;
                self.state = LoginState::Operational;
                let mut text = answers;
                text.extend(
                    self.negotiator
                        .offer(LocalParams::operational_keys(self.discovery)),
                );
                self.queue(text, true, Stage::FullFeaturePhase)
            }
            _ => Err(LoginError::Protocol("invalid NSG")),
        }
    }
}
