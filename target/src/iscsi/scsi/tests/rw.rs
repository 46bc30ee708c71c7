//! READ / WRITE / WRITE AND VERIFY / VERIFY / COMPARE AND WRITE.

use super::*;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::sense::*;
use crate::iscsi::scsi::MAX_TRANSFER_BLOCKS;

fn roundtrip_all_sizes(lun: &Lun) {
    // WRITE(6)/READ(6)
    let d = pattern(2, 1);
    good(&run_data(lun, &[WRITE_6, 0, 0, 3, 2, 0], &d));
    assert_eq!(good(&run(lun, &[READ_6, 0, 0, 3, 2, 0])), &d[..]);
    // 10
    let d = pattern(3, 2);
    good(&run_data(lun, &cdb10(WRITE_10, 0, 10, 3), &d));
    assert_eq!(good(&run(lun, &cdb10(READ_10, 0, 10, 3))), &d[..]);
    // 12
    let d = pattern(1, 3);
    good(&run_data(lun, &cdb12(WRITE_12, 0, 20, 1), &d));
    assert_eq!(good(&run(lun, &cdb12(READ_12, 0, 20, 1))), &d[..]);
    // 16, last block
    let last = lun.capacity_blocks() - 1;
    let d = pattern(1, 4);
    good(&run_data(lun, &cdb16(WRITE_16, 0, last, 1), &d));
    assert_eq!(good(&run(lun, &cdb16(READ_16, 0, last, 1))), &d[..]);
    // Cross-size: READ(16) sees what WRITE(10) wrote.
    assert_eq!(
        good(&run(lun, &cdb16(READ_16, 0, 10, 3))),
        &pattern(3, 2)[..]
    );
}

#[test]
fn read_write_memory() {
    let (_, lun) = mem_lun(64);
    roundtrip_all_sizes(&lun);
}

#[test]
fn read_write_file() {
    let (t, lun) = file_lun(64);
    roundtrip_all_sizes(&lun);
    let on_disk = std::fs::read(&t.0).unwrap();
    assert_eq!(&on_disk[10 * 512..13 * 512], &pattern(3, 2)[..]);
}

#[test]
fn read6_zero_means_256_blocks() {
    let (_, lun) = mem_lun(300);
    assert_eq!(good(&run(&lun, &[READ_6, 0, 0, 0, 0, 0])).len(), 256 * 512);
    assert_sense(&run(&lun, &[READ_6, 0, 0, 50, 0, 0]), LBA_OUT_OF_RANGE);
}

#[test]
fn lba_out_of_range() {
    let (_, lun) = mem_lun(64);
    for op in [READ_10, WRITE_10, VERIFY_10, WRITE_VERIFY_10] {
        assert_sense(
            &run_data(&lun, &cdb10(op, 0, 64, 1), &[0; 512]),
            LBA_OUT_OF_RANGE,
        );
        assert_sense(
            &run_data(&lun, &cdb10(op, 0, 63, 2), &[0; 1024]),
            LBA_OUT_OF_RANGE,
        );
        assert_sense(&run(&lun, &cdb10(op, 0, 65, 0)), LBA_OUT_OF_RANGE);
        assert_sense(&run(&lun, &cdb10(op, 0, u32::MAX, 1)), LBA_OUT_OF_RANGE);
        good(&run(&lun, &cdb10(op, 0, 64, 0)));
    }
    for op in [READ_12, WRITE_12, VERIFY_12, WRITE_VERIFY_12] {
        assert_sense(&run(&lun, &cdb12(op, 0, 64, 1)), LBA_OUT_OF_RANGE);
    }
    for op in [READ_16, WRITE_16, VERIFY_16, WRITE_VERIFY_16] {
        assert_sense(&run(&lun, &cdb16(op, 0, 1 << 63, 1)), LBA_OUT_OF_RANGE);
        assert_sense(&run(&lun, &cdb16(op, 0, u64::MAX, 2)), LBA_OUT_OF_RANGE);
    }
    assert_sense(&run(&lun, &[WRITE_6, 0, 0, 64, 1, 0]), LBA_OUT_OF_RANGE);
    let mut caw = cdb16(COMPARE_AND_WRITE, 0, 64, 0);
    caw[13] = 1;
    assert_sense(&run_data(&lun, &caw, &[0; 1024]), LBA_OUT_OF_RANGE);
}

