//! WRITE ATOMIC (16): field checks, and atomicity with respect to concurrent commands on both
//! backstores.

use super::*;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::sense::*;

/// WRITE ATOMIC (16) CDB: LBA in bytes 2-9, TRANSFER LENGTH in bytes 12-13.
fn wa16(flags: u8, lba: u64, n: u16) -> Vec<u8> {
    let mut c = vec![WRITE_ATOMIC_16, flags];
    c.extend_from_slice(&lba.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c.extend_from_slice(&n.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

fn fields(lun: &Lun) {
    let cap = lun.capacity_blocks();
    let data = pattern(4, 0x11);
    good(&run_data(lun, &wa16(0, 8, 4), &data));
    assert_eq!(good(&run(lun, &cdb10(READ_10, 0, 8, 4))), &data[..]);
    good(&run(lun, &wa16(0, 0, 0)));
    good(&run(lun, &wa16(0, cap, 0)));
    assert_sense(&run(lun, &wa16(0, cap + 1, 0)), LBA_OUT_OF_RANGE);
    assert_sense(&run(lun, &wa16(0, 1 << 63, 0)), LBA_OUT_OF_RANGE);
    assert_sense(
        &run_data(lun, &wa16(0, cap - 1, 2), &data),
        LBA_OUT_OF_RANGE,
    );
    assert_sense(
        &run_data(lun, &wa16(0, u64::MAX, 1), &data),
        LBA_OUT_OF_RANGE,
    );
    assert_sense(
        &run_data(lun, &wa16(0x20, 0, 1), &data),
        INVALID_FIELD_IN_CDB,
    );
    let mut boundary = wa16(0, 0, 1);
    boundary[11] = 1;
    assert_sense(&run_data(lun, &boundary, &data), INVALID_FIELD_IN_CDB);
    assert_sense(&run(lun, &wa16(0, 0, 8193)), INVALID_FIELD_IN_CDB);
    assert_sense(
        &run_data(lun, &wa16(0, 0, 2), &data[..600]),
        INVALID_FIELD_IN_IU,
    );
    // DPO and FUA are accepted (DPOFUA = 1).
    good(&run_data(lun, &wa16(0x18, 0, 1), &data[..512]));
    let t = lun.transfer(&wa16(0, 0, 3));
    assert_eq!((t.data_out, t.data_in, t.exact), (1536, 0, false));
}

#[test]
fn write_atomic_fields() {
    let (store, mem) = mem_lun(16384);
    fields(&mem);
    let flushes = store.flush_count();
    good(&run_data(&mem, &wa16(0x08, 0, 1), &[0; 512]));
    assert_eq!(store.flush_count(), flushes + 1);
    let (_t, file) = file_lun(16384);
    fields(&file);
    let (_, ro) = mem_lun_with(64, |c| c.read_only = true);
    assert_sense(&run_data(&ro, &wa16(0, 0, 1), &[0; 512]), WRITE_PROTECTED);
    // VPD 0xB0 MAXIMUM ATOMIC TRANSFER LENGTH, no alignment or granularity restriction.
    let r = run(&mem, &[INQUIRY, 1, 0xB0, 0, 255, 0]);
    let b0 = good(&r);
    assert_eq!(u32::from_be_bytes(b0[44..48].try_into().unwrap()), 8192);
    assert_eq!(&b0[48..64], &[0; 16]);
}

/// One thread keeps overwriting a 1 MiB range with WRITE ATOMIC, each time with a single
/// repeated byte; readers must never see two different bytes in it. Meanwhile COMPARE AND
/// WRITE rewrites a block inside the range with the data it just read: that is a no-op only if
/// no atomic write lands between its compare and its write, otherwise the range would tear.
fn concurrent(lun: Arc<Lun>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    const BLOCKS: u16 = 2048;
    const ROUNDS: u8 = 150;
    good(&run_data(&lun, &wa16(0, 0, BLOCKS), &vec![0; 2048 * 512]));
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (writer, done_w) = (lun.clone(), &done);
        s.spawn(move || {
            for i in 1..=ROUNDS {
                let buf = vec![i; usize::from(BLOCKS) * 512];
                good(&run_data(&writer, &wa16(0, 0, BLOCKS), &buf));
            }
            done_w.store(true, Ordering::Relaxed);
        });
        let (caw, done_c) = (lun.clone(), &done);
        s.spawn(move || {
            while !done_c.load(Ordering::Relaxed) {
                let r = run(&caw, &cdb10(READ_10, 0, 1000, 1));
                let old = good(&r).to_vec();
                let mut c = cdb16(COMPARE_AND_WRITE, 0, 1000, 0);
                c[13] = 1;
                let mut d = old.clone();
                d.extend_from_slice(&old);
                let r = run_data(&caw, &c, &d);
                assert!(
                    r.status == ScsiStatus::Good || r.sense.unwrap().key == SenseKey::Miscompare
                );
            }
        });
        for _ in 0..2 {
            let (reader, done_r) = (lun.clone(), &done);
            s.spawn(move || {
                while !done_r.load(Ordering::Relaxed) {
                    let r = run(&reader, &cdb10(READ_10, 0, 0, BLOCKS));
                    let d = good(&r);
                    assert!(d.iter().all(|&b| b == d[0]), "torn read");
                }
            });
        }
    });
    let r = run(&lun, &cdb10(READ_10, 0, 0, BLOCKS));
    assert!(
        good(&r).iter().all(|&b| b == ROUNDS),
        "torn by COMPARE AND WRITE"
    );
}

#[test]
fn write_atomic_is_atomic_to_other_commands() {
    let (_, mem) = mem_lun(4096);
    concurrent(Arc::new(mem));
    let (_t, file) = file_lun(4096);
    concurrent(Arc::new(file));
}
