use super::*;
use proptest::prelude::*;

fn pairs(s: &[(&Key, &str)]) -> TextPairs {
    s.iter()
        .map(|(k, v)| ((*k).clone(), (*v).to_owned()))
        .collect()
}

/// Runs a full operational exchange: the initiator offers, the target answers (and may
/// offer its own keys), the initiator answers those.
fn exchange(i_local: LocalParams, t_local: LocalParams) -> (Negotiator, Negotiator) {
    let mut i = Negotiator::new(Role::Initiator, i_local);
    let mut t = Negotiator::new(Role::Target, t_local);
    let offer = i.offer(LocalParams::operational_keys(false));
    let mut answer = t.handle(&offer).unwrap();
    answer.extend(t.offer(&[Key::MaxRecvDataSegmentLength]));
    let back = i.handle(&answer).unwrap();
    assert!(back.is_empty(), "{back:?}");
    assert!(!i.awaiting_answers());
    (i, t)
}

#[test]
fn defaults_agree() {
    let (i, t) = exchange(LocalParams::default(), LocalParams::default());
    let (is, ic) = i.finish();
    let (ts, tc) = t.finish();
    assert_eq!(is, ts);
    assert_eq!(is.max_burst_length, 262_144);
    assert_eq!(
        ic.max_send_data_segment_length,
        tc.max_recv_data_segment_length
    );
    assert_eq!(
        tc.max_send_data_segment_length,
        ic.max_recv_data_segment_length
    );
}

#[test]
fn result_functions() {
    let i_local = LocalParams {
        max_burst_length: 1 << 20,
        first_burst_length: 8192,
        default_time2wait: 0,
        default_time2retain: 0,
        initial_r2t: false,
        immediate_data: true,
        data_pdu_in_order: true,
        header_digest: vec![DigestKind::Crc32c, DigestKind::None],
        data_digest: vec![DigestKind::None, DigestKind::Crc32c],
        max_outstanding_r2t: 8,
        ..LocalParams::default()
    };
    let t_local = LocalParams {
        max_burst_length: 65_536,
        first_burst_length: 65_536,
        default_time2wait: 5,
        default_time2retain: 10,
        initial_r2t: true,
        immediate_data: false,
        data_pdu_in_order: true,
        header_digest: vec![DigestKind::None, DigestKind::Crc32c],
        data_digest: vec![DigestKind::Crc32c, DigestKind::None],
        max_outstanding_r2t: 4,
        ..LocalParams::default()
    };
    let (i, t) = exchange(i_local, t_local);
    let ((s, c), (ts, tc)) = (i.finish(), t.finish());
    assert_eq!(s, ts);
    assert_eq!(s.max_burst_length, 65_536); // min
    assert_eq!(s.first_burst_length, 8192); // min
    assert_eq!(s.default_time2wait, 5); // max
    assert_eq!(s.default_time2retain, 0); // min
    assert!(s.initial_r2t); // OR
    assert!(!s.immediate_data); // AND
    assert_eq!(s.max_outstanding_r2t, 4);
    // List: the responder picks the first of the *offer* that it supports.
    assert_eq!(c.header_digest, DigestKind::Crc32c);
    assert_eq!(c.data_digest, DigestKind::None);
    assert_eq!(
        (tc.header_digest, tc.data_digest),
        (c.header_digest, c.data_digest)
    );
}

#[test]
fn first_burst_clamped_to_max_burst() {
    let mut t = Negotiator::new(Role::Target, LocalParams::default());
    let offer = pairs(&[
        (&Key::MaxBurstLength, "1024"),
        (&Key::FirstBurstLength, "65536"),
    ]);
    t.handle(&offer).unwrap();
    let (s, _) = t.finish();
    assert_eq!(s.max_burst_length, 1024);
    assert_eq!(s.first_burst_length, 1024);
}

