//! Tests of the SCSI layer, one file per command family, against the in-memory backstore and
//! against temporary files.

mod atomic;
mod commands;
mod errors;
mod inquiry;
mod misc;
mod mode;
mod proptests;
mod reservation;
mod rw;
mod thin;
mod xcopy;

use std::sync::Arc;

use super::sense::Sense;
use super::{ItNexus, Lun, LunConfig, ScsiResult, ScsiStatus};
use crate::iscsi::backstore::tests::TempFile;
use crate::iscsi::backstore::{FileBackstore, MemBackstore};

pub(super) const IQN: &str = "iqn.2026-11.org.example:disk1";

pub(super) fn nexus(n: u8) -> ItNexus {
    ItNexus::iscsi("iqn.2026-11.org.example:client", [0x40, 0, 0, 0, 0, n], 1)
}

pub(super) fn config() -> LunConfig {
    LunConfig::new(0, IQN, "SERIAL0001")
}

pub(super) fn mem_lun_with(
    blocks: u64,
    f: impl FnOnce(&mut LunConfig),
) -> (Arc<MemBackstore>, Lun) {
    let store = Arc::new(MemBackstore::new(blocks).unwrap());
    let mut cfg = config();
    f(&mut cfg);
    let lun = Lun::new(cfg, store.clone());
    (store, lun)
}

pub(super) fn mem_lun(blocks: u64) -> (Arc<MemBackstore>, Lun) {
    mem_lun_with(blocks, |_| {})
}

pub(super) fn file_lun_with(blocks: u64, f: impl FnOnce(&mut LunConfig)) -> (TempFile, Lun) {
    let t = TempFile::new("lun", blocks * 512);
    let mut cfg = config();
    f(&mut cfg);
    let store = Arc::new(FileBackstore::open(&t.0, cfg.read_only).unwrap());
    (t, Lun::new(cfg, store))
}

pub(super) fn file_lun(blocks: u64) -> (TempFile, Lun) {
    file_lun_with(blocks, |_| {})
}

pub(super) fn run(lun: &Lun, cdb: &[u8]) -> ScsiResult {
    lun.execute(&nexus(1), cdb, &[])
}

pub(super) fn run_data(lun: &Lun, cdb: &[u8], data: &[u8]) -> ScsiResult {
    lun.execute(&nexus(1), cdb, data)
}

#[track_caller]
pub(super) fn good(r: &ScsiResult) -> &[u8] {
    assert_eq!(r.status, ScsiStatus::Good, "sense {:?}", r.sense);
    &r.data_in
}

#[track_caller]
pub(super) fn assert_sense(r: &ScsiResult, want: Sense) {
    assert_eq!(r.status, ScsiStatus::CheckCondition, "{r:?}");
    let s = r.sense.unwrap();
    assert_eq!(
        (s.key, s.asc, s.ascq),
        (want.key, want.asc, want.ascq),
        "{s:?}"
    );
    let raw = r.sense_bytes();
    assert_eq!(raw.len(), 18);
    assert_eq!(raw[0] & 0x7F, 0x70);
    assert_eq!(raw[2] & 0x0F, want.key.code());
    assert_eq!((raw[12], raw[13]), (want.asc, want.ascq));
}

#[track_caller]
pub(super) fn assert_conflict(r: &ScsiResult) {
    assert_eq!(r.status, ScsiStatus::ReservationConflict, "{r:?}");
    assert!(r.sense.is_none());
}

/// A 10-byte block CDB.
pub(super) fn cdb10(op: u8, flags: u8, lba: u32, n: u16) -> Vec<u8> {
    let mut c = vec![op, flags];
    c.extend_from_slice(&lba.to_be_bytes());
    c.push(0);
    c.extend_from_slice(&n.to_be_bytes());
    c.push(0);
    c
}

/// A 12-byte block CDB.
pub(super) fn cdb12(op: u8, flags: u8, lba: u32, n: u32) -> Vec<u8> {
    let mut c = vec![op, flags];
    c.extend_from_slice(&lba.to_be_bytes());
    c.extend_from_slice(&n.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

/// A 16-byte block CDB.
pub(super) fn cdb16(op: u8, flags: u8, lba: u64, n: u32) -> Vec<u8> {
    let mut c = vec![op, flags];
    c.extend_from_slice(&lba.to_be_bytes());
    c.extend_from_slice(&n.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

/// `n` blocks of a recognisable pattern.
pub(super) fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n * 512)
        .map(|i| (i as u8).wrapping_mul(7) ^ seed)
        .collect()
}
