//! RFC 7143 text negotiation (§6.2 rules, §13 key semantics), the same code for both roles.
//!
//! Either side may originate a key. A [`Negotiator`] remembers which keys it offered; a
//! received key that we offered is a *response* and is checked against our offer, any other
//! received key is an *offer* from the peer and gets an answer. The result functions are:
//!
//! * numerical minimum: MaxBurstLength, FirstBurstLength, MaxConnections, MaxOutstandingR2T,
//!   DefaultTime2Retain, ErrorRecoveryLevel, iSCSIProtocolLevel;
//! * numerical maximum: DefaultTime2Wait;
//! * boolean AND: ImmediateData, DataPDUInOrder, DataSequenceInOrder, IFMarker, OFMarker;
//! * boolean OR: InitialR2T;
//! * list (the responder picks the first offered value it supports): HeaderDigest,
//!   DataDigest, AuthMethod, TaskReporting;
//! * declarative (no answer): MaxRecvDataSegmentLength, TargetAlias, InitiatorAlias,
//!   InitiatorName, TargetName, SessionType, TargetAddress, TargetPortalGroupTag.
//!
//! Unknown keys are answered `NotUnderstood`; session-wide keys in a discovery session are
//! answered `Irrelevant`; out-of-range or malformed offers are answered `Reject`. A key
//! negotiated twice is an error (§6.1: "MUST result in a Login reject").
//! Negotiated values become a [`SessionParams`] and a [`ConnParams`], which start from the
//! RFC defaults.

use std::collections::BTreeMap;

mod params;

pub use params::{ConnParams, LocalParams, SessionParams};

use crate::digest::DigestKind;
use crate::text::{Key, TextPairs, IRRELEVANT, NOT_UNDERSTOOD, REJECT};

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The iSCSI initiator.
    Initiator,
    /// The iSCSI target.
    Target,
}

/// A negotiation failure: the login must be rejected (initiator error) or the connection
/// closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The same key was negotiated twice.
    #[error("key {0} negotiated twice")]
    Duplicate(String),
    /// The peer answered our offer with a value the rules do not allow.
    #[error("illegal answer {value:?} to our offer of {key}")]
    IllegalAnswer {
        /// The key.
        key: String,
        /// The value received.
        value: String,
    },
    /// The peer rejected a key we cannot do without (e.g. AuthMethod).
    #[error("peer rejected {0}")]
    Rejected(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Min(u32, u32),
    Max(u32, u32),
    And,
    Or,
    List,
    Declarative,
    /// Obsolete marker intervals: always answered Irrelevant (markers are never on).
    Obsolete,
}

fn rule(key: &Key) -> Option<Rule> {
    const MAX24: u32 = 0x00ff_ffff;
    Some(match key {
        Key::MaxBurstLength | Key::FirstBurstLength => Rule::Min(512, MAX24),
        Key::MaxConnections | Key::MaxOutstandingR2T => Rule::Min(1, 65535),
        Key::DefaultTime2Retain => Rule::Min(0, 3600),
        Key::ErrorRecoveryLevel => Rule::Min(0, 2),
        Key::IscsiProtocolLevel => Rule::Min(0, 31),
        Key::DefaultTime2Wait => Rule::Max(0, 3600),
        Key::ImmediateData
        | Key::DataPduInOrder
        | Key::DataSequenceInOrder
        | Key::IfMarker
        | Key::OfMarker => Rule::And,
        Key::InitialR2T => Rule::Or,
        Key::HeaderDigest | Key::DataDigest | Key::AuthMethod | Key::TaskReporting => Rule::List,
        Key::MaxRecvDataSegmentLength
        | Key::TargetAlias
        | Key::InitiatorAlias
        | Key::InitiatorName
        | Key::TargetName
        | Key::SessionType
        | Key::TargetAddress
        | Key::TargetPortalGroupTag
        | Key::SendTargets => Rule::Declarative,
        Key::IfMarkInt | Key::OfMarkInt => Rule::Obsolete,
        _ => return None,
    })
}

/// Keys that are session-wide and irrelevant in a discovery session (RFC 7143 §4.3).
fn irrelevant_in_discovery(key: &Key) -> bool {
    matches!(
        key,
        Key::MaxConnections
            | Key::InitialR2T
            | Key::ImmediateData
            | Key::MaxBurstLength
            | Key::FirstBurstLength
            | Key::MaxOutstandingR2T
            | Key::DataPduInOrder
            | Key::DataSequenceInOrder
    )
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "Yes" => Some(true),
        "No" => Some(false),
        _ => None,
    }
}

pub(crate) fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

/// Parses a numerical value: decimal, or `0x` hex (RFC 7143 §6.1 numerical-value).
fn parse_num(v: &str) -> Option<u32> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v.parse().ok(),
        None => None,
    }
}