#[test]
fn protect_fields_rejected() {
    let (_, lun) = mem_lun(64);
    for p in 1..8u8 {
        let f = p << 5;
        assert_sense(&run(&lun, &cdb10(READ_10, f, 0, 1)), INVALID_FIELD_IN_CDB);
        assert_sense(
            &run_data(&lun, &cdb12(WRITE_12, f, 0, 1), &[0; 512]),
            INVALID_FIELD_IN_CDB,
        );
        assert_sense(&run(&lun, &cdb16(VERIFY_16, f, 0, 1)), INVALID_FIELD_IN_CDB);
    }
}

#[test]
fn transfer_limit_and_short_data() {
    let (_, lun) = mem_lun(MAX_TRANSFER_BLOCKS as u64 + 10);
    let n = MAX_TRANSFER_BLOCKS + 1;
    assert_sense(&run(&lun, &cdb12(READ_12, 0, 0, n)), INVALID_FIELD_IN_CDB);
    assert_sense(&run(&lun, &cdb12(WRITE_12, 0, 0, n)), INVALID_FIELD_IN_CDB);
    assert_eq!(lun.transfer(&cdb12(WRITE_12, 0, 0, n)).data_out, 0);
    assert_sense(
        &run_data(&lun, &cdb10(WRITE_10, 0, 0, 2), &[0; 600]),
        INVALID_FIELD_IN_IU,
    );
    // Longer Data-Out than needed is fine.
    good(&run_data(&lun, &cdb10(WRITE_10, 0, 0, 1), &[1; 700]));
}

#[test]
fn fua_and_write_through_flush() {
    let (store, lun) = mem_lun(64);
    good(&run_data(&lun, &cdb10(WRITE_10, 0, 0, 1), &[1; 512]));
    assert_eq!(store.flush_count(), 0);
    good(&run_data(&lun, &cdb10(WRITE_10, 0x08, 0, 1), &[1; 512]));
    assert_eq!(store.flush_count(), 1);
    good(&run_data(&lun, &cdb16(WRITE_16, 0x08, 0, 1), &[1; 512]));
    assert_eq!(store.flush_count(), 2);
    // WRITE AND VERIFY always reaches the medium.
    good(&run_data(
        &lun,
        &cdb10(WRITE_VERIFY_10, 0x02, 0, 1),
        &[1; 512],
    ));
    assert_eq!(store.flush_count(), 3);
    // DPO/FUA on reads are accepted.
    good(&run(&lun, &cdb10(READ_10, 0x18, 0, 1)));

    let (store, lun) = mem_lun_with(64, |c| c.write_cache = false);
    assert!(!lun.write_cache_enabled());
    good(&run_data(&lun, &[WRITE_6, 0, 0, 1, 1, 0], &[1; 512]));
    good(&run_data(&lun, &cdb12(WRITE_12, 0, 0, 1), &[1; 512]));
    assert_eq!(store.flush_count(), 2);
}

#[test]
fn write_and_verify_all_sizes() {
    let (_, lun) = file_lun(64);
    let d = pattern(2, 9);
    good(&run_data(&lun, &cdb10(WRITE_VERIFY_10, 0, 1, 2), &d));
    good(&run_data(&lun, &cdb12(WRITE_VERIFY_12, 0, 3, 2), &d));
    good(&run_data(&lun, &cdb16(WRITE_VERIFY_16, 0, 5, 2), &d));
    assert_eq!(good(&run(&lun, &cdb10(READ_10, 0, 5, 2))), &d[..]);
}

