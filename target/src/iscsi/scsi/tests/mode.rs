//! MODE SENSE / MODE SELECT.

use super::*;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::sense::*;

fn sense6(lun: &Lun, dbd: bool, pc: u8, page: u8, alloc: u8) -> ScsiResult {
    run(
        lun,
        &[
            MODE_SENSE_6,
            if dbd { 0x08 } else { 0 },
            (pc << 6) | page,
            0,
            alloc,
            0,
        ],
    )
}

fn sense10(lun: &Lun, flags: u8, page: u8, sub: u8) -> ScsiResult {
    run(lun, &[MODE_SENSE_10, flags, page, sub, 0, 0, 0, 0x10, 0, 0])
}

/// Finds page `code` in MODE SENSE data after a header of `hdr` bytes.
fn find_page(d: &[u8], mut pos: usize, code: u8) -> Option<&[u8]> {
    while pos + 2 <= d.len() {
        let len = usize::from(d[pos + 1]) + 2;
        if d[pos] & 0x3F == code {
            return d.get(pos..pos + len);
        }
        pos += len;
    }
    None
}

#[test]
fn mode_sense_pages() {
    let (_, lun) = mem_lun(100);
    let r = sense6(&lun, false, 0, 0x3F, 255);
    let d = good(&r);
    assert_eq!(usize::from(d[0]) + 1, d.len());
    assert_eq!(d[2], 0x10); // DPOFUA, no WP
    assert_eq!(d[3], 8);
    assert_eq!(&d[4..12], &[0, 0, 0, 100, 0, 0, 2, 0]);
    let cache = find_page(d, 12, 0x08).unwrap();
    assert_eq!(cache.len(), 20);
    assert_eq!(cache[2] & 0x04, 0x04);
    assert_eq!(find_page(d, 12, 0x0A).unwrap().len(), 12);
    assert!(find_page(d, 12, 0x01).is_some());
    assert!(find_page(d, 12, 0x1C).is_some());

    // DBD, single page, changeable and default values.
    let r = sense6(&lun, true, 0, 0x08, 255);
    let d = good(&r);
    assert_eq!(d[3], 0);
    assert_eq!(d.len(), 4 + 20);
    let r = sense6(&lun, true, 1, 0x08, 255);
    assert_eq!(good(&r)[4 + 2], 0x04);
    let r = sense6(&lun, true, 1, 0x0A, 255);
    let d = good(&r);
    assert_eq!(d[4 + 4], 0x08); // only SWP is changeable
    assert!(d[6..].iter().enumerate().all(|(i, &b)| b == 0 || i == 2));
    let r = sense6(&lun, true, 2, 0x08, 255);
    assert_eq!(good(&r)[4 + 2], 0x04);
    assert_eq!(good(&sense6(&lun, false, 0, 0x3F, 4)).len(), 4);

    // Errors: saved values, unknown page, bad subpage.
    assert_sense(&sense6(&lun, false, 3, 0x08, 255), SAVING_NOT_SUPPORTED);
    assert_sense(&sense6(&lun, false, 0, 0x05, 255), INVALID_FIELD_IN_CDB);
    assert_sense(&sense10(&lun, 0, 0x08, 0x01), INVALID_FIELD_IN_CDB);
    good(&sense10(&lun, 0, 0x3F, 0xFF));

    // MODE SENSE(10) with long LBA descriptor.
    let r = sense10(&lun, 0x10, 0x08, 0);
    let d = good(&r);
    assert_eq!(usize::from(u16::from_be_bytes([d[0], d[1]])) + 2, d.len());
    assert_eq!(d[4] & 1, 1);
    assert_eq!(u16::from_be_bytes([d[6], d[7]]), 16);
    assert_eq!(u64::from_be_bytes(d[8..16].try_into().unwrap()), 100);
    let r = sense10(&lun, 0, 0x08, 0);
    assert_eq!(u16::from_be_bytes([good(&r)[6], good(&r)[7]]), 8);

    // Read-only LUN sets WP.
    let (_, ro) = mem_lun_with(8, |c| c.read_only = true);
    assert_eq!(good(&sense6(&ro, true, 0, 0x08, 255))[2], 0x90);
}

fn caching_page(wce: bool) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x08;
    p[1] = 0x12;
    p[2] = if wce { 0x04 } else { 0 };
    p
}

