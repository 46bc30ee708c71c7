//! Golden vectors and property tests for every PDU type.

use super::*;
use crate::bhs::{Isid, Lun, RESERVED_TAG};
use crate::serial::SerialNumber;
use proptest::prelude::*;

/// Emits into a buffer pre-filled with 0xa5 so stale bytes would show.
fn emit_a5(p: &Pdu) -> Vec<u8> {
    let mut buf = vec![0xa5u8; p.buffer_len() + 7];
    let n = p.emit(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn read10_golden_both_ways() {
    // Provenance: RFC 3720 Appendix B.4, "iSCSI - SCSI Read (10) Command PDU".
    let raw = crate::digest::tests::READ10_BHS;
    let expected = ScsiCommand {
        immediate: false,
        fin: true,
        read: true,
        write: false,
        attr: TaskAttr::Untagged,
        lun: Lun::ZERO,
        itt: 0x1400_0000,
        expected_data_transfer_length: 1024,
        cmd_sn: SerialNumber(20),
        exp_stat_sn: SerialNumber(24),
        cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0],
        data: vec![],
    };
    let parsed = Pdu::parse(&raw, &[]).unwrap();
    assert_eq!(parsed, Pdu::ScsiCommand(expected));
    assert_eq!(emit_a5(&parsed), raw);
}

#[rustfmt::skip]
const LOGIN_REQ: [u8; 56] = [
    // Provenance: hand-assembled from RFC 7143 §11.12 (first login of a new session,
    // SecurityNegotiation -> LoginOperationalNegotiation, AuthMethod=None).
    0x43, 0x81, 0x00, 0x00, // I + Login Request, T, CSG 0, NSG 1, Version-max/min 0
    0x00, 0x00, 0x00, 0x05, // TotalAHSLength 0, DataSegmentLength 5
    0x80, 0x12, 0x34, 0x56, // ISID: type random
    0x00, 0x01, 0x00, 0x00, // ISID qualifier 1, TSIH 0
    0x00, 0x00, 0x00, 0x01, // ITT 1
    0x00, 0x00, 0x00, 0x00, // CID 0, reserved
    0x00, 0x00, 0x00, 0x07, // CmdSN 7
    0x00, 0x00, 0x00, 0x00, // ExpStatSN 0
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // reserved
    b'A', b'=', b'B', 0x00, 0x00, 0x00, 0x00, 0x00, // "A=B\0" + 3 pad
];

#[test]
fn login_request_golden() {
    let expected = LoginRequest {
        transit: true,
        cont: false,
        csg: Stage::SecurityNegotiation,
        nsg: Stage::LoginOperationalNegotiation,
        version_max: 0,
        version_min: 0,
        isid: Isid::random(0x12_3456, 1),
        tsih: 0,
        itt: 1,
        cid: 0,
        cmd_sn: SerialNumber(7),
        exp_stat_sn: SerialNumber(0),
        data: b"A=B\0\0".to_vec(),
    };
    // DataSegmentLength 5 covers "A=B\0" plus one more NUL; padding is the last 3 bytes.
    let parsed = Pdu::parse(&LOGIN_REQ[..48], &LOGIN_REQ[48..53]).unwrap();
    assert_eq!(parsed, Pdu::LoginRequest(expected));
    assert_eq!(emit_a5(&parsed), LOGIN_REQ);
}

#[test]
fn login_response_status() {
    let rsp = LoginResponse {
        transit: false,
        cont: false,
        csg: Stage::SecurityNegotiation,
        nsg: Stage::SecurityNegotiation,
        version_max: 0,
        version_active: 0,
        isid: Isid::default(),
        tsih: 0,
        itt: 9,
        stat_sn: SerialNumber(0),
        exp_cmd_sn: SerialNumber(1),
        max_cmd_sn: SerialNumber(1),
        status: LoginStatus::AuthenticationFailure,
        data: vec![],
    };
    let v = rsp.to_vec().unwrap();
    assert_eq!(&v[36..38], &[0x02, 0x01]);
    assert_eq!(LoginStatus::from_parts(2, 3), LoginStatus::NotFound);
    assert_eq!(LoginStatus::NotFound.class(), 2);
    assert_eq!(LoginStatus::from(0x0299), LoginStatus::Unknown(0x0299));
}

#[test]
fn scsi_response_sense_layout() {
    let rsp = ScsiResponse {
        status: 0x02,
        itt: 3,
        sense: vec![0x70, 0, 0x05],
        ..ScsiResponse::default()
    };
    let v = rsp.to_vec().unwrap();
    // DataSegmentLength = 2 + 3; SenseLength 3; sense; 3 pad bytes.
    assert_eq!(&v[5..8], &[0, 0, 5]);
    assert_eq!(&v[48..], &[0, 3, 0x70, 0, 0x05, 0, 0, 0]);
    assert_eq!(
        Pdu::parse(&v[..48], &v[48..53]).unwrap(),
        Pdu::ScsiResponse(rsp)
    );
    // SenseLength larger than the segment is an error, not a panic.
    let mut bad = v.clone();
    bad[49] = 9;
    assert!(matches!(
        Pdu::parse(&bad[..48], &bad[48..53]),
        Err(WireError::Truncated { .. })
    ));
}

#[test]
fn data_in_status_requires_final() {
    let d = DataIn {
        fin: true,
        ack: false,
        overflow: false,
        underflow: true,
        status: Some(0),
        lun: Lun::ZERO,
        itt: 1,
        ttt: RESERVED_TAG,
        stat_sn: SerialNumber(4),
        exp_cmd_sn: SerialNumber(5),
        max_cmd_sn: SerialNumber(6),
        data_sn: SerialNumber(0),
        buffer_offset: 0,
        residual_count: 512,
        data: vec![1, 2, 3, 4],
    };
    let mut v = d.to_vec().unwrap();
    assert_eq!(v[1], 0x83);
    assert_eq!(Pdu::parse(&v[..48], &v[48..]).unwrap(), Pdu::DataIn(d));
    v[1] = 0x01;
    assert!(matches!(
        Pdu::parse(&v[..48], &v[48..]),
        Err(WireError::BadField { .. })
    ));
}

#[test]
fn errors() {
    let mut raw = [0u8; 48];
    raw[0] = 0x07;
    assert_eq!(Pdu::parse(&raw, &[]), Err(WireError::UnknownOpcode(0x07)));
    raw[0] = 0x00;
    raw[7] = 4;
    assert_eq!(
        Pdu::parse(&raw, &[1, 2]),
        Err(WireError::DataSegmentMismatch {
            expected: 4,
            have: 2
        })
    );
    assert_eq!(
        Pdu::parse(&raw[..10], &[]),
        Err(WireError::Truncated { need: 48, have: 10 })
    );
    let mut bhs = [0u8; 48];
    bhs[0] = 0x31; // R2T with data
    bhs[7] = 1;
    assert_eq!(Pdu::parse(&bhs, &[0]), Err(WireError::UnexpectedData(1)));
    let nop = NopIn {
        lun: Lun::ZERO,
        itt: 1,
        ttt: 2,
        stat_sn: SerialNumber(0),
        exp_cmd_sn: SerialNumber(0),
        max_cmd_sn: SerialNumber(0),
        data: vec![0; 5],
    };
    assert_eq!(
        nop.emit(&mut [0u8; 55]),
        Err(WireError::Truncated { need: 56, have: 55 })
    );
}

#[test]
fn emit_header_matches_emit() {
    let d = DataOut {
        fin: true,
        lun: Lun::from_number(3).unwrap(),
        itt: 9,
        ttt: 0x77,
        exp_stat_sn: SerialNumber(5),
        data_sn: SerialNumber(1),
        buffer_offset: 8192,
        data: vec![0x5a; 13],
    };
    let full = d.to_vec().unwrap();
    let mut hdr = [0xa5u8; 48];
    d.emit_header(&mut hdr).unwrap();
    assert_eq!(&full[..48], &hdr);
    assert_eq!(&full[5..8], &[0, 0, 13]);
    assert_eq!(Pdu::DataOut(d).itt(), 9);
}

/// Golden vectors hand-assembled from the RFC 7143 §11 field diagrams, one per target PDU
/// family, checked both ways.
#[rustfmt::skip]
const GOLDEN: &[(&str, [u8; 48])] = &[
    ("R2T §11.8", [
        0x31, 0x80, 0, 0,          0, 0, 0, 0,               // opcode, F, TotalAHSLength 0, DSL 0
        0, 2, 0, 0, 0, 0, 0, 0,                               // LUN 2
        0, 0, 0, 0x11,             0, 0, 0, 0x22,            // ITT, TTT
        0, 0, 0, 0x33,             0, 0, 0, 0x34,            // StatSN, ExpCmdSN
        0, 0, 0, 0x40,             0, 0, 0, 0x01,            // MaxCmdSN, R2TSN
        0, 0, 0x10, 0,             0, 1, 0, 0,               // Buffer Offset 4096, DDTL 65536
    ]),
    ("Data-In §11.7.1 with status", [
        0x25, 0x83, 0, 0x02,       0, 0, 0, 0,               // F+U+S, status CHECK CONDITION
        0, 0, 0, 0, 0, 0, 0, 0,                               // LUN (reserved)
        0, 0, 0, 0x11,             0xff, 0xff, 0xff, 0xff,   // ITT, TTT
        0, 0, 0, 0x33,             0, 0, 0, 0x34,            // StatSN, ExpCmdSN
        0, 0, 0, 0x40,             0, 0, 0, 0x02,            // MaxCmdSN, DataSN
        0, 0, 0x20, 0,             0, 0, 0x02, 0,            // Buffer Offset 8192, Residual 512
    ]),
    ("SCSI Response §11.4", [
        0x21, 0x84, 0x00, 0x00,    0, 0, 0, 0,               // F+O, Response 0, Status GOOD
        0, 0, 0, 0, 0, 0, 0, 0,                               // reserved
        0, 0, 0, 0x11,             0, 0, 0, 0,               // ITT, SNACK Tag
        0, 0, 0, 0x33,             0, 0, 0, 0x34,            // StatSN, ExpCmdSN
        0, 0, 0, 0x40,             0, 0, 0, 0x03,            // MaxCmdSN, ExpDataSN
        0, 0, 0, 0,                0, 0, 0x01, 0,            // Bidi residual, Residual 256
    ]),
    ("Logout Response §11.15", [
        0x26, 0x80, 0x00, 0,       0, 0, 0, 0,               // Response: closed successfully
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0x11,             0, 0, 0, 0,               // ITT, reserved
        0, 0, 0, 0x33,             0, 0, 0, 0x34,            // StatSN, ExpCmdSN
        0, 0, 0, 0x40,             0, 0, 0, 0,               // MaxCmdSN, reserved
        0, 2, 0, 20,               0, 0, 0, 0,               // Time2Wait 2, Time2Retain 20
    ]),
    ("Task Management Request §11.5", [
        0x42, 0x81, 0, 0,          0, 0, 0, 0,               // I + TMF, F + ABORT TASK
        0, 1, 0, 0, 0, 0, 0, 0,                               // LUN 1
        0, 0, 0, 0x12,             0, 0, 0, 0x11,            // ITT, Referenced Task Tag
        0, 0, 0, 0x35,             0, 0, 0, 0x34,            // CmdSN, ExpStatSN
        0, 0, 0, 0x30,             0, 0, 0, 0x00,            // RefCmdSN, ExpDataSN
        0, 0, 0, 0,                0, 0, 0, 0,
    ]),
    ("Async Message §11.9", [
        0x32, 0x80, 0, 0,          0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0xff, 0xff, 0xff, 0xff,    0, 0, 0, 0,               // ITT reserved
        0, 0, 0, 0x33,             0, 0, 0, 0x34,            // StatSN, ExpCmdSN
        0, 0, 0, 0x40,             0x01, 0x00, 0x00, 0x05,   // MaxCmdSN, logout requested, P1 5 s
        0, 0, 0, 0,                0, 0, 0, 0,
    ]),
];

#[test]
fn golden_target_pdus() {
    for (name, raw) in GOLDEN {
        let p = Pdu::parse(raw, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&emit_a5(&p)[..], &raw[..], "{name}");
    }
    // Spot-check the decoded fields.
    match Pdu::parse(&GOLDEN[0].1, &[]).unwrap() {
        Pdu::R2t(r) => {
            assert_eq!(r.lun, Lun::from_number(2).unwrap());
            assert_eq!((r.itt, r.ttt), (0x11, 0x22));
            assert_eq!(r.r2t_sn, SerialNumber(1));
            assert_eq!(
                (r.buffer_offset, r.desired_data_transfer_length),
                (4096, 65536)
            );
        }
        other => panic!("{other:?}"),
    }
    match Pdu::parse(&GOLDEN[1].1, &[]).unwrap() {
        Pdu::DataIn(d) => {
            assert!(d.fin && d.underflow && !d.overflow);
            assert_eq!(d.status, Some(0x02));
            assert_eq!(
                (d.data_sn, d.buffer_offset, d.residual_count),
                (SerialNumber(2), 8192, 512)
            );
        }
        other => panic!("{other:?}"),
    }
    match Pdu::parse(&GOLDEN[3].1, &[]).unwrap() {
        Pdu::LogoutResponse(l) => {
            assert_eq!(l.response, LogoutResponseCode::Closed);
            assert_eq!((l.time2wait, l.time2retain), (2, 20));
        }
        other => panic!("{other:?}"),
    }
    match Pdu::parse(&GOLDEN[4].1, &[]).unwrap() {
        Pdu::TaskMgmtRequest(t) => {
            assert!(t.immediate);
            assert_eq!(t.function, TaskMgmtFunction::AbortTask);
            assert_eq!(t.referenced_task_tag, 0x11);
            assert_eq!(t.ref_cmd_sn, SerialNumber(0x30));
        }
        other => panic!("{other:?}"),
    }
    match Pdu::parse(&GOLDEN[5].1, &[]).unwrap() {
        Pdu::AsyncMessage(a) => {
            assert_eq!(a.event, AsyncEvent::LogoutRequested);
            assert_eq!(a.parameter1, 5);
        }
        other => panic!("{other:?}"),
    }
}

const OPCODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31,
    0x32, 0x3f,
];