#[test]
fn read_only_lun() {
    let (_t, lun) = file_lun_with(64, |c| c.read_only = true);
    good(&run(&lun, &cdb10(READ_10, 0, 0, 1)));
    let d = [0u8; 1024];
    for c in [
        vec![WRITE_6, 0, 0, 0, 1, 0],
        cdb10(WRITE_10, 0, 0, 1),
        cdb12(WRITE_12, 0, 0, 1),
        cdb16(WRITE_16, 0, 0, 1),
        cdb10(WRITE_VERIFY_10, 0, 0, 1),
        cdb12(WRITE_VERIFY_12, 0, 0, 1),
        cdb16(WRITE_VERIFY_16, 0, 0, 1),
        cdb10(WRITE_SAME_10, 0, 0, 1),
        cdb16(WRITE_SAME_16, 0, 0, 1),
        cdb16(COMPARE_AND_WRITE, 0, 0, 0)
            .into_iter()
            .enumerate()
            .map(|(i, b)| if i == 13 { 1 } else { b })
            .collect(),
        vec![UNMAP, 0, 0, 0, 0, 0, 0, 0, 24, 0],
    ] {
        assert_sense(&run_data(&lun, &c, &d), WRITE_PROTECTED);
    }
    // VERIFY is allowed.
    good(&run(&lun, &cdb10(VERIFY_10, 0, 0, 1)));
}

#[test]
fn verify_bytchk() {
    for (_keep, lun) in [(None, mem_lun(64).1), {
        let (t, l) = file_lun(64);
        (Some(t), l)
    }] {
        let d = pattern(4, 5);
        good(&run_data(&lun, &cdb10(WRITE_10, 0, 8, 4), &d));
        // BYTCHK 0: no compare, any data.
        good(&run(&lun, &cdb10(VERIFY_10, 0, 8, 4)));
        // BYTCHK 1: compare.
        good(&run_data(&lun, &cdb10(VERIFY_10, 0x02, 8, 4), &d));
        good(&run_data(&lun, &cdb12(VERIFY_12, 0x02, 8, 4), &d));
        good(&run_data(&lun, &cdb16(VERIFY_16, 0x02, 8, 4), &d));
        let mut bad = d.clone();
        bad[1500] ^= 0xFF;
        let r = run_data(&lun, &cdb16(VERIFY_16, 0x02, 8, 4), &bad);
        assert_sense(&r, MISCOMPARE);
        assert_eq!(r.sense.unwrap().information, Some(1500));
        let raw = r.sense_bytes();
        assert_eq!(raw[0], 0xF0);
        assert_eq!(&raw[3..7], &1500u32.to_be_bytes());
        // BYTCHK 3: one block against all.
        good(&run_data(&lun, &cdb10(WRITE_10, 0, 20, 3), &[0xAB; 1536]));
        good(&run_data(
            &lun,
            &cdb10(VERIFY_10, 0x06, 20, 3),
            &[0xAB; 512],
        ));
        let r = run_data(&lun, &cdb10(VERIFY_10, 0x06, 19, 3), &[0xAB; 512]);
        assert_eq!(r.sense.unwrap().information, Some(0));
        // BYTCHK 2 is reserved.
        assert_sense(
            &run(&lun, &cdb10(VERIFY_10, 0x04, 20, 1)),
            INVALID_FIELD_IN_CDB,
        );
        // Missing data for BYTCHK 1.
        assert_sense(
            &run_data(&lun, &cdb10(VERIFY_10, 0x02, 8, 4), &d[..512]),
            INVALID_FIELD_IN_IU,
        );
    }
}

fn caw_cdb(lba: u64, n: u8, flags: u8) -> Vec<u8> {
    let mut c = cdb16(COMPARE_AND_WRITE, flags, lba, 0);
    c[13] = n;
    c
}

