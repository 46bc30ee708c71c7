//! Initiator against target, in memory, through the real wire encoding.

use super::*;
use crate::chap::{ChapAlgorithm, ChapError, Credentials};
use crate::frame::{encode_pdu, Frame, FrameLimits};
use crate::negotiate::LocalParams;
use crate::pdu::{LoginRequest, NopOut, PduRepr};
use crate::text::{Key, TextPairs};
use proptest::prelude::*;

const TARGET: &str = "iqn.2026-11.org.example:disk1";
const INITIATOR: &str = "iqn.2013-02.org.example.client:default";

struct Counter(u8);

impl Random for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0;
            self.0 = self.0.wrapping_add(17);
        }
    }
}

struct Policy {
    auth: TargetAuth,
}

impl LoginPolicy for Policy {
    fn admit(&self, ctx: &LoginContext<'_>) -> Result<Admission, LoginStatus> {
        if !ctx.discovery && ctx.target_name != Some(TARGET) {
            return Err(LoginStatus::NotFound);
        }
        if ctx.initiator_name != INITIATOR {
            return Err(LoginStatus::AuthorizationFailure);
        }
        Ok(Admission {
            auth: self.auth.clone(),
            tsih: 0x1234,
            target_alias: Some("disk1".into()),
            target_portal_group_tag: 1,
        })
    }
}

fn initiator_creds() -> Credentials {
    Credentials::new("client", *b"client-secret-1")
}

fn target_creds() -> Credentials {
    Credentials::new("target", *b"target-secret-1")
}

fn initiator(auth: InitiatorAuth, target: Option<&str>) -> InitiatorLogin {
    InitiatorLogin::new(InitiatorConfig {
        initiator_name: INITIATOR.into(),
        initiator_alias: None,
        target_name: target.map(str::to_owned),
        isid: Isid::random(0x00ab_cdef, 0),
        tsih: 0,
        cid: 0,
        itt: 0x10,
        cmd_sn: SerialNumber(1),
        auth,
        params: LocalParams {
            max_recv_data_segment_length: 65_536,
            ..LocalParams::default()
        },
    })
    .unwrap()
}

fn target(auth: TargetAuth) -> TargetLogin {
    TargetLogin::new(TargetConfig {
        params: LocalParams::default(),
        chap_algorithms: ChapAlgorithm::ALL.to_vec(),
        stat_sn: SerialNumber(100),
        cmd_window: 32,
        policy: Box::new(Policy { auth }),
    })
}

/// Passes a PDU through the wire encoding and framing, as a socket would.
fn wire(p: &Pdu) -> Pdu {
    let mut buf = Vec::new();
    encode_pdu(p, &FrameLimits::default(), &mut buf).unwrap();
    Frame::split(&buf, &FrameLimits::default())
        .unwrap()
        .parse()
        .unwrap()
}

#[derive(Debug, Default)]
struct Run {
    i_err: Option<LoginError>,
    t_err: Option<LoginError>,
    last_status: Option<LoginStatus>,
    exchanges: usize,
}

fn drive(i: &mut InitiatorLogin, t: &mut TargetLogin) -> Run {
    let mut rng = Counter(1);
    let mut run = Run::default();
    for _ in 0..20 {
        let mut progressed = false;
        while let Some(req) = i.poll_transmit() {
            progressed = true;
            run.exchanges += 1;
            if let Err(e) = t.handle_pdu(&wire(&req.into()), &mut rng) {
                run.t_err = Some(e);
            }
        }
        while let Some(rsp) = t.poll_transmit() {
            progressed = true;
            run.last_status = Some(rsp.status);
            if let Err(e) = i.handle_pdu(&wire(&rsp.into()), &mut rng) {
                run.i_err = Some(e);
            }
        }
        if !progressed {
            break;
        }
    }
    run
}

