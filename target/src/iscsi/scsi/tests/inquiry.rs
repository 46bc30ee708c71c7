//! INQUIRY, VPD pages, READ CAPACITY, REPORT LUNS, REPORT SUPPORTED OPERATION CODES.

use super::*;
use crate::iscsi::scsi::cdb::*;
use crate::iscsi::scsi::opcodes::SUPPORTED;
use crate::iscsi::scsi::sense::*;
use crate::iscsi::scsi::LunSet;

fn inq(lun: &Lun, evpd: bool, page: u8, alloc: u16) -> ScsiResult {
    let a = alloc.to_be_bytes();
    run(lun, &[INQUIRY, u8::from(evpd), page, a[0], a[1], 0])
}

#[test]
fn standard_inquiry() {
    let (_, lun) = mem_lun(64);
    let r = inq(&lun, false, 0, 255);
    let d = good(&r);
    assert_eq!(d.len(), 96);
    assert_eq!(d[0], 0x00);
    assert_eq!(d[2], 0x06);
    assert_eq!(d[3] & 0x0F, 2);
    assert_eq!(usize::from(d[4]) + 5, d.len());
    assert_eq!(d[7] & 0x02, 0x02);
    assert_eq!(d[5] & 0x30, 0x10);
    assert_eq!(&d[8..16], b"PXEROOT ");
    assert_eq!(&d[16..32], b"VIRTUAL-DISK    ");
    assert_eq!(
        &d[58..66],
        &[0x00, 0xA0, 0x09, 0x60, 0x04, 0x60, 0x04, 0xC0]
    );
    // Allocation length truncates, 0 returns nothing.
    assert_eq!(good(&inq(&lun, false, 0, 5)).len(), 5);
    assert_eq!(good(&inq(&lun, false, 0, 0)).len(), 0);
    // Page code without EVPD, CMDDT, unknown VPD page.
    assert_sense(&inq(&lun, false, 0x80, 255), INVALID_FIELD_IN_CDB);
    assert_sense(
        &run(&lun, &[INQUIRY, 0x02, 0, 0, 255, 0]),
        INVALID_FIELD_IN_CDB,
    );
    assert_sense(&inq(&lun, true, 0x42, 255), INVALID_FIELD_IN_CDB);
}