#[test]
fn compare_and_write() {
    for (_keep, lun) in [(None, mem_lun(64).1), {
        let (t, l) = file_lun(64);
        (Some(t), l)
    }] {
        let old = pattern(1, 1);
        let new = pattern(1, 2);
        good(&run_data(&lun, &cdb10(WRITE_10, 0, 7, 1), &old));
        assert_eq!(lun.transfer(&caw_cdb(7, 1, 0)).data_out, 1024);
        let mut buf = old.clone();
        buf.extend_from_slice(&new);
        good(&run_data(&lun, &caw_cdb(7, 1, 0x08), &buf));
        assert_eq!(good(&run(&lun, &cdb10(READ_10, 0, 7, 1))), &new[..]);
        // Now the medium holds `new`: comparing against `old` fails at the first difference.
        let r = run_data(&lun, &caw_cdb(7, 1, 0), &buf);
        assert_sense(&r, MISCOMPARE);
        let off = old.iter().zip(&new).position(|(a, b)| a != b).unwrap() as u32;
        assert_eq!(r.sense.unwrap().information, Some(off));
        assert_eq!(good(&run(&lun, &cdb10(READ_10, 0, 7, 1))), &new[..]);
        // Limits and short data.
        assert_sense(
            &run_data(&lun, &caw_cdb(7, 2, 0), &[0; 2048]),
            INVALID_FIELD_IN_CDB,
        );
        assert_sense(
            &run_data(&lun, &caw_cdb(7, 1, 0), &[0; 600]),
            INVALID_FIELD_IN_IU,
        );
        assert_sense(
            &run_data(&lun, &caw_cdb(7, 1, 0), &[0; 2048]),
            INVALID_FIELD_IN_IU,
        );
        assert_sense(
            &run_data(&lun, &caw_cdb(7, 1, 0x20), &[0; 1024]),
            INVALID_FIELD_IN_CDB,
        );
        good(&run(&lun, &caw_cdb(7, 0, 0)));
        // 0 blocks with Data-Out (256 truncated to the 8-bit field) is an invalid CDB.
        assert_sense(
            &run_data(&lun, &caw_cdb(7, 0, 0), &[0; 1024]),
            INVALID_FIELD_IN_CDB,
        );
    }
}

#[test]
fn sync_cache() {
    let (store, lun) = mem_lun(64);
    good(&run(&lun, &cdb10(SYNC_CACHE_10, 0x02, 0, 0)));
    good(&run(&lun, &cdb16(SYNC_CACHE_16, 0, 10, 54)));
    assert_eq!(store.flush_count(), 2);
    assert_sense(
        &run(&lun, &cdb10(SYNC_CACHE_10, 0, 65, 0)),
        LBA_OUT_OF_RANGE,
    );
    assert_sense(
        &run(&lun, &cdb16(SYNC_CACHE_16, 0, 60, 5)),
        LBA_OUT_OF_RANGE,
    );
    let (_t, lun) = file_lun(8);
    good(&run(&lun, &cdb16(SYNC_CACHE_16, 0, 0, 0)));
}