fn assert_agree(i: &InitiatorLogin, t: &TargetLogin) {
    assert_eq!(i.state(), LoginState::FullFeature);
    assert_eq!(t.state(), LoginState::FullFeature);
    let (io, to) = (i.outcome().unwrap(), t.outcome().unwrap());
    assert_eq!(io.session.max_burst_length, to.session.max_burst_length);
    assert_eq!(io.session.immediate_data, to.session.immediate_data);
    assert_eq!(io.tsih, 0x1234);
    assert_eq!(to.tsih, 0x1234);
    assert_eq!(io.isid, to.isid);
    assert_eq!(io.cmd_sn, to.cmd_sn);
    assert_eq!(io.exp_stat_sn, to.exp_stat_sn);
    assert_eq!(io.max_cmd_sn, to.max_cmd_sn);
    assert_eq!(
        io.conn.max_send_data_segment_length,
        to.conn.max_recv_data_segment_length
    );
    assert_eq!(to.conn.max_send_data_segment_length, 65_536);
    assert_eq!(io.session.target_portal_group_tag, Some(1));
    assert_eq!(io.session.target_alias.as_deref(), Some("disk1"));
    assert_eq!(to.session.initiator_name.as_deref(), Some(INITIATOR));
}

#[test]
fn no_auth() {
    let mut i = initiator(InitiatorAuth::None, Some(TARGET));
    let mut t = target(TargetAuth::None);
    let run = drive(&mut i, &mut t);
    assert_eq!((run.i_err, run.t_err), (None, None));
    assert_agree(&i, &t);
    // Security (T, NSG=1) then operational (T, NSG=3).
    assert_eq!(run.exchanges, 2);
}

#[test]
fn first_request_text() {
    let mut i = initiator(InitiatorAuth::None, Some(TARGET));
    let req = i.poll_transmit().unwrap();
    assert!(req.transit);
    assert_eq!(req.csg, Stage::SecurityNegotiation);
    assert_eq!(req.nsg, Stage::LoginOperationalNegotiation);
    assert_eq!(req.to_vec().unwrap()[0], 0x43);
    let text = String::from_utf8(req.data).unwrap();
    assert_eq!(
        text,
        format!(
            "InitiatorName={INITIATOR}\0SessionType=Normal\0TargetName={TARGET}\0AuthMethod=None\0"
        )
    );
}

fn chap_auth(algs: &[ChapAlgorithm], mutual: bool) -> InitiatorAuth {
    InitiatorAuth::Chap {
        algorithms: algs.to_vec(),
        creds: initiator_creds(),
        mutual: mutual.then(target_creds),
    }
}

fn target_chap(mutual: bool) -> TargetAuth {
    TargetAuth::Chap {
        expected: initiator_creds(),
        mutual: mutual.then(target_creds),
    }
}

#[test]
fn one_way_chap() {
    for alg in ChapAlgorithm::ALL {
        let mut i = initiator(chap_auth(&[alg], false), Some(TARGET));
        let mut t = target(target_chap(false));
        let run = drive(&mut i, &mut t);
        assert_eq!((run.i_err, run.t_err), (None, None), "{alg:?}");
        assert_agree(&i, &t);
    }
}

#[test]
fn mutual_chap() {
    let mut i = initiator(
        chap_auth(&[ChapAlgorithm::Sha3_256, ChapAlgorithm::Md5], true),
        Some(TARGET),
    );
    let mut t = target(target_chap(true));
    let run = drive(&mut i, &mut t);
    assert_eq!((run.i_err, run.t_err), (None, None));
    assert_agree(&i, &t);
}

#[test]
fn chap_algorithm_and_offer_point_are_visible() {
    let mut i = initiator(
        chap_auth(&[ChapAlgorithm::Sha256, ChapAlgorithm::Md5], false),
        Some(TARGET),
    );
    let mut t = target(target_chap(false));
    let mut rng = Counter(1);
    assert!(!i.chap_awaiting_algorithm());
    assert_eq!(i.chap_algorithm(), None);
    // Request 1 (AuthMethod=CHAP) -> response 1 (AuthMethod chosen) -> request 2 (CHAP_A).
    let req = i.poll_transmit().unwrap();
    t.handle_pdu(&wire(&req.into()), &mut rng).unwrap();
    let rsp = t.poll_transmit().unwrap();
    i.handle_pdu(&wire(&rsp.into()), &mut rng).unwrap();
    assert!(i.chap_awaiting_algorithm());
    let run = drive(&mut i, &mut t);
    assert_eq!((run.i_err, run.t_err), (None, None));
    assert!(!i.chap_awaiting_algorithm());
    assert_eq!(i.chap_algorithm(), Some(ChapAlgorithm::Sha256));
    let no_auth = initiator(InitiatorAuth::None, Some(TARGET));
    assert_eq!(no_auth.chap_algorithm(), None);
}

