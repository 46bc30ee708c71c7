//! EXTENDED COPY (LID1) and RECEIVE COPY RESULTS, within one LUN and between LUNs of a set,
//! over both backstores.

use super::*;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::sense::*;
use crate::iscsi::scsi::LunSet;
use proptest::prelude::*;
use std::slice;

/// EXTENDED COPY CDB for a parameter list of `len` bytes.
fn xcopy_cdb(len: usize) -> Vec<u8> {
    let mut c = vec![0u8; 16];
    c[0] = EXTENDED_COPY;
    c[10..14].copy_from_slice(&(len as u32).to_be_bytes());
    c
}

/// RECEIVE COPY RESULTS CDB.
pub(super) fn rcr(sa: u8, list_id: u8, alloc: u32) -> Vec<u8> {
    let mut c = vec![0u8; 16];
    c[0] = RECEIVE_COPY_RESULTS;
    c[1] = sa;
    c[2] = list_id;
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

/// Identification descriptor target descriptor naming `lun` by its NAA.
pub(super) fn target(lun: &Lun) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    d[0] = 0xE4;
    d[4] = 0x01; // binary
    d[5] = 0x03; // LU association, NAA
    d[7] = 8;
    d[8..16].copy_from_slice(&lun.naa());
    d[29..32].copy_from_slice(&[0, 2, 0]); // disk block length 512
    d
}

/// Block device to block device segment descriptor.
pub(super) fn segment(src: u16, dst: u16, blocks: u16, src_lba: u64, dst_lba: u64) -> Vec<u8> {
    let mut d = vec![0u8; 28];
    d[0] = 0x02;
    d[3] = 0x18;
    d[4..6].copy_from_slice(&src.to_be_bytes());
    d[6..8].copy_from_slice(&dst.to_be_bytes());
    d[10..12].copy_from_slice(&blocks.to_be_bytes());
    d[12..20].copy_from_slice(&src_lba.to_be_bytes());
    d[20..28].copy_from_slice(&dst_lba.to_be_bytes());
    d
}

/// A parameter list: header with `list_id` and LIST ID USAGE `usage`, then the descriptors.
pub(super) fn params(list_id: u8, usage: u8, targets: &[Vec<u8>], segments: &[Vec<u8>]) -> Vec<u8> {
    let t: Vec<u8> = targets.concat();
    let s: Vec<u8> = segments.concat();
    let mut p = vec![0u8; 16];
    p[0] = list_id;
    p[1] = usage << 3;
    p[2..4].copy_from_slice(&(t.len() as u16).to_be_bytes());
    p[8..12].copy_from_slice(&(s.len() as u32).to_be_bytes());
    p.extend_from_slice(&t);
    p.extend_from_slice(&s);
    p
}

pub(super) fn xcopy(lun: &Lun, p: &[u8]) -> ScsiResult {
    run_data(lun, &xcopy_cdb(p.len()), p)
}

fn read(lun: &Lun, lba: u32, n: u16) -> Vec<u8> {
    good(&run(lun, &cdb10(READ_10, 0, lba, n))).to_vec()
}

fn write(lun: &Lun, lba: u32, data: &[u8]) {
    let n = (data.len() / 512) as u16;
    good(&run_data(lun, &cdb10(WRITE_10, 0, lba, n), data));
}