#[test]
fn responder_answers() {
    let mut t = Negotiator::new(Role::Target, LocalParams::default());
    let out = t
        .handle(&pairs(&[
            (&Key::Unknown("X-com.example.foo".into()), "1"),
            (&Key::MaxBurstLength, "100"),
            (&Key::ErrorRecoveryLevel, "0x2"),
            (&Key::ImmediateData, "Maybe"),
            (&Key::HeaderDigest, "MD5"),
            (&Key::IfMarkInt, "2048~8192"),
            (&Key::InitiatorName, "iqn.x"),
        ]))
        .unwrap();
    let expect = pairs(&[
        (&Key::Unknown("X-com.example.foo".into()), NOT_UNDERSTOOD),
        (&Key::MaxBurstLength, REJECT),
        (&Key::ErrorRecoveryLevel, "0"),
        (&Key::ImmediateData, REJECT),
        (&Key::HeaderDigest, REJECT),
        (&Key::IfMarkInt, IRRELEVANT),
    ]);
    assert_eq!(out, expect);
    assert_eq!(t.peer_declared(&Key::InitiatorName), Some("iqn.x"));
    assert_eq!(t.finish().0.initiator_name.as_deref(), Some("iqn.x"));
}

#[test]
fn duplicates_are_errors() {
    let mut t = Negotiator::new(Role::Target, LocalParams::default());
    t.handle(&pairs(&[(&Key::MaxBurstLength, "8192")])).unwrap();
    assert_eq!(
        t.handle(&pairs(&[(&Key::MaxBurstLength, "8192")])),
        Err(NegotiationError::Duplicate("MaxBurstLength".into()))
    );
    t.handle(&pairs(&[(&Key::InitiatorName, "a")])).unwrap();
    assert!(t.handle(&pairs(&[(&Key::InitiatorName, "b")])).is_err());
}

#[test]
fn illegal_answers() {
    let cases = [
        (Key::MaxBurstLength, "999999"), // above our offer of 262144: min rule violated
        (Key::DefaultTime2Wait, "1"),    // below our offer of 2: max rule violated
        (Key::InitialR2T, "No"),         // we offered Yes: OR gives Yes
        (Key::HeaderDigest, "CRC32C"),   // not in our list
        (Key::HeaderDigest, "None,CRC32C"),
        (Key::MaxBurstLength, "12abc"),
    ];
    for (key, bad) in cases {
        let mut i = Negotiator::new(Role::Initiator, LocalParams::default());
        i.offer(core::slice::from_ref(&key));
        let r = i.handle(&pairs(&[(&key, bad)]));
        assert!(
            matches!(r, Err(NegotiationError::IllegalAnswer { .. })),
            "{key} {bad}: {r:?}"
        );
    }
    // ImmediateData offered No cannot come back Yes (AND).
    let local = LocalParams {
        immediate_data: false,
        ..LocalParams::default()
    };
    let mut i = Negotiator::new(Role::Initiator, local);
    i.offer(&[Key::ImmediateData]);
    assert!(i.handle(&pairs(&[(&Key::ImmediateData, "Yes")])).is_err());
}

#[test]
fn reject_keeps_default_but_auth_method_must_succeed() {
    let mut i = Negotiator::new(Role::Initiator, LocalParams::default());
    i.offer(&[Key::MaxBurstLength, Key::AuthMethod]);
    assert!(i.handle(&pairs(&[(&Key::MaxBurstLength, REJECT)])).is_ok());
    assert_eq!(i.finish().0.max_burst_length, 262_144);
    assert_eq!(
        i.handle(&pairs(&[(&Key::AuthMethod, REJECT)])),
        Err(NegotiationError::Rejected("AuthMethod".into()))
    );
}