#[test]
fn wrong_secret_gets_0201() {
    let mut i = initiator(
        InitiatorAuth::Chap {
            algorithms: vec![ChapAlgorithm::Md5],
            creds: Credentials::new("client", *b"wrong-secret-99"),
            mutual: None,
        },
        Some(TARGET),
    );
    let mut t = target(target_chap(false));
    let run = drive(&mut i, &mut t);
    assert_eq!(run.t_err, Some(LoginError::Chap(ChapError::BadResponse)));
    assert_eq!(run.last_status, Some(LoginStatus::AuthenticationFailure));
    assert_eq!(run.i_err, Some(LoginError::AuthenticationFailed));
    assert_eq!(i.state(), LoginState::Failed);
    assert_eq!(t.state(), LoginState::Failed);
}

#[test]
fn impostor_target_detected_by_mutual_chap() {
    let mut i = initiator(chap_auth(&[ChapAlgorithm::Sha256], true), Some(TARGET));
    let mut t = target(TargetAuth::Chap {
        expected: initiator_creds(),
        mutual: Some(Credentials::new("target", *b"impostor-secret")),
    });
    let run = drive(&mut i, &mut t);
    assert_eq!(run.i_err, Some(LoginError::Chap(ChapError::BadResponse)));
    assert_eq!(i.state(), LoginState::Failed);
}

#[test]
fn chap_required_but_not_offered() {
    let mut i = initiator(InitiatorAuth::None, Some(TARGET));
    let mut t = target(target_chap(false));
    let run = drive(&mut i, &mut t);
    assert_eq!(run.t_err, Some(LoginError::AuthenticationFailed));
    assert_eq!(run.i_err, Some(LoginError::AuthenticationFailed));
}

#[test]
fn unknown_target_gets_0203() {
    let mut i = initiator(InitiatorAuth::None, Some("iqn.2026-11.org.example:nope"));
    let mut t = target(TargetAuth::None);
    let run = drive(&mut i, &mut t);
    assert_eq!(run.last_status, Some(LoginStatus::NotFound));
    assert_eq!(run.i_err, Some(LoginError::TargetNotFound));
}

#[test]
fn initiator_not_in_acl_gets_0202() {
    let mut i = InitiatorLogin::new(InitiatorConfig {
        initiator_name: "iqn.2000-01.com.evil:x".into(),
        initiator_alias: None,
        target_name: Some(TARGET.into()),
        isid: Isid::default(),
        tsih: 0,
        cid: 0,
        itt: 1,
        cmd_sn: SerialNumber(0),
        auth: InitiatorAuth::None,
        params: LocalParams::default(),
    })
    .unwrap();
    let mut t = target(TargetAuth::None);
    let run = drive(&mut i, &mut t);
    assert_eq!(run.last_status, Some(LoginStatus::AuthorizationFailure));
    assert_eq!(run.i_err, Some(LoginError::Forbidden));
}

#[test]
fn discovery_session() {
    let mut i = initiator(InitiatorAuth::None, None);
    let mut t = target(TargetAuth::None);
    let run = drive(&mut i, &mut t);
    assert_eq!((run.i_err, run.t_err), (None, None));
    assert!(i.outcome().unwrap().session.discovery);
    assert!(t.outcome().unwrap().session.discovery);
}

fn request(csg: Stage, transit: bool, cont: bool, text: &[u8]) -> Pdu {
    Pdu::LoginRequest(LoginRequest {
        transit,
        cont,
        csg,
        nsg: if transit {
            Stage::FullFeaturePhase
        } else {
            Stage::SecurityNegotiation
        },
        version_max: 0,
        version_min: 0,
        isid: Isid::default(),
        tsih: 0,
        itt: 5,
        cid: 0,
        cmd_sn: SerialNumber(0),
        exp_stat_sn: SerialNumber(0),
        data: text.to_vec(),
    })
}

