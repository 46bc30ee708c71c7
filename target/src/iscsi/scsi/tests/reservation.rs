//! RESERVE(6)/RELEASE(6) and PERSISTENT RESERVE IN/OUT.

use super::*;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::sense::*;

const R6: [u8; 6] = [RESERVE_6, 0, 0, 0, 0, 0];
const REL6: [u8; 6] = [RELEASE_6, 0, 0, 0, 0, 0];
const TUR: [u8; 6] = [TEST_UNIT_READY, 0, 0, 0, 0, 0];

fn prout(lun: &Lun, n: &ItNexus, sa: u8, ty: u8, rk: u64, sark: u64) -> ScsiResult {
    let mut p = Vec::new();
    p.extend_from_slice(&rk.to_be_bytes());
    p.extend_from_slice(&sark.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    lun.execute(n, &[PR_OUT, sa, ty, 0, 0, 0, 0, 0, 24, 0], &p)
}

fn prin(lun: &Lun, n: &ItNexus, sa: u8) -> Vec<u8> {
    let r = lun.execute(n, &[PR_IN, sa, 0, 0, 0, 0, 0, 0x10, 0, 0], &[]);
    good(&r).to_vec()
}

fn keys(lun: &Lun, n: &ItNexus) -> (u32, Vec<u64>) {
    let d = prin(lun, n, 0);
    let gen = u32::from_be_bytes(d[0..4].try_into().unwrap());
    let len = u32::from_be_bytes(d[4..8].try_into().unwrap()) as usize;
    assert_eq!(len + 8, d.len());
    (
        gen,
        d[8..]
            .chunks(8)
            .map(|k| u64::from_be_bytes(k.try_into().unwrap()))
            .collect(),
    )
}

/// (key, type) of the reservation, if any.
fn reservation(lun: &Lun, n: &ItNexus) -> Option<(u64, u8)> {
    let d = prin(lun, n, 1);
    match u32::from_be_bytes(d[4..8].try_into().unwrap()) {
        0 => None,
        16 => Some((
            u64::from_be_bytes(d[8..16].try_into().unwrap()),
            d[21] & 0x0F,
        )),
        l => panic!("bad length {l}"),
    }
}

#[test]
fn reserve6_release6() {
    let (_, lun) = mem_lun(64);
    let (a, b) = (nexus(1), nexus(2));
    good(&lun.execute(&a, &R6, &[]));
    good(&lun.execute(&a, &R6, &[]));
    good(&lun.execute(&a, &TUR, &[]));
    assert_conflict(&lun.execute(&b, &TUR, &[]));
    assert_conflict(&lun.execute(&b, &R6, &[]));
    assert_conflict(&lun.execute(&b, &cdb10(READ_10, 0, 0, 1), &[]));
    assert_conflict(&lun.execute(&b, &[PR_IN, 0, 0, 0, 0, 0, 0, 0, 8, 0], &[]));
    good(&lun.execute(&b, &[INQUIRY, 0, 0, 0, 36, 0], &[]));
    good(&lun.execute(&b, &[REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], &[]));
    good(&lun.execute(&b, &[READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]));
    // RELEASE from someone else is GOOD and does nothing.
    good(&lun.execute(&b, &REL6, &[]));
    assert_conflict(&lun.execute(&b, &TUR, &[]));
    good(&lun.execute(&a, &REL6, &[]));
    good(&lun.execute(&b, &TUR, &[]));
    // Obsolete third-party bits.
    assert_sense(
        &lun.execute(&a, &[RESERVE_6, 1, 0, 0, 0, 0], &[]),
        INVALID_FIELD_IN_CDB,
    );
    assert_sense(
        &lun.execute(&a, &[RELEASE_6, 1, 0, 0, 0, 0], &[]),
        INVALID_FIELD_IN_CDB,
    );
    // LUN reset and nexus loss drop the reservation.
    good(&lun.execute(&a, &R6, &[]));
    lun.reset(Some(&a));
    assert_sense(&lun.execute(&b, &TUR, &[]), UA_LU_RESET);
    good(&lun.execute(&b, &TUR, &[]));
    // The nexus that asked for the reset gets the unit attention too (SAM-5 6.3).
    assert_sense(&lun.execute(&a, &R6, &[]), UA_LU_RESET);
    good(&lun.execute(&a, &R6, &[]));
    // A nexus that never spoke to the LUN but issued the reset is told as well.
    let c = nexus(7);
    lun.reset(Some(&c));
    assert_sense(&lun.execute(&c, &TUR, &[]), UA_LU_RESET);
    assert_sense(&lun.execute(&a, &TUR, &[]), UA_LU_RESET);
    assert_sense(&lun.execute(&b, &TUR, &[]), UA_LU_RESET);
    good(&lun.execute(&a, &R6, &[]));
    lun.nexus_lost(&a);
    good(&lun.execute(&b, &R6, &[]));
    // With a persistent registration, RESERVE(6) conflicts.
    good(&lun.execute(&b, &REL6, &[]));
    good(&prout(&lun, &a, 0, 0, 0, 0xA));
    assert_conflict(&lun.execute(&b, &R6, &[]));
    assert_conflict(&lun.execute(&a, &R6, &[]));
}

#[test]
fn register_and_read_keys() {
    let (_, lun) = mem_lun(64);
    let (a, b) = (nexus(1), nexus(2));
    assert_eq!(keys(&lun, &a), (0, vec![]));
    // Unregistered with a non-zero reservation key: conflict.
    assert_conflict(&prout(&lun, &a, 0, 0, 5, 0xA));
    good(&prout(&lun, &a, 0, 0, 0, 0xA));
    good(&prout(&lun, &b, 0, 0, 0, 0xB));
    assert_eq!(keys(&lun, &a), (2, vec![0xA, 0xB]));
    // Wrong key to change: conflict; right key changes.
    assert_conflict(&prout(&lun, &a, 0, 0, 0xB, 0xC));
    good(&prout(&lun, &a, 0, 0, 0xA, 0xC));
    assert_eq!(keys(&lun, &b).1, vec![0xC, 0xB]);
    // REGISTER AND IGNORE EXISTING KEY.
    good(&prout(&lun, &a, 6, 0, 0x1234, 0xD));
    assert_eq!(keys(&lun, &b).1, vec![0xD, 0xB]);
    // Unregister with SARK 0.
    good(&prout(&lun, &a, 0, 0, 0xD, 0));
    assert_eq!(keys(&lun, &b).1, vec![0xB]);
    good(&prout(&lun, &b, 6, 0, 0, 0));
    assert_eq!(keys(&lun, &b).1, Vec::<u64>::new());
    // Registering key 0 when unregistered is a no-op.
    good(&prout(&lun, &a, 0, 0, 0, 0));
    assert!(keys(&lun, &a).1.is_empty());
    // Allocation length truncates.
    good(&prout(&lun, &a, 0, 0, 0, 0xA));
    let r = lun.execute(&a, &[PR_IN, 0, 0, 0, 0, 0, 0, 0, 12, 0], &[]);
    assert_eq!(good(&r).len(), 12);
}

#[test]
fn reserve_release_types() {
    let (_, lun) = mem_lun(64);
    let (a, b, c) = (nexus(1), nexus(2), nexus(3));
    let rd = cdb10(READ_10, 0, 0, 1);
    let wr = cdb10(WRITE_10, 0, 0, 1);
    let blk = [0u8; 512];
    // Unregistered nexus cannot reserve.
    assert_conflict(&prout(&lun, &a, 1, 1, 0, 0));
    good(&prout(&lun, &a, 0, 0, 0, 0xA));
    good(&prout(&lun, &b, 0, 0, 0, 0xB));
    // Wrong key.
    assert_conflict(&prout(&lun, &a, 1, 1, 0xB, 0));
    for (ty, b_reads, b_writes, c_reads, c_writes) in [
        (1u8, true, false, true, false),
        (3, false, false, false, false),
        (5, true, true, true, false),
        (6, true, true, false, false),
        (7, true, true, true, false),
        (8, true, true, false, false),
    ] {
        good(&prout(&lun, &a, 1, ty, 0xA, 0));
        // Same type again is fine; another type or another nexus conflicts.
        good(&prout(&lun, &a, 1, ty, 0xA, 0));
        let other = if ty == 1 { 3 } else { 1 };
        assert_conflict(&prout(&lun, &a, 1, other, 0xA, 0));
        if ty < 7 {
            assert_conflict(&prout(&lun, &b, 1, ty, 0xB, 0));
        }
        let res = reservation(&lun, &c).unwrap();
        assert_eq!(res, (if ty >= 7 { 0 } else { 0xA }, ty));
        good(&lun.execute(&a, &rd, &[]));
        good(&lun.execute(&a, &wr, &blk));
        let check = |n: &ItNexus, cdb: &[u8], ok: bool| {
            let r = lun.execute(n, cdb, &blk);
            if ok {
                good(&r);
            } else {
                assert_conflict(&r);
            }
        };
        check(&b, &rd, b_reads);
        check(&b, &wr, b_writes);
        check(&c, &rd, c_reads);
        check(&c, &wr, c_writes);
        // Always allowed.
        good(&lun.execute(&c, &TUR, &[]));
        good(&lun.execute(&c, &[INQUIRY, 0, 0, 0, 36, 0], &[]));
        good(&lun.execute(&c, &[READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]));
        assert_conflict(&lun.execute(&c, &R6, &[]));
        // RELEASE with the wrong type, from a non-holder, then properly.
        assert_sense(&prout(&lun, &a, 2, other, 0xA, 0), INVALID_RELEASE);
        if ty < 7 {
            good(&prout(&lun, &b, 2, ty, 0xB, 0));
            assert!(reservation(&lun, &c).is_some());
        }
        good(&prout(&lun, &a, 2, ty, 0xA, 0));
        assert!(reservation(&lun, &c).is_none());
        // RESERVATIONS RELEASED for the other registrants of registrants-only types.
        if ty >= 5 {
            assert_sense(&lun.execute(&b, &TUR, &[]), UA_RESERVATIONS_RELEASED);
        }
        // Releasing with nothing reserved is GOOD.
        good(&prout(&lun, &a, 2, ty, 0xA, 0));
    }
    // Unregistering the holder drops the reservation.
    good(&prout(&lun, &a, 1, 3, 0xA, 0));
    good(&prout(&lun, &a, 0, 0, 0xA, 0));
    assert!(reservation(&lun, &c).is_none());
}

#[test]
fn clear_and_preempt() {
    let (_, lun) = mem_lun(64);
    let (a, b, c) = (nexus(1), nexus(2), nexus(3));
    good(&prout(&lun, &a, 0, 0, 0, 0xA));
    good(&prout(&lun, &b, 0, 0, 0, 0xB));
    good(&prout(&lun, &c, 0, 0, 0, 0xB));
    good(&prout(&lun, &b, 1, 3, 0xB, 0));
    // CLEAR needs a registered nexus with the right key.
    assert_conflict(&prout(&lun, &nexus(9), 3, 0, 0, 0));
    assert_conflict(&prout(&lun, &a, 3, 0, 0xB, 0));
    // PREEMPT the holder's key: takes the reservation, removes both 0xB registrations.
    let gen = keys(&lun, &a).0;
    good(&prout(&lun, &a, 4, 1, 0xA, 0xB));
    assert_eq!(keys(&lun, &a), (gen + 1, vec![0xA]));
    assert_eq!(reservation(&lun, &a), Some((0xA, 1)));
    assert_sense(&lun.execute(&b, &TUR, &[]), UA_REGISTRATIONS_PREEMPTED);
    assert_sense(&lun.execute(&c, &TUR, &[]), UA_REGISTRATIONS_PREEMPTED);
    // b is no longer registered.
    assert_conflict(&prout(&lun, &b, 1, 1, 0xB, 0));
    // PREEMPT of a key nobody has: conflict. SARK 0 without all-registrants: invalid.
    assert_conflict(&prout(&lun, &a, 4, 1, 0xA, 0x77));
    assert_sense(&prout(&lun, &a, 4, 1, 0xA, 0), INVALID_FIELD_IN_PARAM);
    // PREEMPT a non-holder registration: reservation unchanged.
    good(&prout(&lun, &b, 0, 0, 0, 0xE));
    good(&prout(&lun, &a, 5, 1, 0xA, 0xE));
    assert_eq!(keys(&lun, &a).1, vec![0xA]);
    assert_eq!(reservation(&lun, &a), Some((0xA, 1)));
    // PREEMPT with no reservation removes registrations only.
    good(&prout(&lun, &a, 2, 1, 0xA, 0));
    assert_sense(&prout(&lun, &b, 0, 0, 0, 0xE), UA_REGISTRATIONS_PREEMPTED);
    good(&prout(&lun, &b, 0, 0, 0, 0xE));
    good(&prout(&lun, &a, 4, 3, 0xA, 0xE));
    assert!(reservation(&lun, &a).is_none());
    // All-registrants: SARK 0 preempts everyone else and takes a new reservation.
    assert_sense(&lun.execute(&b, &TUR, &[]), UA_REGISTRATIONS_PREEMPTED);
    good(&prout(&lun, &b, 0, 0, 0, 0xE));
    good(&prout(&lun, &b, 1, 7, 0xE, 0));
    good(&prout(&lun, &a, 4, 3, 0xA, 0));
    assert_eq!(reservation(&lun, &a), Some((0xA, 3)));
    assert_eq!(keys(&lun, &a).1, vec![0xA]);
    // CLEAR removes everything and notifies the others.
    assert_sense(&lun.execute(&b, &TUR, &[]), UA_REGISTRATIONS_PREEMPTED);
    good(&prout(&lun, &b, 0, 0, 0, 0xB));
    good(&prout(&lun, &a, 3, 0, 0xA, 0));
    assert!(keys(&lun, &a).1.is_empty());
    assert!(reservation(&lun, &a).is_none());
    assert_sense(&lun.execute(&b, &TUR, &[]), UA_RESERVATIONS_PREEMPTED);
}

#[test]
fn pr_errors_and_capabilities() {
    let (_, lun) = mem_lun(64);
    let a = nexus(1);
    // Capabilities.
    let d = prin(&lun, &a, 2);
    assert_eq!(&d[..2], &[0, 8]);
    assert_eq!(d[3] & 0x80, 0x80);
    assert_eq!(u16::from_be_bytes([d[4], d[5]]), 0xEA01);
    // PR IN service actions 4..0x1F are invalid.
    for sa in 4..0x20u8 {
        let r = lun.execute(&a, &[PR_IN, sa, 0, 0, 0, 0, 0, 0x10, 0, 0], &[]);
        assert_sense(&r, INVALID_FIELD_IN_CDB);
    }
    // PR OUT: REGISTER AND MOVE and reserved service actions.
    for sa in 7..0x20u8 {
        assert_sense(&prout(&lun, &a, sa, 0, 0, 1), INVALID_FIELD_IN_CDB);
    }
    // Parameter list length must be 24.
    let r = lun.execute(&a, &[PR_OUT, 0, 0, 0, 0, 0, 0, 0, 20, 0], &[0; 24]);
    assert_sense(&r, PARAM_LIST_LENGTH);
    let r = lun.execute(&a, &[PR_OUT, 0, 0, 0, 0, 0, 0, 0, 24, 0], &[0; 10]);
    assert_sense(&r, INVALID_FIELD_IN_IU);
    // APTPL, ALL_TG_PT, SPEC_I_PT unsupported.
    for f in [0x01u8, 0x04, 0x08] {
        let mut p = [0u8; 24];
        p[15] = 1;
        p[20] = f;
        let r = lun.execute(&a, &[PR_OUT, 0, 0, 0, 0, 0, 0, 0, 24, 0], &p);
        assert_sense(&r, INVALID_FIELD_IN_PARAM);
    }
    // Bad type or scope.
    good(&prout(&lun, &a, 0, 0, 0, 0xA));
    for ty in [0u8, 2, 4, 9, 0xF, 0x11] {
        assert_sense(&prout(&lun, &a, 1, ty, 0xA, 0), INVALID_FIELD_IN_CDB);
    }
    // Persistent reservations survive a LUN reset.
    good(&prout(&lun, &a, 1, 1, 0xA, 0));
    lun.reset(None);
    assert_sense(&lun.execute(&a, &TUR, &[]), UA_LU_RESET);
    assert_eq!(reservation(&lun, &a), Some((0xA, 1)));
}

#[test]
fn read_full_status() {
    let (_, lun) = mem_lun(64);
    let (a, b) = (nexus(1), ItNexus::new("iqn.2026-11.org.example:other", 2));
    let d = prin(&lun, &a, 3);
    assert_eq!(&d, &[0u8, 0, 0, 0, 0, 0, 0, 0]);
    good(&prout(&lun, &a, 0, 0, 0, 0xA));
    good(&prout(&lun, &b, 0, 0, 0, 0xB));
    good(&prout(&lun, &a, 1, 5, 0xA, 0));
    let d = prin(&lun, &a, 3);
    assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()), 2);
    let len = u32::from_be_bytes(d[4..8].try_into().unwrap()) as usize;
    assert_eq!(len + 8, d.len());
    // First descriptor: a, holder of a WE-RO reservation, ISID format TransportID.
    let desc = &d[8..];
    assert_eq!(u64::from_be_bytes(desc[0..8].try_into().unwrap()), 0xA);
    assert_eq!((desc[12], desc[13]), (1, 5));
    assert_eq!(&desc[18..20], &[0, 1]);
    let tlen = u32::from_be_bytes(desc[20..24].try_into().unwrap()) as usize;
    let tid = &desc[24..24 + tlen];
    assert_eq!(tid[0], 0x45);
    let body_len = usize::from(u16::from_be_bytes([tid[2], tid[3]]));
    assert_eq!(body_len + 4, tid.len());
    assert_eq!(body_len % 4, 0);
    assert!(tid[4..].starts_with(nexus(1).initiator_port().as_bytes()));
    // Second: b, not a holder, name-only TransportID.
    let desc = &desc[24 + tlen..];
    assert_eq!(u64::from_be_bytes(desc[0..8].try_into().unwrap()), 0xB);
    assert_eq!((desc[12], desc[13]), (0, 0));
    assert_eq!(&desc[18..20], &[0, 2]);
    let tlen = u32::from_be_bytes(desc[20..24].try_into().unwrap()) as usize;
    assert_eq!(desc[24], 0x05);
    assert!(tlen >= 24);
    assert_eq!(desc.len(), 24 + tlen);
}