#[test]
fn discovery_irrelevant() {
    let mut t = Negotiator::new(Role::Target, LocalParams::default());
    let out = t
        .handle(&pairs(&[
            (&Key::SessionType, "Discovery"),
            (&Key::MaxBurstLength, "8192"),
            (&Key::HeaderDigest, "None"),
        ]))
        .unwrap();
    assert_eq!(
        out,
        pairs(&[
            (&Key::MaxBurstLength, IRRELEVANT),
            (&Key::HeaderDigest, "None")
        ])
    );
    assert!(t.finish().0.discovery);
}

#[test]
fn auth_method_list() {
    let local = LocalParams {
        auth_methods: vec!["CHAP".into()],
        ..LocalParams::default()
    };
    let mut t = Negotiator::new(Role::Target, local);
    let out = t
        .handle(&pairs(&[(&Key::AuthMethod, "None,CHAP")]))
        .unwrap();
    assert_eq!(out.get(&Key::AuthMethod), Some("CHAP"));
    let mut t = Negotiator::new(Role::Target, LocalParams::default());
    let out = t.handle(&pairs(&[(&Key::AuthMethod, "CHAP")])).unwrap();
    assert_eq!(out.get(&Key::AuthMethod), Some(REJECT));
}

#[test]
fn numbers() {
    assert_eq!(parse_num("0x10"), Some(16));
    assert_eq!(parse_num("10"), Some(10));
    assert_eq!(parse_num(""), None);
    assert_eq!(parse_num("0x"), None);
    assert_eq!(parse_num("-1"), None);
    assert_eq!(parse_num("99999999999"), None);
}

fn arb_local() -> impl Strategy<Value = LocalParams> {
    (
        (
            512u32..0x00ff_ffff,
            512u32..0x00ff_ffff,
            1u32..65535,
            0u32..3600,
            0u32..3600,
        ),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0u32..=2,
        ),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((mbl, fbl, r2t, w, r), (ir2t, imm, pio, sio, erl), (hd, dd))| {
                let d = |b| {
                    if b {
                        vec![DigestKind::Crc32c, DigestKind::None]
                    } else {
                        vec![DigestKind::None]
                    }
                };
                LocalParams {
                    max_burst_length: mbl,
                    first_burst_length: fbl,
                    max_outstanding_r2t: r2t,
                    default_time2wait: w,
                    default_time2retain: r,
                    initial_r2t: ir2t,
                    immediate_data: imm,
                    data_pdu_in_order: pio,
                    data_sequence_in_order: sio,
                    error_recovery_level: erl,
                    header_digest: d(hd),
                    data_digest: d(dd),
                    ..LocalParams::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn both_roles_agree(a in arb_local(), b in arb_local()) {
        let (i, t) = exchange(a.clone(), b.clone());
        let ((s, c), (ts, tc)) = (i.finish(), t.finish());
        prop_assert_eq!(&s, &ts);
        prop_assert_eq!(s.max_burst_length, a.max_burst_length.min(b.max_burst_length));
        prop_assert_eq!(s.default_time2wait, a.default_time2wait.max(b.default_time2wait));
        prop_assert_eq!(s.initial_r2t, a.initial_r2t || b.initial_r2t);
        prop_assert_eq!(s.immediate_data, a.immediate_data && b.immediate_data);
        prop_assert!(s.first_burst_length <= s.max_burst_length);
        prop_assert_eq!(c.header_digest, tc.header_digest);
        prop_assert_eq!(c.data_digest, tc.data_digest);
    }

    #[test]
    fn handle_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = TextPairs::parse(&data) {
            let mut t = Negotiator::new(Role::Target, LocalParams::default());
            let _ = t.handle(&p);
            let _ = t.finish();
        }
    }
}

#[test]
fn session_type_anywhere_in_text() {
    let mut t = Negotiator::new(Role::Target, LocalParams::default());
    let out = t
        .handle(&pairs(&[
            (&Key::MaxBurstLength, "8192"),
            (&Key::SessionType, "Discovery"),
        ]))
        .unwrap();
    assert_eq!(out, pairs(&[(&Key::MaxBurstLength, IRRELEVANT)]));
}