#[test]
fn missing_initiator_name_gets_0207() {
    let mut t = target(TargetAuth::None);
    let e = t.handle_pdu(
        &request(
            Stage::SecurityNegotiation,
            false,
            false,
            b"SessionType=Normal\0",
        ),
        &mut Counter(0),
    );
    assert_eq!(e, Err(LoginError::MissingParameter("InitiatorName")));
    assert_eq!(
        t.poll_transmit().unwrap().status,
        LoginStatus::MissingParameter
    );
    assert_eq!(
        t.handle_pdu(
            &request(Stage::SecurityNegotiation, false, false, b""),
            &mut Counter(0)
        ),
        Err(LoginError::Finished)
    );
}

#[test]
fn non_login_pdu_rejected() {
    let mut t = target(TargetAuth::None);
    let nop = Pdu::NopOut(NopOut {
        immediate: true,
        lun: crate::bhs::Lun::ZERO,
        itt: 1,
        ttt: 0xffff_ffff,
        cmd_sn: SerialNumber(0),
        exp_stat_sn: SerialNumber(0),
        data: vec![],
    });
    assert_eq!(
        t.handle_pdu(&nop, &mut Counter(0)),
        Err(LoginError::UnexpectedPdu(Opcode::NopOut))
    );
    assert_eq!(
        t.poll_transmit().unwrap().status,
        LoginStatus::InvalidDuringLogin
    );
}

#[test]
fn skipping_security_with_chap_required_gets_0201() {
    let mut t = target(target_chap(false));
    let text = format!("InitiatorName={INITIATOR}\0TargetName={TARGET}\0");
    let e = t.handle_pdu(
        &request(
            Stage::LoginOperationalNegotiation,
            true,
            false,
            text.as_bytes(),
        ),
        &mut Counter(0),
    );
    assert_eq!(e, Err(LoginError::AuthenticationFailed));
    assert_eq!(
        t.poll_transmit().unwrap().status,
        LoginStatus::AuthenticationFailure
    );
}

#[test]
fn continued_text_is_joined() {
    let mut t = target(TargetAuth::None);
    let text = format!("InitiatorName={INITIATOR}\0TargetName={TARGET}\0HeaderDigest=None\0");
    let (a, b) = text.as_bytes().split_at(20);
    t.handle_pdu(
        &request(Stage::LoginOperationalNegotiation, false, true, a),
        &mut Counter(0),
    )
    .unwrap();
    let ack = t.poll_transmit().unwrap();
    assert!(ack.data.is_empty() && !ack.transit);
    t.handle_pdu(
        &request(Stage::LoginOperationalNegotiation, true, false, b),
        &mut Counter(0),
    )
    .unwrap();
    let fin = t.poll_transmit().unwrap();
    assert!(fin.transit);
    assert_eq!(fin.nsg, Stage::FullFeaturePhase);
    assert_eq!(fin.tsih, 0x1234);
    assert_eq!(fin.stat_sn, SerialNumber(101));
    let pairs = TextPairs::parse(&fin.data).unwrap();
    assert_eq!(pairs.get(&Key::HeaderDigest), Some("None"));
    assert_eq!(pairs.get(&Key::MaxRecvDataSegmentLength), Some("262144"));
    assert_eq!(t.state(), LoginState::FullFeature);
}

#[test]
fn both_t_and_c_is_protocol_error() {
    let mut t = target(TargetAuth::None);
    let e = t.handle_pdu(
        &request(Stage::SecurityNegotiation, true, true, b""),
        &mut Counter(0),
    );
    assert_eq!(e, Err(LoginError::Protocol("T and C both set")));
    assert_eq!(
        t.poll_transmit().unwrap().status,
        LoginStatus::InitiatorError
    );
}