/// Copy within one LUN, then COPY STATUS, RECEIVE DATA and FAILED SEGMENT DETAILS.
fn copy_within(lun: &Lun) {
    let src = pattern(3000, 0x5A);
    write(lun, 10, &src);
    let p = params(
        7,
        0,
        &[target(lun)],
        &[segment(0, 0, 3000, 10, 4000), segment(0, 0, 1, 10, 7999)],
    );
    good(&xcopy(lun, &p));
    assert_eq!(read(lun, 4000, 3000), src);
    assert_eq!(read(lun, 7999, 1), &src[..512]);

    let r = run(lun, &rcr(0x00, 7, 1024));
    let d = good(&r);
    assert_eq!(d.len(), 12);
    assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()), 8);
    assert_eq!(d[4], 0x01); // completed without errors
    assert_eq!(u16::from_be_bytes([d[5], d[6]]), 2);
    assert_eq!(d[7], 0); // bytes
    assert_eq!(u32::from_be_bytes(d[8..12].try_into().unwrap()), 3001 * 512);
    assert_eq!(good(&run(lun, &rcr(0x01, 7, 1024))), &[0, 0, 0, 0]);
    assert_eq!(good(&run(lun, &rcr(0x04, 7, 1024))), &[0, 0, 0, 0]);
    assert_eq!(good(&run(lun, &rcr(0x00, 7, 5))).len(), 5);
    // Unknown list identifier, other nexus, unknown service action.
    assert_sense(&run(lun, &rcr(0x00, 8, 1024)), INVALID_FIELD_IN_CDB);
    assert_sense(
        &lun.execute(&nexus(2), &rcr(0x00, 7, 1024), &[]),
        INVALID_FIELD_IN_CDB,
    );
    assert_sense(&run(lun, &rcr(0x02, 7, 1024)), INVALID_FIELD_IN_CDB);
    // Nexus loss drops the held results.
    lun.nexus_lost(&nexus(1));
    assert_sense(&run(lun, &rcr(0x00, 7, 1024)), INVALID_FIELD_IN_CDB);
}

#[test]
fn copy_within_a_lun() {
    let (_, mem) = mem_lun(8192);
    copy_within(&mem);
    let (_t, file) = file_lun(8192);
    copy_within(&file);
}

#[test]
fn operating_parameters() {
    let (_, lun) = mem_lun(64);
    let r = run(&lun, &rcr(0x03, 0, 1024));
    let d = good(&r);
    assert_eq!(d.len(), 46);
    assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()), 42);
    assert_eq!(u16::from_be_bytes([d[8], d[9]]), 8); // targets
    assert_eq!(u16::from_be_bytes([d[10], d[11]]), 8); // segments
    assert_eq!(u32::from_be_bytes(d[12..16].try_into().unwrap()), 1024);
    assert_eq!(
        u32::from_be_bytes(d[16..20].try_into().unwrap()),
        0xFFFF * 512
    );
    assert_eq!(&d[20..32], &[0; 12]); // no inline, held or stream data
    assert_eq!(d[37], 9);
    assert_eq!(&d[43..], &[2, 0x02, 0xE4]);
    assert_eq!(good(&run(&lun, &rcr(0x03, 0, 10))).len(), 10);
    // Advertised: 3PC in standard INQUIRY, both opcodes in REPORT SUPPORTED OPERATION CODES.
    let r = run(&lun, &[INQUIRY, 0, 0, 0, 96, 0]);
    assert_eq!(good(&r)[5] & 0x08, 0x08);
    for (op, sa) in [(EXTENDED_COPY, 0u8), (RECEIVE_COPY_RESULTS, 3)] {
        let r = run(
            &lun,
            &[MAINTENANCE_IN, 0x0C, 0x02, op, 0, sa, 0, 0, 1, 0, 0, 0],
        );
        assert_eq!(good(&r)[1] & 0x07, 0x03, "{op:#x}");
    }
}

