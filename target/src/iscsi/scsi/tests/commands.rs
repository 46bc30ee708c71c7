//! Every command of the REPORT SUPPORTED OPERATION CODES table, run once with valid fields
//! against a temporary file, so that each handler is exercised over real file I/O.

use super::*;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::opcodes::SUPPORTED;

/// A CDB (padded to the opcode's length) and Data-Out that must succeed, or `None` to skip.
fn valid_case(lun: &Lun, op: u8, sa: Option<u16>) -> Option<(Vec<u8>, Vec<u8>)> {
    let blk = pattern(1, op);
    let pr = |rk: u64, sark: u64| {
        let mut p = rk.to_be_bytes().to_vec();
        p.extend_from_slice(&sark.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p
    };
    let prout = |sa: u8, ty: u8| vec![PR_OUT, sa, ty, 0, 0, 0, 0, 0, 24, 0];
    let mut caching = vec![0u8; 4];
    caching.extend_from_slice(&[0x08, 0x12, 0x04]);
    caching.resize(24, 0);
    Some(match (op, sa) {
        (TEST_UNIT_READY, _) => (vec![op, 0, 0, 0, 0, 0], vec![]),
        (REQUEST_SENSE, _) => (vec![op, 0, 0, 0, 18, 0], vec![]),
        (READ_6, _) => (vec![op, 0, 0, 1, 1, 0], vec![]),
        (WRITE_6, _) => (vec![op, 0, 0, 1, 1, 0], blk),
        (INQUIRY, _) => (vec![op, 0, 0, 0, 96, 0], vec![]),
        (MODE_SELECT_6, _) => (vec![op, 0x10, 0, 0, 24, 0], caching),
        (RESERVE_6 | RELEASE_6, _) => (vec![op, 0, 0, 0, 0, 0], vec![]),
        (MODE_SENSE_6, _) => (vec![op, 0, 0x3F, 0, 255, 0], vec![]),
        (START_STOP_UNIT, _) => (vec![op, 0, 0, 0, 1, 0], vec![]),
        (PREVENT_ALLOW, _) => (vec![op, 0, 0, 0, 0, 0], vec![]),
        (READ_CAPACITY_10, _) => (vec![op, 0, 0, 0, 0, 0, 0, 0, 0, 0], vec![]),
        (READ_10 | PREFETCH_10 | SYNC_CACHE_10 | VERIFY_10, _) => (cdb10(op, 0, 2, 1), vec![]),
        (WRITE_10 | WRITE_VERIFY_10 | WRITE_SAME_10, _) => (cdb10(op, 0, 2, 1), blk),
        (READ_DEFECT_DATA_10, _) => (vec![op, 0, 0x18, 0, 0, 0, 0, 0, 8, 0], vec![]),
        (UNMAP, _) => {
            let mut p = vec![0, 22, 0, 16, 0, 0, 0, 0];
            p.extend_from_slice(&8u64.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0]);
            (vec![op, 0, 0, 0, 0, 0, 0, 0, 24, 0], p)
        }
        (MODE_SELECT_10, _) => {
            let mut p = vec![0u8; 4];
            p.extend_from_slice(&caching);
            (vec![op, 0x10, 0, 0, 0, 0, 0, 0, 28, 0], p)
        }
        (MODE_SENSE_10, _) => (vec![op, 0, 0x3F, 0, 0, 0, 0, 1, 0, 0], vec![]),
        (PR_IN, Some(sa)) => (vec![op, sa as u8, 0, 0, 0, 0, 0, 1, 0, 0], vec![]),
        (PR_OUT, Some(0)) => (prout(0, 0), pr(0, 0xA)),
        (PR_OUT, Some(1)) => (prout(1, 1), pr(0xA, 0)),
        (PR_OUT, Some(2)) => (prout(2, 1), pr(0xA, 0)),
        (PR_OUT, Some(3)) => (prout(3, 0), pr(0xA, 0)),
        (PR_OUT, Some(6)) => (prout(6, 0), pr(0, 0xB)),
        (PR_OUT, _) => return None,
        (READ_16 | PREFETCH_16 | SYNC_CACHE_16 | VERIFY_16, _) => (cdb16(op, 0, 3, 1), vec![]),
        (WRITE_16 | ORWRITE_16 | WRITE_VERIFY_16 | WRITE_SAME_16, _) => (cdb16(op, 0, 3, 1), blk),
        (COMPARE_AND_WRITE, _) => {
            let mut c = cdb16(op, 0, 4, 0);
            c[13] = 1;
            let mut d = good(&run(lun, &cdb10(READ_10, 0, 4, 1))).to_vec();
            d.extend_from_slice(&blk);
            (c, d)
        }
        (EXTENDED_COPY, _) => {
            // Copy block 4 to block 6 of this LUN; results held under list identifier 1.
            let mut p = vec![1, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 0];
            p.extend_from_slice(&[0xE4, 0, 0, 0, 0x01, 0x03, 0, 8]);
            p.extend_from_slice(&lun.naa());
            p.resize(16 + 29, 0);
            p.extend_from_slice(&[0x00, 0x02, 0x00]);
            p.extend_from_slice(&[0x02, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 1]);
            p.extend_from_slice(&4u64.to_be_bytes());
            p.extend_from_slice(&6u64.to_be_bytes());
            let mut c = vec![op, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            c.extend_from_slice(&(p.len() as u32).to_be_bytes());
            c.extend_from_slice(&[0, 0]);
            (c, p)
        }
        (RECEIVE_COPY_RESULTS, Some(sa)) => {
            let c = vec![op, sa as u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
            (c, vec![])
        }
        (WRITE_ATOMIC_16, _) => {
            let mut c = cdb16(op, 0x08, 7, 0);
            c[13] = 1;
            (c, blk)
        }
        (SERVICE_ACTION_IN_16, Some(sa)) => {
            let mut c = cdb16(op, sa as u8, 0, 32);
            c[1] = sa as u8;
            (c, vec![])
        }
        (REPORT_LUNS, _) => (vec![op, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], vec![]),
        (MAINTENANCE_IN, Some(sa)) => (vec![op, sa as u8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], vec![]),
        (READ_12 | VERIFY_12, _) => (cdb12(op, 0, 5, 2), vec![]),
        (WRITE_12 | WRITE_VERIFY_12, _) => (cdb12(op, 0, 5, 1), blk),
        (READ_DEFECT_DATA_12, _) => (vec![op, 0x18, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], vec![]),
        _ => panic!("no valid case for opcode {op:#x} / {sa:?}"),
    })
}

#[test]
fn every_supported_command_on_a_file() {
    let (_t, lun) = file_lun(256);
    let mut ran = 0;
    for e in SUPPORTED {
        let Some((cdb, data)) = valid_case(&lun, e.op, e.sa) else {
            continue;
        };
        assert_eq!(cdb.len(), e.usage.len(), "opcode {:#x}", e.op);
        assert_eq!(cdb[0], e.usage[0]);
        let r = run_data(&lun, &cdb, &data);
        assert_eq!(
            r.status,
            ScsiStatus::Good,
            "opcode {:#x}/{:?}: {:?}",
            e.op,
            e.sa,
            r.sense
        );
        let t = lun.transfer(&cdb);
        assert!(r.data_in.len() <= t.data_in as usize, "opcode {:#x}", e.op);
        assert!(data.len() <= t.data_out as usize, "opcode {:#x}", e.op);
        ran += 1;
    }
    assert_eq!(ran, SUPPORTED.len() - 2);
}
