//! The two sides of the CHAP exchange (RFC 7143 §12.1.3):
//!
//! ```text
//! I->T  CHAP_A=<A1,A2,...>
//! T->I  CHAP_A=<A> CHAP_I=<I> CHAP_C=<C>
//! I->T  CHAP_N=<N> CHAP_R=<R> [CHAP_I=<I2> CHAP_C=<C2>]   (mutual in brackets)
//! T->I  [CHAP_N=<N2> CHAP_R=<R2>]
//! ```

use super::{
    challenge, check_distinct, encode_hex, get, parse_challenge, parse_id, verify, warnings,
    ChapAlgorithm, ChapError, ChapWarning, Credentials, Random,
};
use crate::text::{Key, TextPairs};

#[derive(Debug, Clone, PartialEq, Eq)]
enum InitiatorState {
    Start,
    SentAlgorithms,
    AwaitMutual {
        alg: ChapAlgorithm,
        id: u8,
        challenge: Vec<u8>,
    },
    Done,
}

/// The initiator side of CHAP.
#[derive(Debug, Clone)]
pub struct ChapInitiator {
    algorithms: Vec<ChapAlgorithm>,
    creds: Credentials,
    mutual: Option<Credentials>,
    state: InitiatorState,
    chosen: Option<ChapAlgorithm>,
}

impl ChapInitiator {
    /// An initiator offering `algorithms` (in preference order), authenticating with `creds`
    /// and, if `mutual` is given, requiring the target to prove it knows `mutual.secret` under
    /// the name `mutual.user`.
    ///
    /// # Errors
    /// [`ChapError::SameSecretBothWays`] if both secrets are equal;
    /// [`ChapError::NoCommonAlgorithm`] if `algorithms` is empty.
    pub fn new(
        algorithms: &[ChapAlgorithm],
        creds: Credentials,
        mutual: Option<Credentials>,
    ) -> Result<Self, ChapError> {
        check_distinct(&creds, mutual.as_ref())?;
        if algorithms.is_empty() {
            return Err(ChapError::NoCommonAlgorithm(String::new()));
        }
        Ok(ChapInitiator {
            algorithms: algorithms.to_vec(),
            creds,
            mutual,
            state: InitiatorState::Start,
            chosen: None,
        })
    }

    /// Warnings to log (short secrets).
    pub fn warnings(&self) -> Vec<ChapWarning> {
        warnings(&self.creds, self.mutual.as_ref())
    }

    /// The first CHAP PDU's keys: `CHAP_A=<list>`.
    pub fn start(&mut self) -> TextPairs {
        let list: Vec<String> = self
            .algorithms
            .iter()
            .map(|a| a.code().to_string())
            .collect();
        let mut out = TextPairs::new();
        out.push(Key::ChapA, list.join(","));
        self.state = InitiatorState::SentAlgorithms;
        out
    }

    /// Handles the target's CHAP keys; returns the keys to send next.
    ///
    /// # Errors
    /// [`ChapError`] on any protocol or authentication failure; the login must then fail.
    pub fn handle(&mut self, rx: &TextPairs, rng: &mut dyn Random) -> Result<TextPairs, ChapError> {
        match core::mem::replace(&mut self.state, InitiatorState::Done) {
            InitiatorState::SentAlgorithms => self.answer_challenge(rx, rng),
            InitiatorState::AwaitMutual { alg, id, challenge } => {
                let Some(expected) = self.mutual.as_ref() else {
                    return Err(ChapError::MutualNotConfigured);
                };
                verify(alg, expected, id, &challenge, rx)?;
                Ok(TextPairs::new())
            }
            InitiatorState::Start => Err(ChapError::UnexpectedKey("start")),
            InitiatorState::Done => Err(ChapError::UnexpectedKey("done")),
        }
    }

    fn answer_challenge(
        &mut self,
        rx: &TextPairs,
        rng: &mut dyn Random,
    ) -> Result<TextPairs, ChapError> {
        let a = get(rx, &Key::ChapA, "CHAP_A")?;
        let alg = a
            .parse::<u32>()
            .ok()
            .and_then(ChapAlgorithm::from_code)
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or_else(|| ChapError::UnexpectedAlgorithm(a.chars().take(32).collect()))?;
        self.chosen = Some(alg);
        let id = parse_id(get(rx, &Key::ChapI, "CHAP_I")?)?;
        let c = parse_challenge(get(rx, &Key::ChapC, "CHAP_C")?)?;
        let mut out = TextPairs::new();
        out.push(Key::ChapN, self.creds.user.clone());
        out.push(
            Key::ChapR,
            encode_hex(&alg.response(id, &self.creds.secret, &c)),
        );
        if self.mutual.is_some() {
            let (mut id2, mut c2) = challenge(alg, rng);
            // A mutual challenge equal to the target's is refused by the target; redraw.
            while c2 == c {
                (id2, c2) = challenge(alg, rng);
            }
            out.push(Key::ChapI, id2.to_string());
            out.push(Key::ChapC, encode_hex(&c2));
            self.state = InitiatorState::AwaitMutual {
                alg,
                id: id2,
                challenge: c2,
            };
        }
        Ok(out)
    }