#[test]
fn vpd_pages() {
    let (_, lun) = mem_lun(64);
    let r = inq(&lun, true, 0x00, 255);
    let d = good(&r);
    assert_eq!(&d[..4], &[0, 0, 0, 6]);
    assert_eq!(&d[4..], &[0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2]);
    for &p in &d[4..] {
        let r = inq(&lun, true, p, 1024);
        let v = good(&r);
        assert_eq!(v[1], p);
        assert_eq!(usize::from(u16::from_be_bytes([v[2], v[3]])) + 4, v.len());
    }
    let r = inq(&lun, true, 0x80, 255);
    assert_eq!(&good(&r)[4..], b"SERIAL0001");

    let r = inq(&lun, true, 0x83, 1024);
    let d = good(&r).to_vec();
    let mut pos = 4;
    let mut types = Vec::new();
    while pos < d.len() {
        let (b0, b1, len) = (d[pos], d[pos + 1], usize::from(d[pos + 3]));
        let id = &d[pos + 4..pos + 4 + len];
        types.push(b1 & 0x0F);
        match b1 & 0x0F {
            3 => {
                assert_eq!(b0 & 0x0F, 1);
                assert_eq!(id.len(), 8);
                assert_eq!(id[0] >> 4, 3);
            }
            1 => assert_eq!(&id[..8], b"PXEROOT "),
            8 => {
                assert_eq!(b0, 0x53);
                assert_eq!(b1 & 0x30, 0x20);
                assert!(id.starts_with(IQN.as_bytes()));
                assert_eq!(id.len() % 4, 0);
                assert_eq!(*id.last().unwrap(), 0);
            }
            4 => assert_eq!(id, &[0, 0, 0, 1]),
            5 => assert_eq!(id, &[0, 0, 0, 1]),
            t => panic!("unexpected designator {t}"),
        }
        pos += 4 + len;
    }
    assert_eq!(types, vec![3, 1, 4, 5, 8]);
    // The relative target port is the one the command came through.
    let r = lun.execute(
        &ItNexus::new("iqn.x,i,0x01", 7),
        &[INQUIRY, 1, 0x83, 1, 0, 0],
        &[],
    );
    let d = good(&r);
    assert!(d.windows(8).any(|w| w == [0x51, 0x94, 0, 4, 0, 0, 0, 7]));
    // The NAA is stable and differs between LUNs.
    let (_, other) = mem_lun_with(64, |c| c.id = 1);
    assert_ne!(lun.naa(), other.naa());
    assert_eq!(lun.naa(), mem_lun(8).1.naa());

    let r = inq(&lun, true, 0xB0, 255);
    let b0 = good(&r);
    assert_eq!(b0.len(), 64);
    assert_eq!(b0[4] & 1, 0); // WSNZ
    assert_eq!(b0[5], 1); // MAXIMUM COMPARE AND WRITE LENGTH
    assert_eq!(u32::from_be_bytes(b0[8..12].try_into().unwrap()), 65536);
    assert_eq!(u32::from_be_bytes(b0[12..16].try_into().unwrap()), 0);
    assert_ne!(u32::from_be_bytes(b0[20..24].try_into().unwrap()), 0);
    // Granularities agree with READ CAPACITY (16): LBPPB logical blocks per physical block.
    let lbppb = 1u32 << crate::iscsi::scsi::capacity::LBPPB_EXPONENT;
    assert_ne!(u32::from_be_bytes(b0[24..28].try_into().unwrap()), 0);
    assert_eq!(
        u32::from(u16::from_be_bytes(b0[6..8].try_into().unwrap())),
        lbppb
    );
    assert_eq!(u32::from_be_bytes(b0[28..32].try_into().unwrap()), lbppb);
    assert_eq!(b0[32] & 0x80, 0x80); // UGAVALID, alignment 0
    assert_ne!(u64::from_be_bytes(b0[36..44].try_into().unwrap()), 0);

    let r = inq(&lun, true, 0xB1, 255);
    assert_eq!(&good(&r)[4..6], &[0, 1]);
    let r = inq(&lun, true, 0xB2, 255);
    assert_eq!(good(&r)[5] & 0xE4, 0xE4);

    let (_, thick) = mem_lun_with(64, |c| c.thin_provisioning = false);
    let r = inq(&thick, true, 0xB2, 255);
    assert_eq!(good(&r)[5], 0);
    let r = inq(&thick, true, 0xB0, 255);
    assert_eq!(&good(&r)[20..28], &[0; 8]);
}