fn arb_pdu_bytes() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (
        proptest::sample::select(OPCODES),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 48),
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(op, imm, mut bhs, data)| {
            bhs[0] = op | if imm { 0x40 } else { 0 };
            let len = data.len();
            bhs[4] = 0;
            bhs[5..8].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
            // Zero-length for opcodes that forbid data, half of the time.
            (bhs, data)
        })
}

proptest! {
    #[test]
    fn parse_any_bytes_never_panics(bhs in proptest::collection::vec(any::<u8>(), 0..64),
                                    data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Pdu::parse(&bhs, &data);
    }

    /// Every PDU value reachable by parsing round-trips: parse(emit(r)) == r, and emitting
    /// twice gives identical bytes.
    #[test]
    fn round_trip((bhs, data) in arb_pdu_bytes()) {
        if let Ok(r) = Pdu::parse(&bhs, &data) {
            let wire = emit_a5(&r);
            prop_assert_eq!(wire.len() % 4, 0);
            let dl = r.data_len();
            let again = Pdu::parse(&wire[..48], &wire[48..48 + dl]).unwrap();
            prop_assert_eq!(&again, &r);
            prop_assert_eq!(emit_a5(&again), wire);
        }
    }

    #[test]
    fn round_trip_without_data((mut bhs, _d) in arb_pdu_bytes()) {
        bhs[5..8].fill(0);
        let r = Pdu::parse(&bhs, &[]);
        // With no data and a known opcode, only a Data-In S-without-F is refused.
        if let Ok(r) = r {
            let wire = emit_a5(&r);
            prop_assert_eq!(Pdu::parse(&wire[..48], &[]).unwrap(), r);
        } else {
            prop_assert_eq!(bhs[0] & 0x3f, 0x25);
        }
    }
}
