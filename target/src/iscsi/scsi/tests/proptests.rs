//! execute() never panics, whatever the CDB and Data-Out.

use super::*;
use crate::iscsi::scsi::LunSet;
use proptest::prelude::*;

/// Every opcode the dispatcher knows.
const OPCODES: [u8; 47] = [
    0x83, 0x84, 0x9C, 0x00, 0x03, 0x08, 0x0A, 0x12, 0x15, 0x16, 0x17, 0x1A, 0x1B, 0x1E, 0x25, 0x28,
    0x2A, 0x2E, 0x2F, 0x34, 0x35, 0x37, 0x41, 0x42, 0x55, 0x5A, 0x5E, 0x5F, 0x88, 0x89, 0x8A, 0x8B,
    0x8E, 0x8F, 0x90, 0x91, 0x93, 0x9E, 0xA0, 0xA3, 0xA8, 0xAA, 0xAE, 0xAF, 0xB7, 0x04, 0xFF,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_cdbs_never_panic(
        cdb in proptest::collection::vec(any::<u8>(), 0..=16),
        data in proptest::collection::vec(any::<u8>(), 0..1100),
        nx in 0u8..3,
    ) {
        let (_, lun) = mem_lun(64);
        let r = lun.execute(&nexus(nx), &cdb, &data);
        prop_assert_eq!(r.sense.is_some(), r.status == ScsiStatus::CheckCondition);
        let t = lun.transfer(&cdb);
        prop_assert!(r.data_in.len() <= t.data_in as usize);
        prop_assert!(r.status == ScsiStatus::Good || r.data_in.is_empty());
        let mut set = LunSet::new();
        set.insert(Arc::new(lun));
        let _ = set.execute(&nexus(nx), u64::from(nx), &cdb, &data);
        let _ = set.transfer(u64::from(nx), &cdb);
    }

    #[test]
    fn interesting_opcodes_never_panic(
        op in prop::sample::select(OPCODES.to_vec()),
        rest in proptest::collection::vec(any::<u8>(), 15),
        small in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..2100),
    ) {
        let (_, lun) = mem_lun(64);
        let mut cdb = vec![op];
        cdb.extend(rest);
        if small {
            // Keep LBAs and lengths small so the command gets past the range checks.
            for b in cdb.iter_mut().skip(2).take(12) {
                *b &= 0x03;
            }
        }
        let r = lun.execute(&nexus(1), &cdb, &data);
        prop_assert_eq!(r.sense.is_some(), r.status == ScsiStatus::CheckCondition);
        prop_assert!(r.data_in.len() <= lun.transfer(&cdb).data_in as usize);
        let _ = lun.execute(&nexus(2), &cdb, &data);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn command_sequences_never_panic(
        cmds in proptest::collection::vec(
            (0u8..3, prop::sample::select(OPCODES.to_vec()),
             proptest::collection::vec(0u8..4, 15),
             proptest::collection::vec(any::<u8>(), 0..64)),
            1..24,
        ),
        resets in proptest::collection::vec(any::<bool>(), 24),
    ) {
        let (_, lun) = mem_lun_with(64, |c| c.removable = true);
        for (i, (nx, op, rest, mut data)) in cmds.into_iter().enumerate() {
            let mut cdb = vec![op];
            cdb.extend(rest);
            // PR OUT wants a 24-byte list; give it one so the state machine moves.
            if op == 0x5F {
                cdb[5..9].copy_from_slice(&[0, 0, 0, 24]);
                data.resize(24, 0);
                data[20] = 0;
            }
            let r = lun.execute(&nexus(nx), &cdb, &data);
            prop_assert_eq!(r.sense.is_some(), r.status == ScsiStatus::CheckCondition);
            prop_assert!(r.data_in.len() <= lun.transfer(&cdb).data_in as usize);
            if resets[i] && i % 5 == 0 {
                lun.reset(Some(&nexus(nx)));
            }
            if resets[i] && i % 7 == 0 {
                lun.nexus_lost(&nexus(nx));
            }
        }
    }
}