#[test]
fn error_status_mapping() {
    assert_eq!(
        LoginError::from_status(LoginStatus::AuthenticationFailure, None),
        LoginError::AuthenticationFailed
    );
    assert_eq!(
        LoginError::from_status(LoginStatus::AuthorizationFailure, None),
        LoginError::Forbidden
    );
    assert_eq!(
        LoginError::from_status(LoginStatus::NotFound, None),
        LoginError::TargetNotFound
    );
    assert!(matches!(
        LoginError::from_status(
            LoginStatus::TargetMovedTemporarily,
            Some("10.0.0.1:3260,1".into())
        ),
        LoginError::Redirected { .. }
    ));
    assert_eq!(
        LoginError::Forbidden.status(),
        LoginStatus::AuthorizationFailure
    );
    assert_eq!(LoginError::TargetNotFound.status(), LoginStatus::NotFound);
}

#[test]
fn fsm_enum_wraps_both_roles() {
    let mut i = LoginFsm::Initiator(initiator(InitiatorAuth::None, Some(TARGET)));
    let mut t = LoginFsm::Target(target(TargetAuth::None));
    let mut rng = Counter(0);
    for _ in 0..4 {
        while let Some(p) = i.poll_transmit() {
            t.handle_pdu(&p, &mut rng).unwrap();
        }
        while let Some(p) = t.poll_transmit() {
            i.handle_pdu(&p, &mut rng).unwrap();
        }
    }
    assert_eq!(i.state(), LoginState::FullFeature);
    assert_eq!(t.state(), LoginState::FullFeature);
    assert!(i.outcome().is_some() && t.outcome().is_some());
}

