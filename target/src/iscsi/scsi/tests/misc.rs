//! TEST UNIT READY, REQUEST SENSE, START STOP UNIT, PREVENT ALLOW, unit attentions, opcodes.

use super::*;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::sense::*;
use crate::iscsi::scsi::SenseKey;

const TUR: [u8; 6] = [TEST_UNIT_READY, 0, 0, 0, 0, 0];
const RS: [u8; 6] = [REQUEST_SENSE, 0, 0, 0, 252, 0];

#[test]
fn test_unit_ready_and_invalid_opcodes() {
    let (_, lun) = mem_lun(8);
    assert!(good(&run(&lun, &TUR)).is_empty());
    for op in [0x04u8, 0x1D, 0x3B, 0x56, 0x7F, 0x86, 0xC0, 0xFF] {
        assert_sense(&run(&lun, &[op, 0, 0, 0, 0, 0, 0, 0, 0, 0]), INVALID_OPCODE);
    }
    assert_sense(&run(&lun, &[]), INVALID_OPCODE);
    // A short CDB is zero padded rather than rejected.
    good(&run(&lun, &[READ_10]));
}

#[test]
fn request_sense() {
    let (_, lun) = mem_lun(8);
    let r = run(&lun, &RS);
    let d = good(&r);
    assert_eq!(d.len(), 18);
    assert_eq!((d[0], d[2], d[12]), (0x70, 0, 0));
    assert_eq!(good(&run(&lun, &[REQUEST_SENSE, 0, 0, 0, 8, 0])).len(), 8);
    assert_sense(
        &run(&lun, &[REQUEST_SENSE, 1, 0, 0, 252, 0]),
        INVALID_FIELD_IN_CDB,
    );
}

#[test]
fn start_stop_unit_fixed_disk() {
    let (store, lun) = mem_lun(8);
    // STOP flushes but the unit stays ready (no spindle); LOEJ is ignored on a fixed disk.
    good(&run(&lun, &[START_STOP_UNIT, 0, 0, 0, 0x00, 0]));
    assert_eq!(store.flush_count(), 1);
    good(&run(&lun, &TUR));
    good(&run(&lun, &[START_STOP_UNIT, 1, 0, 0, 0x02, 0]));
    good(&run(&lun, &TUR));
    good(&run(&lun, &[START_STOP_UNIT, 1, 0, 0, 0x01, 0]));
    // NO_FLUSH skips the flush.
    good(&run(&lun, &[START_STOP_UNIT, 0, 0, 0, 0x04, 0]));
    assert_eq!(store.flush_count(), 2);
    // Power conditions are accepted and ignored, reserved ones are not.
    for pc in [1u8, 2, 3, 7, 0xA, 0xB] {
        good(&run(&lun, &[START_STOP_UNIT, 0, 0, 0, (pc << 4) | 0x02, 0]));
    }
    assert_sense(
        &run(&lun, &[START_STOP_UNIT, 0, 0, 0, 0x50, 0]),
        INVALID_FIELD_IN_CDB,
    );
    good(&run(&lun, &TUR));
    assert_eq!(good(&run(&lun, &[INQUIRY, 0, 0, 0, 36, 0]))[1], 0);
}