#[test]
fn transfer_prediction() {
    let (_, lun) = mem_lun(64);
    assert_eq!(lun.transfer(&cdb10(READ_10, 0, 0, 4)).data_in, 2048);
    assert_eq!(lun.transfer(&cdb10(WRITE_10, 0, 0, 4)).data_out, 2048);
    assert_eq!(lun.transfer(&[WRITE_6, 0, 0, 0, 0, 0]).data_out, 256 * 512);
    assert_eq!(lun.transfer(&cdb10(VERIFY_10, 0, 0, 4)).data_out, 0);
    assert_eq!(lun.transfer(&cdb10(VERIFY_10, 2, 0, 4)).data_out, 2048);
    assert_eq!(lun.transfer(&cdb10(VERIFY_10, 6, 0, 4)).data_out, 512);
    assert_eq!(lun.transfer(&cdb10(WRITE_SAME_10, 0, 0, 4)).data_out, 512);
    assert_eq!(lun.transfer(&cdb16(WRITE_SAME_16, 1, 0, 4)).data_out, 0);
    assert!(lun.transfer(&cdb16(WRITE_SAME_16, 1, 0, 4)).exact);
    assert!(lun.transfer(&cdb10(WRITE_SAME_10, 0, 0, 4)).exact);
    assert!(!lun.transfer(&cdb10(WRITE_10, 0, 0, 4)).exact);
    let mut caw = cdb16(COMPARE_AND_WRITE, 0, 0, 0);
    assert_eq!(
        lun.transfer(&caw),
        Transfer {
            data_out: 0,
            data_in: 0,
            exact: true
        }
    );
    caw[13] = 1;
    assert_eq!(
        lun.transfer(&caw),
        Transfer {
            data_out: 1024,
            data_in: 0,
            exact: true
        }
    );
    caw[13] = 2;
    assert_eq!(lun.transfer(&caw).data_out, 0);
    assert_eq!(
        lun.transfer(&[UNMAP, 0, 0, 0, 0, 0, 0, 0, 24, 0]).data_out,
        24
    );
    assert_eq!(
        lun.transfer(&[PR_OUT, 0, 0, 0, 0, 0, 0, 0, 24, 0]).data_out,
        24
    );
    assert_eq!(
        lun.transfer(&[MODE_SELECT_6, 0x10, 0, 0, 28, 0]).data_out,
        28
    );
    assert_eq!(lun.transfer(&[INQUIRY, 0, 0, 1, 0, 0]).data_in, 256);
    assert_eq!(lun.transfer(&[0xFF; 16]), Transfer::default());
    assert_eq!(lun.transfer(&[]), Transfer::default());
}

#[test]
fn orwrite() {
    for (_keep, lun) in [(None, mem_lun(64).1), {
        let (t, l) = file_lun(64);
        (Some(t), l)
    }] {
        good(&run_data(&lun, &cdb10(WRITE_10, 0, 3, 2), &[0x0F; 1024]));
        good(&run_data(
            &lun,
            &cdb16(ORWRITE_16, 0x08, 3, 2),
            &[0xA0; 1024],
        ));
        assert!(good(&run(&lun, &cdb10(READ_10, 0, 3, 2)))
            .iter()
            .all(|&b| b == 0xAF));
        good(&run(&lun, &cdb16(ORWRITE_16, 0, 3, 0)));
        assert_eq!(lun.transfer(&cdb16(ORWRITE_16, 0, 3, 2)).data_out, 1024);
        assert_sense(
            &run_data(&lun, &cdb16(ORWRITE_16, 0, 63, 2), &[0; 1024]),
            LBA_OUT_OF_RANGE,
        );
        assert_sense(
            &run_data(&lun, &cdb16(ORWRITE_16, 0x20, 3, 1), &[0; 512]),
            INVALID_FIELD_IN_CDB,
        );
        assert_sense(
            &run_data(&lun, &cdb16(ORWRITE_16, 0, 3, 2), &[0; 512]),
            INVALID_FIELD_IN_IU,
        );
    }
    let (_, ro) = mem_lun_with(8, |c| c.read_only = true);
    assert_sense(
        &run_data(&ro, &cdb16(ORWRITE_16, 0, 0, 1), &[0; 512]),
        WRITE_PROTECTED,
    );
}

#[test]
fn prefetch_and_defect_data() {
    let (_, lun) = mem_lun(64);
    good(&run(&lun, &cdb10(PREFETCH_10, 0x02, 0, 64)));
    good(&run(&lun, &cdb16(PREFETCH_16, 0, 63, 1)));
    good(&run(&lun, &cdb16(PREFETCH_16, 0, 64, 0)));
    assert_sense(&run(&lun, &cdb10(PREFETCH_10, 0, 64, 1)), LBA_OUT_OF_RANGE);
    assert_sense(
        &run(&lun, &cdb16(PREFETCH_16, 0, u64::MAX, 1)),
        LBA_OUT_OF_RANGE,
    );
    let r = run(
        &lun,
        &[READ_DEFECT_DATA_10, 0, 0x18 | 5, 0, 0, 0, 0, 0, 32, 0],
    );
    assert_eq!(good(&r), &[0, 0x1D, 0, 0]);
    let r = run(
        &lun,
        &[READ_DEFECT_DATA_12, 0x08 | 4, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0],
    );
    assert_eq!(good(&r), &[0, 0x0C]);
    assert_eq!(
        lun.transfer(&[READ_DEFECT_DATA_10, 0, 0, 0, 0, 0, 0, 0, 32, 0])
            .data_in,
        32
    );
}

