//! Backstore failures become sense data, never panics: MEDIUM ERROR for reads and writes,
//! SPACE ALLOCATION FAILED WRITE PROTECT when the file system is full.

use std::io;

use super::*;
use crate::iscsi::backstore::{Backstore, Extent};
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::sense::*;

/// A backstore whose every operation fails with `errno`.
#[derive(Debug)]
struct Failing {
    errno: i32,
}

impl Failing {
    fn err(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

impl Backstore for Failing {
    fn read_at(&self, _: &mut [u8], _: u64) -> io::Result<()> {
        Err(self.err())
    }
    fn write_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        Err(self.err())
    }
    fn flush(&self) -> io::Result<()> {
        Err(self.err())
    }
    fn punch_hole(&self, _: u64, _: u64) -> io::Result<()> {
        Err(self.err())
    }
    fn len(&self) -> u64 {
        64 * 512
    }
    fn extent_at(&self, _: u64) -> io::Result<Extent> {
        Err(self.err())
    }
}

fn failing_lun(errno: i32) -> Lun {
    Lun::new(config(), Arc::new(Failing { errno }))
}

#[test]
fn io_errors_map_to_sense() {
    let lun = failing_lun(nix::libc::EIO);
    let blk = [0u8; 512];
    assert_sense(&run(&lun, &cdb10(READ_10, 0, 0, 1)), READ_ERROR);
    assert_sense(&run(&lun, &cdb16(VERIFY_16, 0, 0, 1)), READ_ERROR);
    assert_sense(
        &run_data(&lun, &cdb10(WRITE_10, 0, 0, 1), &blk),
        WRITE_ERROR,
    );
    assert_sense(
        &run_data(&lun, &cdb10(WRITE_SAME_10, 0, 0, 4), &[1; 512]),
        WRITE_ERROR,
    );
    assert_sense(
        &run_data(&lun, &cdb10(WRITE_SAME_10, 8, 0, 4), &blk),
        WRITE_ERROR,
    );
    assert_sense(&run(&lun, &cdb10(SYNC_CACHE_10, 0, 0, 0)), WRITE_ERROR);
    assert_sense(&run(&lun, &[START_STOP_UNIT, 0, 0, 0, 0, 0]), WRITE_ERROR);
    let mut caw = cdb16(COMPARE_AND_WRITE, 0, 0, 0);
    caw[13] = 1;
    assert_sense(&run_data(&lun, &caw, &[0; 1024]), READ_ERROR);
    assert_sense(
        &run_data(&lun, &cdb16(ORWRITE_16, 0, 0, 1), &blk),
        READ_ERROR,
    );
    let mut p = vec![0, 22, 0, 16, 0, 0, 0, 0];
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
    assert_sense(
        &run_data(&lun, &[UNMAP, 0, 0, 0, 0, 0, 0, 0, 24, 0], &p),
        WRITE_ERROR,
    );
    let mut gls = cdb16(SERVICE_ACTION_IN_16, SA_GET_LBA_STATUS, 0, 24);
    gls[1] = SA_GET_LBA_STATUS;
    assert_sense(&run(&lun, &gls), READ_ERROR);
    // Commands that do not touch the medium still work.
    good(&run(&lun, &[INQUIRY, 0, 0, 0, 36, 0]));
    good(&run(&lun, &[TEST_UNIT_READY, 0, 0, 0, 0, 0]));
}

#[test]
fn write_protected_lun_wants_no_exact_data() {
    let (_, lun) = mem_lun_with(64, |c| c.read_only = true);
    let mut caw = cdb16(COMPARE_AND_WRITE, 0, 0, 0);
    caw[13] = 1;
    for (c, len) in [
        (cdb10(WRITE_SAME_10, 0x08, 0, 1), 512),
        (cdb16(WRITE_SAME_16, 0, 0, 1), 512),
        (caw, 1024),
    ] {
        assert_eq!(lun.transfer(&c), Transfer::default());
        // With or without the data, the answer is WRITE PROTECTED.
        assert_sense(&run(&lun, &c), WRITE_PROTECTED);
        assert_sense(&run_data(&lun, &c, &vec![0; len]), WRITE_PROTECTED);
    }
    let (_, rw) = mem_lun(64);
    assert!(rw.transfer(&cdb10(WRITE_SAME_10, 0, 0, 1)).exact);
}

#[test]
fn extended_copy_io_error_is_copy_aborted_with_failed_segment_details() {
    use super::xcopy::{params, rcr, segment, target, xcopy};
    let lun = failing_lun(nix::libc::EIO);
    let p = params(5, 0, &[target(&lun)], &[segment(0, 0, 4, 0, 8)]);
    let r = xcopy(&lun, &p);
    assert_eq!(r.sense.map(|s| s.key), Some(SenseKey::CopyAborted));
    let r = run(&lun, &rcr(0x00, 5, 64));
    let d = good(&r);
    assert_eq!((d[4], d[5], d[6]), (0x02, 0, 0)); // completed with errors, 0 segments
    let r = run(&lun, &rcr(0x04, 5, 255));
    let d = good(&r);
    assert_eq!(d.len(), 60 + 18);
    assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()), 74);
    assert_eq!((d[56], d[58], d[59]), (0x02, 0, 18));
    assert_eq!((d[60] & 0x7F, d[62] & 0x0F), (0x70, 0x0A));
}

#[test]
fn full_file_system_is_reported_as_space_allocation_failure() {
    let lun = failing_lun(nix::libc::ENOSPC);
    let r = run_data(&lun, &cdb10(WRITE_10, 0, 0, 1), &[0; 512]);
    assert_sense(&r, SPACE_ALLOCATION_FAILED);
    assert_eq!(r.sense.map(|s| s.key), Some(SenseKey::DataProtect));
}