/// Copies between two LUNs of a set; the source is on one backstore, the destination on the
/// other, and the command is sent to a third LUN that is neither.
#[test]
fn copy_between_luns_of_a_set() {
    let (_, a) = mem_lun_with(512, |c| c.id = 0);
    let (_t, b) = file_lun_with(1024, |c| c.id = 1);
    let (_, manager) = mem_lun_with(8, |c| c.id = 2);
    let (ta, tb) = (target(&a), target(&b));
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut set = LunSet::new();
    set.insert(a.clone());
    set.insert(b.clone());
    set.insert(Arc::new(manager));
    let data = pattern(300, 3);
    write(&a, 100, &data);
    let p = params(
        1,
        0,
        &[ta.clone(), tb.clone()],
        &[segment(0, 1, 300, 100, 700)],
    );
    let n = nexus(1);
    good(&set.execute(&n, 2, &xcopy_cdb(p.len()), &p));
    assert_eq!(read(&b, 700, 300), data);
    assert_eq!(read(&a, 100, 300), data);
    // Results are held by the LUN the command was sent to.
    good(&set.execute(&n, 2, &rcr(0x00, 1, 64), &[]));
    assert_sense(
        &set.execute(&n, 0, &rcr(0x00, 1, 64), &[]),
        INVALID_FIELD_IN_CDB,
    );
    // Back the other way, from the file to memory.
    let p = params(1, 2, &[tb.clone(), ta.clone()], &[segment(0, 1, 2, 700, 0)]);
    good(&set.execute(&n, 0, &xcopy_cdb(p.len()), &p));
    assert_eq!(read(&a, 0, 2), &data[..1024]);
    // Through Lun::execute only the LUN itself is reachable.
    let p = params(1, 0, &[ta.clone(), tb.clone()], &[segment(0, 1, 1, 0, 0)]);
    assert_sense(&xcopy(&a, &p), COPY_TARGET_NOT_REACHABLE);
    // A RESERVE(6) held by another nexus on the destination is a conflict; on the source
    // too (RESERVE(6) excludes reads).
    good(&set.execute(&nexus(2), 1, &[RESERVE_6, 0, 0, 0, 0, 0], &[]));
    let p = params(1, 0, &[ta.clone(), tb.clone()], &[segment(0, 1, 1, 0, 0)]);
    assert_conflict(&set.execute(&n, 2, &xcopy_cdb(p.len()), &p));
    let p = params(1, 0, &[tb.clone(), ta.clone()], &[segment(0, 1, 1, 0, 0)]);
    assert_conflict(&set.execute(&n, 2, &xcopy_cdb(p.len()), &p));
    // A target descriptor for a LUN that is not in the set.
    let (_, stranger) = mem_lun_with(8, |c| c.serial = "OTHER".into());
    let p = params(1, 0, &[target(&stranger)], &[segment(0, 0, 1, 0, 0)]);
    assert_sense(
        &set.execute(&n, 2, &xcopy_cdb(p.len()), &p),
        COPY_TARGET_NOT_REACHABLE,
    );
}