#[test]
fn software_write_protect() {
    let (_, lun) = mem_lun(64);
    let swp_on = [
        0u8, 0, 0, 0, 0x0A, 0x0A, 0, 0x10, 0x08, 0, 0xFF, 0xFF, 0, 0, 0, 0,
    ];
    good(&run_data(
        &lun,
        &[MODE_SELECT_6, 0x10, 0, 0, 16, 0],
        &swp_on,
    ));
    let r = run(&lun, &[MODE_SENSE_6, 0x08, 0x0A, 0, 255, 0]);
    assert_eq!(good(&r)[2] & 0x80, 0x80);
    assert_eq!(good(&r)[4 + 4] & 0x08, 0x08);
    good(&run(&lun, &cdb10(READ_10, 0, 0, 1)));
    assert_sense(
        &run_data(&lun, &cdb10(WRITE_10, 0, 0, 1), &[0; 512]),
        WRITE_PROTECTED,
    );
    assert_sense(
        &run_data(&lun, &cdb10(WRITE_SAME_10, 0, 0, 1), &[0; 512]),
        WRITE_PROTECTED,
    );
    let mut off = swp_on;
    off[8] = 0;
    good(&run_data(&lun, &[MODE_SELECT_6, 0x10, 0, 0, 16, 0], &off));
    good(&run_data(&lun, &cdb10(WRITE_10, 0, 0, 1), &[0; 512]));
    // A LUN reset clears SWP.
    good(&run_data(
        &lun,
        &[MODE_SELECT_6, 0x10, 0, 0, 16, 0],
        &swp_on,
    ));
    lun.reset(None);
    let _ = run(&lun, &[TEST_UNIT_READY, 0, 0, 0, 0, 0]);
    good(&run_data(&lun, &cdb10(WRITE_10, 0, 0, 1), &[0; 512]));
}

#[test]
fn concurrent_io_and_compare_and_write() {
    let (_t, lun) = file_lun(256);
    let lun = Arc::new(lun);
    let mut handles = Vec::new();
    for t in 0..4u8 {
        let lun = lun.clone();
        handles.push(std::thread::spawn(move || {
            let n = nexus(t);
            // Private blocks: write then read back.
            for i in 0..20u32 {
                let lba = 16 + u32::from(t) * 32 + i;
                let d = pattern(1, t.wrapping_mul(31).wrapping_add(i as u8));
                good(&lun.execute(&n, &cdb10(WRITE_10, 0, lba, 1), &d));
                assert_eq!(
                    good(&lun.execute(&n, &cdb10(READ_10, 0, lba, 1), &[])),
                    &d[..]
                );
            }
            // A shared counter in block 0, incremented with COMPARE AND WRITE.
            let mut done = 0;
            while done < 25 {
                let old = good(&lun.execute(&n, &cdb10(READ_10, 0, 0, 1), &[])).to_vec();
                let v = u64::from_be_bytes(old[..8].try_into().unwrap());
                let mut buf = old.clone();
                buf.extend_from_slice(&(v + 1).to_be_bytes());
                buf.resize(1024, 0);
                let r = lun.execute(&n, &caw_cdb(0, 1, 0), &buf);
                match r.sense {
                    None => done += 1,
                    Some(s) => assert_eq!(s.key, SenseKey::Miscompare),
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let d = good(&run(&lun, &cdb10(READ_10, 0, 0, 1))).to_vec();
    assert_eq!(u64::from_be_bytes(d[..8].try_into().unwrap()), 100);
}