    /// Whether the exchange finished (including the target's mutual response, if required).
    pub fn is_done(&self) -> bool {
        self.state == InitiatorState::Done
    }

    /// Whether `CHAP_A` has been offered and the target's choice has not arrived yet: the
    /// point at which old targets refuse an algorithm list (open-iscsi issue #180).
    pub fn awaiting_algorithm(&self) -> bool {
        self.state == InitiatorState::SentAlgorithms
    }

    /// The algorithm the target chose, once its `CHAP_A` arrived.
    pub fn algorithm(&self) -> Option<ChapAlgorithm> {
        self.chosen
    }

    /// Whether we still wait for the target's mutual response.
    pub fn awaiting_mutual(&self) -> bool {
        matches!(self.state, InitiatorState::AwaitMutual { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TargetState {
    AwaitAlgorithms,
    SentChallenge {
        alg: ChapAlgorithm,
        id: u8,
        challenge: Vec<u8>,
    },
    Done,
}

/// The target side of CHAP.
#[derive(Debug, Clone)]
pub struct ChapTarget {
    algorithms: Vec<ChapAlgorithm>,
    expected: Credentials,
    mutual: Option<Credentials>,
    state: TargetState,
}

impl ChapTarget {
    /// A target supporting `algorithms`, expecting the initiator to authenticate as
    /// `expected`, and able to authenticate itself with `mutual` if asked.
    ///
    /// # Errors
    /// [`ChapError::SameSecretBothWays`] if both secrets are equal.
    pub fn new(
        algorithms: &[ChapAlgorithm],
        expected: Credentials,
        mutual: Option<Credentials>,
    ) -> Result<Self, ChapError> {
        check_distinct(&expected, mutual.as_ref())?;
        Ok(ChapTarget {
            algorithms: algorithms.to_vec(),
            expected,
            mutual,
            state: TargetState::AwaitAlgorithms,
        })
    }

    /// Warnings to log (short secrets).
    pub fn warnings(&self) -> Vec<ChapWarning> {
        warnings(&self.expected, self.mutual.as_ref())
    }

    /// Handles the initiator's CHAP keys; returns the keys to send back.
    ///
    /// # Errors
    /// [`ChapError`]; [`ChapError::is_auth_failure`] tells whether to answer 0x0201.
    pub fn handle(&mut self, rx: &TextPairs, rng: &mut dyn Random) -> Result<TextPairs, ChapError> {
        match core::mem::replace(&mut self.state, TargetState::Done) {
            TargetState::AwaitAlgorithms => {
                let offer = get(rx, &Key::ChapA, "CHAP_A")?;
                // The responder picks the first offered algorithm it supports.
                let alg = offer
                    .split(',')
                    .filter_map(|a| a.parse::<u32>().ok().and_then(ChapAlgorithm::from_code))
                    .find(|a| self.algorithms.contains(a))
                    .ok_or_else(|| {
                        ChapError::NoCommonAlgorithm(offer.chars().take(32).collect())
                    })?;
                let (id, c) = challenge(alg, rng);
                let mut out = TextPairs::new();
                out.push(Key::ChapA, alg.code().to_string());
                out.push(Key::ChapI, id.to_string());
                out.push(Key::ChapC, encode_hex(&c));
                self.state = TargetState::SentChallenge {
                    alg,
                    id,
                    challenge: c,
                };
                Ok(out)
            }
            TargetState::SentChallenge { alg, id, challenge } => {
                verify(alg, &self.expected, id, &challenge, rx)?;
                let mut out = TextPairs::new();
                match (rx.get(&Key::ChapI), rx.get(&Key::ChapC)) {
                    (None, None) => {}
                    (Some(i2), Some(c2)) => {
                        let Some(mutual) = self.mutual.as_ref() else {
                            return Err(ChapError::MutualNotConfigured);
                        };
                        let id2 = parse_id(i2)?;
                        let c2 = parse_challenge(c2)?;
                        if c2 == challenge {
                            return Err(ChapError::ReflectedChallenge);
                        }
                        out.push(Key::ChapN, mutual.user.clone());
                        out.push(
                            Key::ChapR,
                            encode_hex(&alg.response(id2, &mutual.secret, &c2)),
                        );
                    }
                    (None, Some(_)) => return Err(ChapError::MissingKey("CHAP_I")),
                    (Some(_), None) => return Err(ChapError::MissingKey("CHAP_C")),
                }
                Ok(out)
            }
            TargetState::Done => Err(ChapError::UnexpectedKey("done")),
        }
    }

    /// Whether the initiator has been authenticated.
    pub fn is_done(&self) -> bool {
        self.state == TargetState::Done
    }
}