fn errors_on(lun: &Lun) {
    write(lun, 0, &pattern(8, 1));
    write(lun, 32, &pattern(8, 2));
    let t = target(lun);
    let seg = segment(0, 0, 8, 0, 16);
    let ok = params(1, 0, slice::from_ref(&t), slice::from_ref(&seg));
    let check = |p: &[u8], want: Sense| assert_sense(&xcopy(lun, p), want);

    // Parameter list length 0 is not an error; shorter than a header is.
    good(&run(lun, &xcopy_cdb(0)));
    check(&ok[..15], PARAM_LIST_LENGTH);
    // Parameter list shorter than the header's descriptor lengths.
    check(&ok[..16 + 31], PARAM_LIST_LENGTH);
    check(&ok[..ok.len() - 1], PARAM_LIST_LENGTH);
    // Longer than any parameter list the transport solicits.
    assert_sense(&run_data(lun, &xcopy_cdb(70_000), &ok), PARAM_LIST_LENGTH);
    // Data-Out shorter than the CDB's parameter list length.
    assert_sense(
        &run_data(lun, &xcopy_cdb(ok.len()), &ok[..20]),
        INVALID_FIELD_IN_IU,
    );
    // LID4 service action.
    let mut c = xcopy_cdb(ok.len());
    c[1] = 0x01;
    assert_sense(&run_data(lun, &c, &ok), INVALID_FIELD_IN_CDB);
    // Reserved LIST ID USAGE, NOLIST with a list identifier, inline data.
    let mut p = ok.clone();
    p[1] = 0x08;
    check(&p, INVALID_FIELD_IN_PARAM);
    let mut p = ok.clone();
    p[1] = 0x18;
    check(&p, INVALID_FIELD_IN_PARAM);
    p[0] = 0;
    good(&xcopy(lun, &p));
    let mut p = ok.clone();
    p[15] = 4;
    p.extend_from_slice(&[0; 4]);
    check(&p, INVALID_FIELD_IN_PARAM);
    // Descriptor counts and total length.
    check(
        &params(1, 0, &vec![t.clone(); 9], slice::from_ref(&seg)),
        TOO_MANY_TARGET_DESCRIPTORS,
    );
    check(
        &params(1, 0, slice::from_ref(&t), &vec![seg.clone(); 9]),
        TOO_MANY_SEGMENT_DESCRIPTORS,
    );
    check(
        &params(1, 0, &vec![t.clone(); 9], &vec![seg.clone(); 27]),
        PARAM_LIST_LENGTH,
    );
    // Unsupported descriptor types; a descriptor running past its list.
    let mut fc = t.clone();
    fc[0] = 0xE0;
    check(
        &params(1, 0, &[fc], slice::from_ref(&seg)),
        UNSUPPORTED_TARGET_DESCRIPTOR,
    );
    let mut s2s = vec![0u8; 20];
    s2s[0] = 0x03;
    s2s[3] = 0x10;
    check(
        &params(1, 0, slice::from_ref(&t), &[s2s]),
        UNSUPPORTED_SEGMENT_DESCRIPTOR,
    );
    check(
        &params(1, 0, slice::from_ref(&t), &[seg[..20].to_vec()]),
        PARAM_LIST_LENGTH,
    );
    let mut long = seg.clone();
    long[3] = 0x1C;
    long.extend_from_slice(&[0; 4]);
    check(
        &params(1, 0, slice::from_ref(&t), &[long]),
        INVALID_FIELD_IN_PARAM,
    );
    // Target descriptor fields: designator type, device type, block length.
    let mut eui = t.clone();
    eui[5] = 0x02;
    check(
        &params(1, 0, &[eui], slice::from_ref(&seg)),
        COPY_TARGET_NOT_REACHABLE,
    );
    let mut tape = t.clone();
    tape[1] = 0x01;
    check(
        &params(1, 0, &[tape], slice::from_ref(&seg)),
        INCORRECT_COPY_TARGET_TYPE,
    );
    let mut bl = t.clone();
    bl[30] = 0x10;
    check(
        &params(1, 0, &[bl], slice::from_ref(&seg)),
        INVALID_FIELD_IN_PARAM,
    );
    let mut big = t.clone();
    big[7] = 21;
    check(
        &params(1, 0, &[big], slice::from_ref(&seg)),
        INVALID_FIELD_IN_PARAM,
    );
    // LU ID TYPE and NUL are ignored (SPC-4).
    let mut luid = t.clone();
    luid[1] = 0x80;
    good(&xcopy(lun, &params(1, 0, &[luid], slice::from_ref(&seg))));
    // Segment fields: descriptor index, ranges. Nothing is written by a failed command,
    // even when an earlier segment was valid.
    let cap = lun.capacity_blocks();
    for bad in [
        segment(0, 1, 8, 0, 0),
        segment(1, 0, 8, 0, 0),
        segment(0, 0, 8, 0, cap - 7),
        segment(0, 0, 8, cap - 7, 0),
        segment(0, 0, 1, u64::MAX, 0),
    ] {
        let p = params(1, 0, slice::from_ref(&t), &[segment(0, 0, 8, 32, 0), bad]);
        assert_eq!(xcopy(lun, &p).sense.unwrap().key, SenseKey::CopyAborted);
    }
    assert_eq!(read(lun, 0, 8), pattern(8, 1));
    // Zero blocks copies nothing.
    good(&xcopy(
        lun,
        &params(1, 0, slice::from_ref(&t), &[segment(0, 0, 0, 0, 1)]),
    ));
}

#[test]
fn parameter_list_errors() {
    let (_, mem) = mem_lun(256);
    errors_on(&mem);
    let (_t, file) = file_lun(256);
    errors_on(&file);
}

