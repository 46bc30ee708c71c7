//! WRITE SAME, UNMAP, GET LBA STATUS.

use super::*;
use crate::iscsi::backstore::Backstore;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::sense::*;

fn unmap_list(ranges: &[(u64, u32)]) -> Vec<u8> {
    let bdl = (ranges.len() * 16) as u16;
    let mut p = Vec::new();
    p.extend_from_slice(&(bdl + 6).to_be_bytes());
    p.extend_from_slice(&bdl.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    for &(lba, n) in ranges {
        p.extend_from_slice(&lba.to_be_bytes());
        p.extend_from_slice(&n.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    p
}

fn unmap_cdb(len: usize) -> Vec<u8> {
    let l = (len as u16).to_be_bytes();
    vec![UNMAP, 0, 0, 0, 0, 0, 0, l[0], l[1], 0]
}

fn lba_status(lun: &Lun, lba: u64) -> ScsiResult {
    let mut c = cdb16(SERVICE_ACTION_IN_16, SA_GET_LBA_STATUS, lba, 24);
    c[1] = SA_GET_LBA_STATUS;
    run(lun, &c)
}

fn check_write_same(lun: &Lun) {
    // Pattern replicated over the range, 10 and 16 byte forms.
    let block = pattern(1, 0x33);
    good(&run_data(lun, &cdb10(WRITE_SAME_10, 0, 4, 3), &block));
    let d = good(&run(lun, &cdb10(READ_10, 0, 4, 3))).to_vec();
    assert!(d.chunks(512).all(|c| c == &block[..]));
    good(&run_data(lun, &cdb16(WRITE_SAME_16, 0, 40, 2500), &block));
    // More than one 1 MiB chunk of pattern, read back in two parts (MAXIMUM TRANSFER LENGTH).
    for (lba, n) in [(40u64, 2000u32), (2040, 500)] {
        let d = good(&run(lun, &cdb16(READ_16, 0, lba, n))).to_vec();
        assert!(d.chunks(512).all(|c| c == &block[..]));
    }
    // UNMAP bit with zeros: hole, reads as zeros.
    good(&run_data(lun, &cdb10(WRITE_SAME_10, 0x08, 4, 2), &[0; 512]));
    let d = good(&run(lun, &cdb10(READ_10, 0, 4, 3))).to_vec();
    assert!(d[..1024].iter().all(|&b| b == 0));
    assert_eq!(&d[1024..], &block[..]);
    // The UNMAP bit deallocates whatever the data block holds (LBPRZ: reads as zeros).
    good(&run_data(lun, &cdb10(WRITE_10, 0, 4, 1), &block));
    good(&run_data(lun, &cdb16(WRITE_SAME_16, 0x08, 4, 1), &block));
    assert!(good(&run(lun, &cdb10(READ_10, 0, 4, 1)))
        .iter()
        .all(|&b| b == 0));
    // NDOB writes zeros without Data-Out.
    good(&run(lun, &cdb16(WRITE_SAME_16, 0x09, 4, 1)));
    assert!(good(&run(lun, &cdb10(READ_10, 0, 4, 1)))
        .iter()
        .all(|&b| b == 0));
    // Errors.
    let cap = lun.capacity_blocks();
    assert_sense(
        &run_data(lun, &cdb16(WRITE_SAME_16, 0, cap + 1, 0), &block),
        LBA_OUT_OF_RANGE,
    );
    assert_sense(
        &run_data(lun, &cdb10(WRITE_SAME_10, 0, u32::MAX, 0), &block),
        LBA_OUT_OF_RANGE,
    );
    good(&run_data(lun, &cdb16(WRITE_SAME_16, 0, cap, 0), &block));
    assert_sense(
        &run_data(lun, &cdb16(WRITE_SAME_16, 0, 0, (1 << 20) + 1), &block),
        INVALID_FIELD_IN_CDB,
    );
    assert_sense(
        &run_data(lun, &cdb10(WRITE_SAME_10, 0x10, 0, 1), &block),
        INVALID_FIELD_IN_CDB,
    );
    assert_sense(
        &run_data(lun, &cdb10(WRITE_SAME_10, 0x04, 0, 1), &block),
        INVALID_FIELD_IN_CDB,
    );
    assert_sense(
        &run_data(lun, &cdb10(WRITE_SAME_10, 0x20, 0, 1), &block),
        INVALID_FIELD_IN_CDB,
    );
    assert_sense(
        &run_data(lun, &cdb16(WRITE_SAME_16, 0, cap, 1), &block),
        LBA_OUT_OF_RANGE,
    );
    assert_sense(
        &run_data(lun, &cdb16(WRITE_SAME_16, 0, cap - 1, 2), &block),
        LBA_OUT_OF_RANGE,
    );
    // The Data-Out must be exactly one block.
    assert_sense(
        &run(lun, &cdb10(WRITE_SAME_10, 0, 0, 1)),
        INVALID_FIELD_IN_IU,
    );
    assert_sense(
        &run_data(lun, &cdb10(WRITE_SAME_10, 0x08, 0, 1), &[0; 256]),
        INVALID_FIELD_IN_IU,
    );
    assert_sense(
        &run_data(lun, &cdb10(WRITE_SAME_10, 0x08, 0, 1), &[0; 1024]),
        INVALID_FIELD_IN_IU,
    );
    // 0 blocks: from LBA to the end of the medium.
    good(&run_data(lun, &cdb16(WRITE_SAME_16, 0, cap - 3, 0), &block));
    let d = good(&run(lun, &cdb16(READ_16, 0, cap - 3, 3))).to_vec();
    assert!(d.chunks(512).all(|c| c == &block[..]));
    good(&run_data(
        lun,
        &cdb10(WRITE_SAME_10, 0x08, cap as u32 - 2, 0),
        &[0; 512],
    ));
    let d = good(&run(lun, &cdb16(READ_16, 0, cap - 3, 3))).to_vec();
    assert_eq!(&d[..512], &block[..]);
    assert!(d[512..].iter().all(|&b| b == 0));
}

#[test]
fn write_same_memory() {
    let (store, lun) = mem_lun(4096);
    check_write_same(&lun);
    assert!(store.flush_count() == 0);
    let (tstore, thick) = mem_lun_with(64, |c| c.thin_provisioning = false);
    // Without thin provisioning UNMAP is ignored and the zeros are written.
    good(&run_data(
        &thick,
        &cdb10(WRITE_SAME_10, 0x08, 0, 2),
        &[0; 512],
    ));
    assert!(tstore.extent_at(0).unwrap().mapped);
    let (store, wt) = mem_lun_with(64, |c| c.write_cache = false);
    good(&run_data(&wt, &cdb10(WRITE_SAME_10, 0, 0, 2), &[1; 512]));
    assert_eq!(store.flush_count(), 1);
}

#[test]
fn write_same_file() {
    let (_t, lun) = file_lun(4096);
    check_write_same(&lun);
}

fn check_unmap(lun: &Lun) {
    let d = pattern(16, 7);
    good(&run_data(lun, &cdb10(WRITE_10, 0, 0, 16), &d));
    let p = unmap_list(&[(2, 3), (10, 1), (12, 0)]);
    good(&run_data(lun, &unmap_cdb(p.len()), &p));
    let r = run(lun, &cdb10(READ_10, 0, 0, 16));
    let got = good(&r);
    for b in 0..16 {
        let blk = &got[b * 512..(b + 1) * 512];
        if (2..5).contains(&b) || b == 10 {
            assert!(blk.iter().all(|&x| x == 0), "block {b}");
        } else {
            assert_eq!(blk, &d[b * 512..(b + 1) * 512], "block {b}");
        }
    }
    // Zero-length list, header only.
    good(&run(lun, &unmap_cdb(0)));
    good(&run_data(lun, &unmap_cdb(8), &unmap_list(&[])));
    // Errors: ANCHOR, short list, range, too many blocks/descriptors.
    let mut c = unmap_cdb(p.len());
    c[1] = 1;
    assert_sense(&run_data(lun, &c, &p), INVALID_FIELD_IN_CDB);
    assert_sense(&run_data(lun, &unmap_cdb(4), &p), PARAM_LIST_LENGTH);
    assert_sense(
        &run_data(lun, &unmap_cdb(40), &p[..20]),
        INVALID_FIELD_IN_IU,
    );
    let cap = lun.capacity_blocks();
    let bad = unmap_list(&[(0, 1), (cap, 1)]);
    assert_sense(
        &run_data(lun, &unmap_cdb(bad.len()), &bad),
        LBA_OUT_OF_RANGE,
    );
    // Nothing was unmapped by the rejected command.
    assert_eq!(good(&run(lun, &cdb10(READ_10, 0, 0, 1))), &d[..512]);
    let bad = unmap_list(&[(cap - 1, 2)]);
    assert_sense(
        &run_data(lun, &unmap_cdb(bad.len()), &bad),
        LBA_OUT_OF_RANGE,
    );
    let bad = unmap_list(&[(u64::MAX, 1)]);
    assert_sense(
        &run_data(lun, &unmap_cdb(bad.len()), &bad),
        LBA_OUT_OF_RANGE,
    );
    let bad = unmap_list(&[(0, (1 << 20) + 1)]);
    assert_sense(
        &run_data(lun, &unmap_cdb(bad.len()), &bad),
        INVALID_FIELD_IN_PARAM,
    );
    let many: Vec<(u64, u32)> = (0..257).map(|i| (i, 1)).collect();
    let bad = unmap_list(&many);
    assert_sense(
        &run_data(lun, &unmap_cdb(bad.len()), &bad),
        INVALID_FIELD_IN_PARAM,
    );
}

#[test]
fn unmap_memory() {
    let (_, lun) = mem_lun(4096);
    check_unmap(&lun);
    let (_, thick) = mem_lun_with(64, |c| c.thin_provisioning = false);
    let p = unmap_list(&[(0, 1)]);
    assert_sense(&run_data(&thick, &unmap_cdb(p.len()), &p), INVALID_OPCODE);
}

#[test]
fn unmap_file_punches_holes() {
    let (t, lun) = file_lun(4096);
    check_unmap(&lun);
    // Unmap a large aligned range and check the file is still full size.
    let p = unmap_list(&[(1024, 2048)]);
    good(&run_data(&lun, &unmap_cdb(p.len()), &p));
    assert_eq!(std::fs::metadata(&t.0).unwrap().len(), 4096 * 512);
}

#[test]
fn get_lba_status() {
    let (_, lun) = mem_lun(64);
    good(&run_data(&lun, &cdb10(WRITE_10, 0, 0, 64), &pattern(64, 1)));
    let p = unmap_list(&[(8, 4)]);
    good(&run_data(&lun, &unmap_cdb(p.len()), &p));
    let r = lba_status(&lun, 0);
    let d = good(&r);
    assert_eq!(d.len(), 24);
    assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()), 20);
    assert_eq!(u64::from_be_bytes(d[8..16].try_into().unwrap()), 0);
    assert_eq!(u32::from_be_bytes(d[16..20].try_into().unwrap()), 8);
    assert_eq!(d[20] & 0x0F, 0);
    let r = lba_status(&lun, 9);
    let d = good(&r);
    assert_eq!(u32::from_be_bytes(d[16..20].try_into().unwrap()), 3);
    assert_eq!(d[20] & 0x0F, 1);
    good(&lba_status(&lun, 63));
    assert_sense(&lba_status(&lun, 64), LBA_OUT_OF_RANGE);
    assert_sense(&lba_status(&lun, u64::MAX), LBA_OUT_OF_RANGE);

    // On a file: a fresh sparse file is all hole (or all mapped where SEEK_HOLE is missing).
    let (_t, lun) = file_lun(4096);
    good(&run_data(&lun, &cdb10(WRITE_10, 0, 0, 8), &pattern(8, 1)));
    let r = lba_status(&lun, 0);
    let d = good(&r);
    assert_eq!(d[20] & 0x0F, 0);
    let n = u32::from_be_bytes(d[16..20].try_into().unwrap());
    assert!((8..=4096).contains(&n));
    let r = lba_status(&lun, 2048);
    let d = good(&r);
    assert!(d[20] & 0x0F <= 1);
    assert!(u32::from_be_bytes(d[16..20].try_into().unwrap()) >= 1);
}