#[test]
fn removable_medium() {
    let (_, lun) = mem_lun_with(8, |c| c.removable = true);
    let (a, b) = (nexus(1), nexus(2));
    let ssu = |n: &ItNexus, b4: u8| lun.execute(n, &[START_STOP_UNIT, 0, 0, 0, b4, 0], &[]);
    let pa = |n: &ItNexus, p: u8| lun.execute(n, &[PREVENT_ALLOW, 0, 0, 0, p, 0], &[]);
    assert_eq!(good(&run(&lun, &[INQUIRY, 0, 0, 0, 36, 0]))[1], 0x80);
    // Eject: medium commands report MEDIUM NOT PRESENT, others still work.
    good(&ssu(&a, 0x02));
    for c in [
        TUR.to_vec(),
        cdb10(READ_10, 0, 0, 1),
        vec![READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        cdb10(SYNC_CACHE_10, 0, 0, 0),
        cdb10(PREFETCH_10, 0, 0, 1),
    ] {
        assert_sense(&lun.execute(&b, &c, &[]), MEDIUM_NOT_PRESENT);
    }
    good(&lun.execute(&b, &[INQUIRY, 0, 0, 0, 36, 0], &[]));
    let r = lun.execute(&a, &RS, &[]);
    assert_eq!((good(&r)[2], good(&r)[12]), (2, 0x3A));
    // Load.
    good(&ssu(&a, 0x03));
    good(&lun.execute(&b, &TUR, &[]));
    // PREVENT from one nexus blocks eject and load from every nexus.
    good(&pa(&a, 1));
    assert_sense(&ssu(&b, 0x02), REMOVAL_PREVENTED);
    assert_sense(&ssu(&a, 0x03), REMOVAL_PREVENTED);
    good(&lun.execute(&a, &TUR, &[]));
    // LOEJ = 0 is still fine.
    good(&ssu(&a, 0x00));
    good(&lun.execute(&a, &TUR, &[]));
    assert_sense(&pa(&a, 2), INVALID_FIELD_IN_CDB);
    good(&pa(&a, 0));
    good(&ssu(&b, 0x02));
    good(&ssu(&b, 0x03));
    // Nexus loss and LUN reset clear PREVENT.
    good(&pa(&a, 1));
    lun.nexus_lost(&a);
    good(&ssu(&b, 0x02));
    good(&ssu(&b, 0x03));
    good(&pa(&b, 1));
    lun.reset(Some(&b));
    assert_sense(&ssu(&b, 0x02), UA_LU_RESET);
    good(&ssu(&b, 0x02));
    good(&ssu(&b, 0x03));
}

#[test]
fn unit_attention_per_nexus() {
    let (_, lun) = mem_lun_with(8, |c| c.power_on_unit_attention = true);
    let (a, b) = (nexus(1), nexus(2));
    // INQUIRY and REPORT LUNS do not consume the UA.
    good(&lun.execute(&a, &[INQUIRY, 0, 0, 0, 36, 0], &[]));
    assert_sense(&lun.execute(&a, &TUR, &[]), UA_POWER_ON);
    good(&lun.execute(&a, &TUR, &[]));
    // REQUEST SENSE returns and clears it.
    let r = lun.execute(&b, &RS, &[]);
    let d = good(&r);
    assert_eq!((d[2], d[12], d[13]), (6, 0x29, 0x00));
    good(&lun.execute(&b, &TUR, &[]));
    // Reset: every known nexus gets one UA, once.
    lun.reset(None);
    assert_sense(&lun.execute(&a, &cdb10(READ_10, 0, 0, 1), &[]), UA_LU_RESET);
    good(&lun.execute(&a, &TUR, &[]));
    assert_sense(&lun.execute(&b, &TUR, &[]), UA_LU_RESET);
    // Nexus loss forgets it; it gets a power-on UA again on return.
    lun.nexus_lost(&a);
    assert_sense(&lun.execute(&a, &TUR, &[]), UA_POWER_ON);

    // Off by default.
    let (_, lun) = mem_lun(8);
    good(&run(&lun, &TUR));
}

#[test]
fn result_helpers() {
    use crate::iscsi::scsi::ScsiStatus;
    assert_eq!(ScsiStatus::Good.code(), 0);
    assert_eq!(ScsiStatus::CheckCondition.code(), 2);
    assert_eq!(ScsiStatus::Busy.code(), 8);
    assert_eq!(ScsiStatus::ReservationConflict.code(), 0x18);
    assert_eq!(ScsiStatus::TaskSetFull.code(), 0x28);
    assert!(ScsiResult::good(vec![1]).sense_bytes().is_empty());
    assert_eq!(
        ScsiResult::conflict().status,
        ScsiStatus::ReservationConflict
    );
    assert_eq!(ABORTED.key, SenseKey::AbortedCommand);
    assert_eq!(UA_CAPACITY_CHANGED.asc, 0x2A);
    let n = nexus(3);
    assert_eq!(
        n.initiator_port(),
        "iqn.2026-11.org.example:client,i,0x400000000003"
    );
    assert_eq!(n.target_port(), 1);
    assert_eq!(
        format!("{n:?}"),
        "iqn.2026-11.org.example:client,i,0x400000000003@1"
    );
    let (_, lun) = mem_lun(8);
    assert_eq!(lun.config().serial, "SERIAL0001");
}