#[test]
fn write_protected_destination_and_medium() {
    let (_, ro) = mem_lun_with(64, |c| c.read_only = true);
    let p = params(1, 0, &[target(&ro)], &[segment(0, 0, 1, 0, 1)]);
    assert_sense(&xcopy(&ro, &p), WRITE_PROTECTED);
    // Copying out of a read-only LUN is fine.
    let (_, rw) = mem_lun_with(64, |c| c.id = 1);
    let mut set = LunSet::new();
    let (tro, trw) = (target(&ro), target(&rw));
    set.insert(Arc::new(ro));
    set.insert(Arc::new(rw));
    let p = params(1, 0, &[tro, trw], &[segment(0, 1, 4, 0, 0)]);
    good(&set.execute(&nexus(1), 0, &xcopy_cdb(p.len()), &p));
    // No medium in a removable source LUN.
    let (_, rm) = mem_lun_with(64, |c| c.removable = true);
    good(&run(&rm, &[START_STOP_UNIT, 0, 0, 0, 0x02, 0]));
    let p = params(1, 0, &[target(&rm)], &[segment(0, 0, 1, 0, 1)]);
    assert_sense(&xcopy(&rm, &p), MEDIUM_NOT_PRESENT);
}

/// Overlapping source and destination in one LUN copy as if through a buffer.
fn overlap_on(lun: &Lun) {
    let t = target(lun);
    let data = pattern(5000, 9);
    write(lun, 0, &data);
    good(&xcopy(
        lun,
        &params(1, 0, slice::from_ref(&t), &[segment(0, 0, 5000, 0, 100)]),
    ));
    assert_eq!(read(lun, 100, 5000), data);
    good(&xcopy(
        lun,
        &params(1, 0, slice::from_ref(&t), &[segment(0, 0, 5000, 100, 50)]),
    ));
    assert_eq!(read(lun, 50, 5000), data);
}

#[test]
fn overlapping_copies() {
    let (_, mem) = mem_lun(6000);
    overlap_on(&mem);
    let (_t, file) = file_lun(6000);
    overlap_on(&file);
}

#[test]
fn list_identifier_usage() {
    let (_, lun) = mem_lun(64);
    let t = target(&lun);
    // 10b: results are not held.
    good(&xcopy(
        &lun,
        &params(3, 2, slice::from_ref(&t), &[segment(0, 0, 1, 0, 1)]),
    ));
    assert_sense(&run(&lun, &rcr(0x00, 3, 64)), INVALID_FIELD_IN_CDB);
    // 00b replaces earlier held results with the same list identifier.
    good(&xcopy(
        &lun,
        &params(3, 0, slice::from_ref(&t), &[segment(0, 0, 1, 0, 1)]),
    ));
    good(&xcopy(
        &lun,
        &params(3, 0, slice::from_ref(&t), &vec![segment(0, 0, 2, 0, 2); 2]),
    ));
    let r = run(&lun, &rcr(0x00, 3, 64));
    assert_eq!(good(&r)[5..7], [0, 2]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Mutated parameter lists never panic, and a command that fails changes nothing.
    #[test]
    fn mutated_parameter_lists(
        flips in proptest::collection::vec((0usize..128, any::<u8>()), 0..6),
        ntargets in 0usize..3,
        nsegs in 0usize..3,
        cut in proptest::option::of(0usize..128),
    ) {
        let (_, lun) = mem_lun(64);
        write(&lun, 0, &pattern(64, 1));
        let before = read(&lun, 0, 64);
        let t = target(&lun);
        let mut p = params(
            1,
            0,
            &vec![t; ntargets],
            &vec![segment(0, 0, 4, 0, 8); nsegs],
        );
        for (i, v) in flips {
            if let Some(b) = p.get_mut(i) {
                *b = v;
            }
        }
        if let Some(c) = cut {
            p.truncate(c);
        }
        let r = xcopy(&lun, &p);
        prop_assert_eq!(r.sense.is_some(), r.status == ScsiStatus::CheckCondition);
        if r.status != ScsiStatus::Good {
            prop_assert_eq!(read(&lun, 0, 64), before);
        }
        let _ = run(&lun, &rcr(0x00, 1, 64));
        let _ = run(&lun, &rcr(0x04, 1, 64));
    }
}