proptest! {
    /// Arbitrary PDUs (parsed from arbitrary bytes) never make either side panic.
    #[test]
    fn arbitrary_pdus_never_panic(pdus in proptest::collection::vec(
        (proptest::collection::vec(any::<u8>(), 48), proptest::collection::vec(any::<u8>(), 0..64)), 1..6),
        chap in any::<bool>())
    {
        let mut t = target(if chap { target_chap(true) } else { TargetAuth::None });
        let mut i = initiator(chap_auth(&ChapAlgorithm::ALL, true), Some(TARGET));
        let mut rng = Counter(3);
        for (mut bhs, data) in pdus {
            bhs[0] = if bhs[0] & 1 == 0 { 0x43 } else { 0x23 };
            bhs[4] = 0;
            bhs[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            if let Ok(p) = Pdu::parse(&bhs, &data) {
                let _ = t.handle_pdu(&p, &mut rng);
                let _ = i.handle_pdu(&p, &mut rng);
                while t.poll_transmit().is_some() {}
                while i.poll_transmit().is_some() {}
            }
        }
    }
}

#[test]
fn early_transit_request_keeps_security_stage() {
    let mut t = target(target_chap(false));
    let text = format!("InitiatorName={INITIATOR}\0TargetName={TARGET}\0AuthMethod=CHAP,None\0");
    t.handle_pdu(
        &request(Stage::SecurityNegotiation, true, false, text.as_bytes()),
        &mut Counter(0),
    )
    .unwrap();
    let rsp = t.poll_transmit().unwrap();
    assert!(!rsp.transit);
    assert_eq!(rsp.status, LoginStatus::Success);
    let pairs = TextPairs::parse(&rsp.data).unwrap();
    assert_eq!(pairs.get(&Key::AuthMethod), Some("CHAP"));
    assert_eq!(pairs.get(&Key::TargetPortalGroupTag), Some("1"));
    assert_eq!(t.state(), LoginState::Security);
}

#[test]
fn target_redirect_is_reported() {
    let mut i = initiator(InitiatorAuth::None, Some(TARGET));
    let req = i.poll_transmit().unwrap();
    let rsp = crate::pdu::LoginResponse {
        transit: false,
        cont: false,
        csg: Stage::SecurityNegotiation,
        nsg: Stage::SecurityNegotiation,
        version_max: 0,
        version_active: 0,
        isid: req.isid,
        tsih: 0,
        itt: req.itt,
        stat_sn: SerialNumber(0),
        exp_cmd_sn: SerialNumber(1),
        max_cmd_sn: SerialNumber(1),
        status: LoginStatus::TargetMovedTemporarily,
        data: b"TargetAddress=10.0.0.2:3260,1\0".to_vec(),
    };
    let e = i.handle_pdu(&Pdu::LoginResponse(rsp), &mut Counter(0));
    assert_eq!(
        e,
        Err(LoginError::Redirected {
            status: LoginStatus::TargetMovedTemporarily,
            address: Some("10.0.0.2:3260,1".into())
        })
    );
    assert_eq!(i.state(), LoginState::Failed);
}

fn login_with(
    auth_mode: u8,
    alg: ChapAlgorithm,
    i_params: LocalParams,
    t_params: LocalParams,
) -> (InitiatorLogin, TargetLogin, Run) {
    let (i_auth, t_auth) = match auth_mode {
        0 => (InitiatorAuth::None, TargetAuth::None),
        1 => (chap_auth(&[alg], false), target_chap(false)),
        _ => (chap_auth(&[alg], true), target_chap(true)),
    };
    let mut i = InitiatorLogin::new(InitiatorConfig {
        initiator_name: INITIATOR.into(),
        initiator_alias: Some("client".into()),
        target_name: Some(TARGET.into()),
        isid: Isid::random(7, 1),
        tsih: 0,
        cid: 1,
        itt: 0xabc,
        cmd_sn: SerialNumber(u32::MAX),
        auth: i_auth,
        params: i_params,
    })
    .unwrap();
    let mut t = TargetLogin::new(TargetConfig {
        params: t_params,
        chap_algorithms: ChapAlgorithm::ALL.to_vec(),
        stat_sn: SerialNumber(u32::MAX - 1),
        cmd_window: 16,
        policy: Box::new(Policy { auth: t_auth }),
    });
    let run = drive(&mut i, &mut t);
    (i, t, run)
}

proptest! {
    /// Any combination of authentication mode, CHAP algorithm and operational preferences
    /// logs in, and both ends agree on every negotiated value.
    #[test]
    fn random_configurations_agree(
        auth_mode in 0u8..3,
        alg in proptest::sample::select(ChapAlgorithm::ALL.to_vec()),
        (i_mrdsl, t_mrdsl) in (512u32..=0x00ff_ffff, 512u32..=0x00ff_ffff),
        (i_mbl, t_mbl) in (512u32..=0x00ff_ffff, 512u32..=0x00ff_ffff),
        (i_imm, t_imm, i_r2t, t_r2t) in (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        (i_hd, t_hd) in (any::<bool>(), any::<bool>()),
    ) {
        let digests = |crc: bool| {
            if crc {
                vec![crate::digest::DigestKind::Crc32c, crate::digest::DigestKind::None]
            } else {
                vec![crate::digest::DigestKind::None]
            }
        };
        let ip = LocalParams {
            max_recv_data_segment_length: i_mrdsl,
            max_burst_length: i_mbl,
            immediate_data: i_imm,
            initial_r2t: i_r2t,
            header_digest: digests(i_hd),
            ..LocalParams::default()
        };
        let tp = LocalParams {
            max_recv_data_segment_length: t_mrdsl,
            max_burst_length: t_mbl,
            immediate_data: t_imm,
            initial_r2t: t_r2t,
            header_digest: digests(t_hd),
            ..LocalParams::default()
        };
        let (i, t, run) = login_with(auth_mode, alg, ip, tp);
        prop_assert_eq!((&run.i_err, &run.t_err), (&None, &None));
        let (io, to) = (i.outcome().unwrap(), t.outcome().unwrap());
        prop_assert_eq!(io.session.max_burst_length, i_mbl.min(t_mbl));
        prop_assert_eq!(io.session.immediate_data, i_imm && t_imm);
        prop_assert_eq!(io.session.initial_r2t, i_r2t || t_r2t);
        prop_assert_eq!(io.conn.header_digest, to.conn.header_digest);
        prop_assert_eq!(io.conn.max_send_data_segment_length, t_mrdsl);
        prop_assert_eq!(to.conn.max_send_data_segment_length, i_mrdsl);
        prop_assert_eq!(io.cmd_sn, SerialNumber(u32::MAX));
        prop_assert_eq!(io.exp_stat_sn, to.exp_stat_sn);
        prop_assert_eq!(to.session.initiator_alias.as_deref(), Some("client"));
        prop_assert_eq!(io.tsih, to.tsih);
    }
}
