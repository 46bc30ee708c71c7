//! Our negotiation preferences ([`LocalParams`]) and the negotiated results
//! ([`SessionParams`], [`ConnParams`]) with their RFC 7143 §13 defaults.

use super::yes_no;
use crate::digest::DigestKind;
use crate::text::Key;

/// Our own preferences, the values we offer and answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalParams {
    /// Header digests we accept, in order of preference.
    pub header_digest: Vec<DigestKind>,
    /// Data digests we accept, in order of preference.
    pub data_digest: Vec<DigestKind>,
    /// MaxConnections.
    pub max_connections: u32,
    /// InitialR2T.
    pub initial_r2t: bool,
    /// ImmediateData.
    pub immediate_data: bool,
    /// The MaxRecvDataSegmentLength we declare (what we accept).
    pub max_recv_data_segment_length: u32,
    /// MaxBurstLength.
    pub max_burst_length: u32,
    /// FirstBurstLength.
    pub first_burst_length: u32,
    /// DefaultTime2Wait.
    pub default_time2wait: u32,
    /// DefaultTime2Retain.
    pub default_time2retain: u32,
    /// MaxOutstandingR2T.
    pub max_outstanding_r2t: u32,
    /// DataPDUInOrder.
    pub data_pdu_in_order: bool,
    /// DataSequenceInOrder.
    pub data_sequence_in_order: bool,
    /// ErrorRecoveryLevel.
    pub error_recovery_level: u32,
    /// AuthMethod values we accept, in order of preference (`CHAP`, `None`).
    pub auth_methods: Vec<String>,
}

impl Default for LocalParams {
    /// RFC 7143 defaults, except a 256 KiB MaxRecvDataSegmentLength and `None` auth.
    fn default() -> Self {
        LocalParams {
            header_digest: vec![DigestKind::None],
            data_digest: vec![DigestKind::None],
            max_connections: 1,
            initial_r2t: true,
            immediate_data: true,
            max_recv_data_segment_length: 262_144,
            max_burst_length: 262_144,
            first_burst_length: 65_536,
            default_time2wait: 2,
            default_time2retain: 20,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
            auth_methods: vec!["None".to_owned()],
        }
    }
}

impl LocalParams {
    /// Our value for `key` as it goes on the wire (lists comma-separated).
    pub(crate) fn value(&self, key: &Key) -> Option<String> {
        let list = |v: &[DigestKind]| v.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(",");
        Some(match key {
            Key::HeaderDigest => list(&self.header_digest),
            Key::DataDigest => list(&self.data_digest),
            Key::MaxConnections => self.max_connections.to_string(),
            Key::InitialR2T => yes_no(self.initial_r2t).to_owned(),
            Key::ImmediateData => yes_no(self.immediate_data).to_owned(),
            Key::MaxRecvDataSegmentLength => self.max_recv_data_segment_length.to_string(),
            Key::MaxBurstLength => self.max_burst_length.to_string(),
            Key::FirstBurstLength => self.first_burst_length.to_string(),
            Key::DefaultTime2Wait => self.default_time2wait.to_string(),
            Key::DefaultTime2Retain => self.default_time2retain.to_string(),
            Key::MaxOutstandingR2T => self.max_outstanding_r2t.to_string(),
            Key::DataPduInOrder => yes_no(self.data_pdu_in_order).to_owned(),
            Key::DataSequenceInOrder => yes_no(self.data_sequence_in_order).to_owned(),
            Key::ErrorRecoveryLevel => self.error_recovery_level.to_string(),
            Key::IfMarker | Key::OfMarker => "No".to_owned(),
            Key::AuthMethod => self.auth_methods.join(","),
            Key::TaskReporting => "RFC3720".to_owned(),
            Key::IscsiProtocolLevel => "1".to_owned(),
            _ => return None,
        })
    }

    /// The operational keys an initiator offers in LoginOperationalNegotiation.
    pub fn operational_keys(session_type_discovery: bool) -> &'static [Key] {
        if session_type_discovery {
            &[
                Key::HeaderDigest,
                Key::DataDigest,
                Key::MaxRecvDataSegmentLength,
            ]
        } else {
            &[
                Key::HeaderDigest,
                Key::DataDigest,
                Key::MaxRecvDataSegmentLength,
                Key::MaxConnections,
                Key::InitialR2T,
                Key::ImmediateData,
                Key::MaxBurstLength,
                Key::FirstBurstLength,
                Key::DefaultTime2Wait,
                Key::DefaultTime2Retain,
                Key::MaxOutstandingR2T,
                Key::DataPduInOrder,
                Key::DataSequenceInOrder,
                Key::ErrorRecoveryLevel,
            ]
        }
    }
}

/// Negotiated session-wide parameters (RFC 7143 §13), RFC defaults until negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// MaxConnections (default 1).
    pub max_connections: u32,
    /// InitialR2T (default Yes).
    pub initial_r2t: bool,
    /// ImmediateData (default Yes).
    pub immediate_data: bool,
    /// MaxBurstLength (default 262144).
    pub max_burst_length: u32,
    /// FirstBurstLength (default 65536, never above MaxBurstLength).
    pub first_burst_length: u32,
    /// DefaultTime2Wait (default 2).
    pub default_time2wait: u32,
    /// DefaultTime2Retain (default 20).
    pub default_time2retain: u32,
    /// MaxOutstandingR2T (default 1).
    pub max_outstanding_r2t: u32,
    /// DataPDUInOrder (default Yes).
    pub data_pdu_in_order: bool,
    /// DataSequenceInOrder (default Yes).
    pub data_sequence_in_order: bool,
    /// ErrorRecoveryLevel (default 0).
    pub error_recovery_level: u32,
    /// SessionType is Discovery.
    pub discovery: bool,
    /// InitiatorName.
    pub initiator_name: Option<String>,
    /// TargetName.
    pub target_name: Option<String>,
    /// InitiatorAlias.
    pub initiator_alias: Option<String>,
    /// TargetAlias.
    pub target_alias: Option<String>,
    /// TargetPortalGroupTag.
    pub target_portal_group_tag: Option<u16>,
}

impl Default for SessionParams {
    fn default() -> Self {
        SessionParams {
            max_connections: 1,
            initial_r2t: true,
            immediate_data: true,
            max_burst_length: 262_144,
            first_burst_length: 65_536,
            default_time2wait: 2,
            default_time2retain: 20,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
            discovery: false,
            initiator_name: None,
            target_name: None,
            initiator_alias: None,
            target_alias: None,
            target_portal_group_tag: None,
        }
    }
}

/// Negotiated per-connection parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnParams {
    /// HeaderDigest (default None).
    pub header_digest: DigestKind,
    /// DataDigest (default None).
    pub data_digest: DigestKind,
    /// Largest data segment we accept: the MaxRecvDataSegmentLength we declared.
    pub max_recv_data_segment_length: u32,
    /// Largest data segment we may send: the MaxRecvDataSegmentLength the peer declared
    /// (default 8192).
    pub max_send_data_segment_length: u32,
}

impl Default for ConnParams {
    fn default() -> Self {
        ConnParams {
            header_digest: DigestKind::None,
            data_digest: DigestKind::None,
            max_recv_data_segment_length: 8192,
            max_send_data_segment_length: 8192,
        }
    }
}