#[test]
fn mode_select_wce() {
    let (store, lun) = mem_lun(64);
    let n2 = nexus(2);
    good(&lun.execute(&n2, &[TEST_UNIT_READY, 0, 0, 0, 0, 0], &[]));
    // MODE SELECT(6): header + short block descriptor + caching page, WCE off.
    let mut pl = vec![0, 0, 0, 8, 0, 0, 0, 64, 0, 0, 2, 0];
    pl.extend(caching_page(false));
    good(&run_data(
        &lun,
        &[MODE_SELECT_6, 0x10, 0, 0, pl.len() as u8, 0],
        &pl,
    ));
    assert!(!lun.write_cache_enabled());
    assert_eq!(good(&sense6(&lun, true, 0, 0x08, 255))[4 + 2] & 0x04, 0);
    // Write-through now flushes every write.
    good(&run_data(&lun, &cdb10(WRITE_10, 0, 0, 1), &[0; 512]));
    assert_eq!(store.flush_count(), 1);
    // The other nexus is told that mode parameters changed.
    assert_sense(
        &lun.execute(&n2, &[TEST_UNIT_READY, 0, 0, 0, 0, 0], &[]),
        UA_MODE_CHANGED,
    );
    // MODE SELECT(10) turning WCE back on, no block descriptor.
    let mut pl = vec![0u8; 8];
    pl.extend(caching_page(true));
    good(&run_data(
        &lun,
        &[MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, pl.len() as u8, 0],
        &pl,
    ));
    assert!(lun.write_cache_enabled());
    // Control page accepted as is; zero-length list is a no-op.
    let mut pl = vec![0u8; 4];
    pl.extend_from_slice(&[0x0A, 0x0A, 0, 0x10, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0]);
    good(&run_data(
        &lun,
        &[MODE_SELECT_6, 0x10, 0, 0, pl.len() as u8, 0],
        &pl,
    ));
    good(&run(&lun, &[MODE_SELECT_6, 0x10, 0, 0, 0, 0]));
    // LUN reset restores the configured WCE.
    good(&run_data(
        &lun,
        &[MODE_SELECT_6, 0x10, 0, 0, 24, 0],
        &[&[0u8, 0, 0, 0][..], &caching_page(false)].concat(),
    ));
    lun.reset(None);
    assert!(lun.write_cache_enabled());
}

#[test]
fn mode_select_errors() {
    let (_, lun) = mem_lun(64);
    let ms6 = |len: u8| [MODE_SELECT_6, 0x10, 0, 0, len, 0];
    // SP set.
    assert_sense(
        &run(&lun, &[MODE_SELECT_6, 0x11, 0, 0, 0, 0]),
        INVALID_FIELD_IN_CDB,
    );
    // Shorter than the header, or than the CDB says.
    assert_sense(&run_data(&lun, &ms6(3), &[0; 3]), PARAM_LIST_LENGTH);
    assert_sense(&run_data(&lun, &ms6(24), &[0; 10]), INVALID_FIELD_IN_IU);
    // Truncated page.
    let mut pl = vec![0u8; 4];
    pl.extend(&caching_page(false)[..10]);
    assert_sense(
        &run_data(&lun, &ms6(pl.len() as u8), &pl),
        PARAM_LIST_LENGTH,
    );
    // Unknown page, wrong page length, subpage format.
    for bad in [
        vec![0x05u8, 2, 0, 0],
        vec![0x08, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0x48, 0x12],
    ] {
        let mut pl = vec![0u8; 4];
        pl.extend(bad);
        pl.resize(pl.len().max(24), 0);
        assert_sense(
            &run_data(&lun, &ms6(pl.len() as u8), &pl),
            INVALID_FIELD_IN_PARAM,
        );
    }
    // Block descriptor with the wrong block length, or a partial descriptor.
    let mut pl = vec![0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x10, 0];
    pl.extend(caching_page(true));
    assert_sense(
        &run_data(&lun, &ms6(pl.len() as u8), &pl),
        INVALID_FIELD_IN_PARAM,
    );
    let pl = [0u8, 0, 0, 4, 0, 0, 0, 0];
    assert_sense(&run_data(&lun, &ms6(8), &pl), INVALID_FIELD_IN_PARAM);
    // Block descriptor length beyond the list.
    let pl = [0u8, 0, 0, 16, 0, 0, 0, 0];
    assert_sense(&run_data(&lun, &ms6(8), &pl), PARAM_LIST_LENGTH);
    // Long LBA descriptor in MODE SELECT(10).
    let mut pl = vec![0u8, 0, 0, 0, 1, 0, 0, 16];
    pl.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 2, 0]);
    pl.extend(caching_page(true));
    good(&run_data(
        &lun,
        &[MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, pl.len() as u8, 0],
        &pl,
    ));
}