#[test]
fn read_capacity() {
    let (_, lun) = mem_lun(1000);
    let r = run(&lun, &[READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(good(&r), &[0, 0, 0x03, 0xE7, 0, 0, 2, 0]);
    assert_sense(
        &run(&lun, &[READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
        INVALID_FIELD_IN_CDB,
    );
    good(&run(&lun, &[READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 1, 0]));
    let mut c16 = [0u8; 16];
    c16[0] = SERVICE_ACTION_IN_16;
    c16[1] = SA_READ_CAPACITY_16;
    c16[13] = 32;
    let r = run(&lun, &c16);
    let d = good(&r);
    assert_eq!(d.len(), 32);
    assert_eq!(u64::from_be_bytes(d[0..8].try_into().unwrap()), 999);
    assert_eq!(&d[8..12], &[0, 0, 2, 0]);
    assert_eq!(d[14] & 0xC0, 0xC0);
    // The physical block exponent, lowest aligned LBA 0.
    assert_eq!(
        (d[13], d[14] & 0x3F, d[15]),
        (crate::iscsi::scsi::capacity::LBPPB_EXPONENT, 0, 0)
    );
    c16[13] = 12;
    assert_eq!(good(&run(&lun, &c16)).len(), 12);
    c16[1] = 0x1F;
    assert_sense(&run(&lun, &c16), INVALID_FIELD_IN_CDB);
    let (_, thick) = mem_lun_with(8, |c| c.thin_provisioning = false);
    c16[1] = SA_READ_CAPACITY_16;
    c16[13] = 32;
    assert_eq!(good(&run(&thick, &c16))[14], 0);
}

#[test]
fn report_luns_and_missing_luns() {
    let mut set = LunSet::new();
    for id in [0u64, 3, 300] {
        let (_, l) = mem_lun_with(8, |c| c.id = id);
        set.insert(Arc::new(l));
    }
    assert_eq!(set.ids(), vec![0, 3, 300]);
    let n = nexus(1);
    let rl = [REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
    for lun in [0, 3, 7] {
        let r = set.execute(&n, lun, &rl, &[]);
        let d = good(&r);
        assert_eq!(&d[..8], &[0, 0, 0, 24, 0, 0, 0, 0]);
        assert_eq!(&d[8..16], &[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&d[16..24], &[0, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&d[24..32], &[0x41, 0x2C, 0, 0, 0, 0, 0, 0]);
    }
    assert_eq!(
        LunSet::decode_lun([0x41, 0x2C, 0, 0, 0, 0, 0, 0]),
        Some(300)
    );
    assert_eq!(LunSet::decode_lun(LunSet::encode_lun(3)), Some(3));
    assert_eq!(LunSet::decode_lun([0x80, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(LunSet::decode_lun([0, 1, 0, 0, 0, 0, 0, 1]), None);
    // Allocation length below 16 and bad SELECT REPORT.
    let mut short = rl;
    short[9] = 15;
    short[8] = 0;
    assert_sense(&set.execute(&n, 0, &short, &[]), INVALID_FIELD_IN_CDB);
    let mut sel = rl;
    sel[2] = 0x05;
    assert_sense(&set.execute(&n, 0, &sel, &[]), INVALID_FIELD_IN_CDB);
    sel[2] = 0x01;
    assert_eq!(good(&set.execute(&n, 0, &sel, &[]))[..4], [0, 0, 0, 0]);
    // A LUN that does not exist.
    let r = set.execute(&n, 9, &[INQUIRY, 0, 0, 0, 36, 0], &[]);
    assert_eq!(good(&r)[0], 0x7F);
    assert_sense(
        &set.execute(&n, 9, &cdb10(READ_10, 0, 0, 1), &[]),
        LUN_NOT_SUPPORTED,
    );
    assert_sense(
        &set.execute(&n, 9, &[TEST_UNIT_READY, 0, 0, 0, 0, 0], &[]),
        LUN_NOT_SUPPORTED,
    );
    let r = set.execute(&n, 9, &[REQUEST_SENSE, 0, 0, 0, 18, 0], &[]);
    assert_eq!(good(&r)[12], 0x25);
    assert_eq!(set.transfer(9, &cdb10(WRITE_10, 0, 0, 1)).data_out, 0);
    assert_eq!(set.transfer(0, &cdb10(WRITE_10, 0, 0, 1)).data_out, 512);
    assert_eq!(set.transfer(9, &rl).data_in, 256);
    assert!(set.reset(0, None));
    assert!(!set.reset(9, Some(&n)));
    set.reset_all(Some(&n));
    set.nexus_lost(&n);
    assert!(set.get(3).is_some());
    // A single LUN answers REPORT LUNS with itself.
    let (_, l) = mem_lun_with(8, |c| c.id = 5);
    assert_eq!(&good(&run(&l, &rl))[8..10], &[0, 5]);
}

fn rsoc(options: u8, op: u8, sa: u16, alloc: u32) -> Vec<u8> {
    let mut c = vec![MAINTENANCE_IN, SA_REPORT_OPCODES, options, op];
    c.extend_from_slice(&sa.to_be_bytes());
    c.extend_from_slice(&alloc.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

#[test]
fn report_supported_opcodes() {
    let (_, lun) = mem_lun(64);
    let r = run(&lun, &rsoc(0, 0, 0, 65535));
    let d = good(&r);
    let len = u32::from_be_bytes(d[0..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, d.len());
    assert_eq!(len, SUPPORTED.len() * 8);
    for (i, e) in d[4..].chunks(8).zip(SUPPORTED) {
        assert_eq!(i[0], e.op);
        assert_eq!(i[5] & 1, u8::from(e.sa.is_some()));
        let cdb_len = usize::from(u16::from_be_bytes([i[6], i[7]]));
        let group_len = match e.op >> 5 {
            0 => 6,
            1 | 2 => 10,
            4 => 16,
            5 => 12,
            _ => unreachable!(),
        };
        assert_eq!(cdb_len, group_len, "opcode {:#x}", e.op);
    }
    // With timeouts descriptors.
    let r = run(&lun, &rsoc(0x80, 0, 0, 65535));
    let d = good(&r);
    assert_eq!(d.len(), 4 + SUPPORTED.len() * 20);
    assert_eq!(d[4 + 5] & 0x02, 0x02);
    // One command.
    let r = run(&lun, &rsoc(1, READ_10, 0, 512));
    let d = good(&r);
    assert_eq!(&d[..4], &[0, 3, 0, 10]);
    assert_eq!(d[4], READ_10);
    assert_eq!(d.len(), 14);
    let r = run(&lun, &rsoc(0x81, READ_16, 0, 512));
    assert_eq!(good(&r).len(), 4 + 16 + 12);
    // Unsupported opcode: SUPPORT = 001b.
    let r = run(&lun, &rsoc(1, 0x04, 0, 512));
    assert_eq!(good(&r), &[0, 1, 0, 0]);
    // Opcode with service actions needs option 2.
    assert_sense(&run(&lun, &rsoc(1, PR_IN, 0, 512)), INVALID_FIELD_IN_CDB);
    let r = run(&lun, &rsoc(2, PR_IN, 1, 512));
    assert_eq!(&good(&r)[..4], &[0, 3, 0, 10]);
    let r = run(&lun, &rsoc(2, SERVICE_ACTION_IN_16, 0x10, 512));
    assert_eq!(good(&r)[5], 0x1F);
    assert_eq!(good(&run(&lun, &rsoc(2, PR_IN, 9, 512))), &[0, 1, 0, 0]);
    assert_sense(&run(&lun, &rsoc(2, READ_10, 0, 512)), INVALID_FIELD_IN_CDB);
    good(&run(&lun, &rsoc(3, READ_10, 0, 512)));
    good(&run(&lun, &rsoc(3, PR_OUT, 3, 512)));
    assert_sense(&run(&lun, &rsoc(5, READ_10, 0, 512)), INVALID_FIELD_IN_CDB);
    // Other MAINTENANCE IN service actions are not supported.
    let mut c = rsoc(0, 0, 0, 512);
    c[1] = 0x0B;
    assert_sense(&run(&lun, &c), INVALID_FIELD_IN_CDB);
    // Every listed command is dispatched (never INVALID COMMAND OPERATION CODE).
    for e in SUPPORTED {
        let mut c = [0u8; 16];
        c[0] = e.op;
        if let Some(sa) = e.sa {
            c[1] = sa as u8;
        }
        let r = lun.execute(&nexus(2), &c, &[]);
        if let Some(s) = r.sense {
            assert_ne!((s.asc, s.ascq), (0x20, 0), "opcode {:#x}", e.op);
        }
    }
    // UNMAP is not listed on a thick LUN.
    let (_, thick) = mem_lun_with(8, |c| c.thin_provisioning = false);
    assert_eq!(good(&run(&thick, &rsoc(1, UNMAP, 0, 64))), &[0, 1, 0, 0]);
}

#[test]
fn report_target_port_groups() {
    let (_, lun) = mem_lun(64);
    let rtpg = |fmt: u8, alloc: u32| {
        let a = alloc.to_be_bytes();
        let c = [
            MAINTENANCE_IN,
            (fmt << 5) | SA_REPORT_TPGS,
            0,
            0,
            0,
            0,
            a[0],
            a[1],
            a[2],
            a[3],
            0,
            0,
        ];
        lun.execute(&ItNexus::new("iqn.x,i,0x01", 3), &c, &[])
    };
    let r = rtpg(0, 255);
    assert_eq!(
        good(&r),
        &[0, 0, 0, 12, 0x00, 0x01, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3]
    );
    let r = rtpg(1, 255);
    let d = good(&r);
    assert_eq!(&d[..8], &[0, 0, 0, 16, 0x10, 0, 0, 0]);
    assert_eq!(d.len(), 20);
    assert_eq!(good(&rtpg(0, 4)), &[0, 0, 0, 12]);
    assert_sense(&rtpg(2, 255), INVALID_FIELD_IN_CDB);
    // Port 0 is reported as 1.
    let c = [MAINTENANCE_IN, SA_REPORT_TPGS, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
    let r = lun.execute(&ItNexus::new("iqn.x", 0), &c, &[]);
    assert_eq!(&good(&r)[14..16], &[0, 1]);
}