/// The negotiation state of one connection's login or text exchange.
#[derive(Debug, Clone)]
pub struct Negotiator {
    role: Role,
    local: LocalParams,
    offered: BTreeMap<Key, String>,
    settled: BTreeMap<Key, String>,
    peer_declared: BTreeMap<Key, String>,
    discovery: bool,
}

impl Negotiator {
    /// A negotiator with our preferences `local`.
    pub fn new(role: Role, local: LocalParams) -> Self {
        Negotiator {
            role,
            local,
            offered: BTreeMap::new(),
            settled: BTreeMap::new(),
            peer_declared: BTreeMap::new(),
            discovery: false,
        }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Marks the session as a discovery session (changes which keys are Irrelevant).
    pub fn set_discovery(&mut self, discovery: bool) {
        self.discovery = discovery;
    }

    /// Whether an offer of ours still waits for its answer.
    pub fn awaiting_answers(&self) -> bool {
        !self.offered.is_empty()
    }

    /// Whether `key` has been settled (offered and answered, or declared).
    pub fn is_settled(&self, key: &Key) -> bool {
        self.settled.contains_key(key) || self.peer_declared.contains_key(key)
    }

    /// The settled value of `key`, if any (for declarative keys, the peer's declaration
    /// wins over ours).
    pub fn settled(&self, key: &Key) -> Option<&str> {
        self.peer_declared
            .get(key)
            .or_else(|| self.settled.get(key))
            .map(String::as_str)
    }

    /// The value the peer declared for a declarative key (e.g. InitiatorName).
    pub fn peer_declared(&self, key: &Key) -> Option<&str> {
        self.peer_declared.get(key).map(String::as_str)
    }

    /// Offers our values for `keys` that are neither settled nor already offered.
    pub fn offer(&mut self, keys: &[Key]) -> TextPairs {
        let mut out = TextPairs::new();
        for key in keys {
            if self.settled.contains_key(key) || self.offered.contains_key(key) {
                continue;
            }
            let Some(value) = self.local.value(key) else {
                continue;
            };
            if rule(key) == Some(Rule::Declarative) {
                self.settled.insert(key.clone(), value.clone());
            } else {
                self.offered.insert(key.clone(), value.clone());
            }
            out.push(key.clone(), value);
        }
        out
    }

    /// Declares a value such as InitiatorName, TargetAlias or SessionType.
    pub fn declare(&mut self, key: Key, value: &str) -> TextPairs {
        let mut out = TextPairs::new();
        self.settled.insert(key.clone(), value.to_owned());
        out.push(key, value);
        out
    }

    /// Processes received pairs (non-CHAP) and returns our answers.
    ///
    /// # Errors
    /// [`NegotiationError`] if a key is negotiated twice or an answer to our offer is illegal.
    pub fn handle(&mut self, received: &TextPairs) -> Result<TextPairs, NegotiationError> {
        let mut out = TextPairs::new();
        // SessionType decides which keys are Irrelevant, wherever it sits in the text.
        if let Some(t) = received.get(&Key::SessionType) {
            self.discovery = t == "Discovery";
        }
        for (key, value) in received.iter() {
            if let Some(ours) = self.offered.remove(key) {
                let result = answer_check(key, &ours, value)?;
                self.settled.insert(key.clone(), result);
                continue;
            }
            let Some(r) = rule(key) else {
                out.push(key.clone(), NOT_UNDERSTOOD);
                continue;
            };
            if r == Rule::Declarative {
                if self.peer_declared.contains_key(key) && *key != Key::SendTargets {
                    return Err(NegotiationError::Duplicate(key.to_string()));
                }
                self.peer_declared.insert(key.clone(), value.to_owned());
                continue;
            }
            if self.settled.contains_key(key) {
                return Err(NegotiationError::Duplicate(key.to_string()));
            }
            if self.discovery && irrelevant_in_discovery(key) {
                out.push(key.clone(), IRRELEVANT);
                self.settled.insert(key.clone(), IRRELEVANT.to_owned());
                continue;
            }
            let answer = self.respond(key, r, value);
            self.settled.insert(key.clone(), answer.clone());
            out.push(key.clone(), answer);
        }
        Ok(out)
    }

    /// Our answer to an offer of `key=value`.
    fn respond(&self, key: &Key, r: Rule, value: &str) -> String {
        let ours = self.local.value(key).unwrap_or_default();
        match r {
            Rule::Min(lo, hi) | Rule::Max(lo, hi) => match (parse_num(value), parse_num(&ours)) {
                (Some(v), Some(o)) if (lo..=hi).contains(&v) => {
                    let res = if matches!(r, Rule::Min(..)) {
                        v.min(o)
                    } else {
                        v.max(o)
                    };
                    res.to_string()
                }
                _ => REJECT.to_owned(),
            },
            Rule::And | Rule::Or => match (parse_bool(value), parse_bool(&ours)) {
                (Some(v), Some(o)) => {
                    yes_no(if r == Rule::And { v && o } else { v || o }).to_owned()
                }
                _ => REJECT.to_owned(),
            },
            Rule::List => {
                let supported: Vec<&str> = ours.split(',').collect();
                value
                    .split(',')
                    .find(|v| supported.contains(v))
                    .unwrap_or(REJECT)
                    .to_owned()
            }
            Rule::Obsolete => IRRELEVANT.to_owned(),
            Rule::Declarative => value.to_owned(),
        }
    }

    /// The negotiated parameters, RFC defaults for anything not negotiated.
    pub fn finish(&self) -> (SessionParams, ConnParams) {
        let mut s = SessionParams {
            discovery: self.discovery,
            ..SessionParams::default()
        };
        let mut c = ConnParams::default();
        let num = |k: &Key| self.settled.get(k).and_then(|v| parse_num(v));
        let boolean = |k: &Key| self.settled.get(k).and_then(|v| parse_bool(v));
        let text = |k: &Key| self.settled(k).map(str::to_owned);
        let digest = |k: &Key| self.settled.get(k).and_then(|v| DigestKind::from_text(v));
        s.max_connections = num(&Key::MaxConnections).unwrap_or(s.max_connections);
        s.initial_r2t = boolean(&Key::InitialR2T).unwrap_or(s.initial_r2t);
        s.immediate_data = boolean(&Key::ImmediateData).unwrap_or(s.immediate_data);
        s.max_burst_length = num(&Key::MaxBurstLength).unwrap_or(s.max_burst_length);
        s.first_burst_length = num(&Key::FirstBurstLength)
            .unwrap_or(s.first_burst_length)
            .min(s.max_burst_length);
        s.default_time2wait = num(&Key::DefaultTime2Wait).unwrap_or(s.default_time2wait);
        s.default_time2retain = num(&Key::DefaultTime2Retain).unwrap_or(s.default_time2retain);
        s.max_outstanding_r2t = num(&Key::MaxOutstandingR2T).unwrap_or(s.max_outstanding_r2t);
        s.data_pdu_in_order = boolean(&Key::DataPduInOrder).unwrap_or(s.data_pdu_in_order);
        s.data_sequence_in_order =
            boolean(&Key::DataSequenceInOrder).unwrap_or(s.data_sequence_in_order);
        s.error_recovery_level = num(&Key::ErrorRecoveryLevel).unwrap_or(0);
        s.initiator_name = text(&Key::InitiatorName);
        s.target_name = text(&Key::TargetName);
        s.initiator_alias = text(&Key::InitiatorAlias);
        s.target_alias = text(&Key::TargetAlias);
        s.target_portal_group_tag = self
            .settled(&Key::TargetPortalGroupTag)
            .and_then(parse_num)
            .and_then(|v| u16::try_from(v).ok());
        c.header_digest = digest(&Key::HeaderDigest).unwrap_or_default();
        c.data_digest = digest(&Key::DataDigest).unwrap_or_default();
        if self.settled.contains_key(&Key::MaxRecvDataSegmentLength) {
            c.max_recv_data_segment_length = self.local.max_recv_data_segment_length;
        }
        c.max_send_data_segment_length = self
            .peer_declared(&Key::MaxRecvDataSegmentLength)
            .and_then(parse_num)
            .filter(|v| (512..=0x00ff_ffff).contains(v))
            .unwrap_or(8192);
        (s, c)
    }
}

/// Checks the answer `value` to our offer `ours` of `key`; returns the settled value.
fn answer_check(key: &Key, ours: &str, value: &str) -> Result<String, NegotiationError> {
    let illegal = || NegotiationError::IllegalAnswer {
        key: key.to_string(),
        value: value.to_owned(),
    };
    if value == NOT_UNDERSTOOD || value == IRRELEVANT || value == REJECT {
        // The key stays at its default (RFC 7143 §6.2), but AuthMethod cannot be skipped.
        if *key == Key::AuthMethod && value != IRRELEVANT {
            return Err(NegotiationError::Rejected(key.to_string()));
        }
        return Ok(value.to_owned());
    }
    let ok = match rule(key) {
        Some(Rule::Min(lo, hi)) => matches!((parse_num(value), parse_num(ours)),
            (Some(v), Some(o)) if v <= o && (lo..=hi).contains(&v)),
        Some(Rule::Max(lo, hi)) => matches!((parse_num(value), parse_num(ours)),
            (Some(v), Some(o)) if v >= o && (lo..=hi).contains(&v)),
        Some(Rule::And) => match (parse_bool(value), parse_bool(ours)) {
            (Some(v), Some(o)) => o || !v,
            _ => false,
        },
        Some(Rule::Or) => match (parse_bool(value), parse_bool(ours)) {
            (Some(v), Some(o)) => !o || v,
            _ => false,
        },
        Some(Rule::List) => !value.contains(',') && ours.split(',').any(|o| o == value),
        Some(Rule::Obsolete) | Some(Rule::Declarative) | None => true,
    };
    if ok {
        Ok(value.to_owned())
    } else {
        Err(illegal())
    }
}

#[cfg(test)]
mod tests;
