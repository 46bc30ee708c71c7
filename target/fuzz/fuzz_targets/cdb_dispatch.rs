//! SCSI CDB dispatch: a sequence of commands from a few I_T nexuses against a LUN set with a
//! thin, removable LUN over memory. Never panics; sense data is present exactly on CHECK
//! CONDITION; Data-In never exceeds what `transfer` predicted.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pxeroot_target::iscsi::backstore::MemBackstore;
use pxeroot_target::iscsi::scsi::{ItNexus, Lun, LunConfig, LunSet, ScsiStatus};

fuzz_target!(|data: &[u8]| {
    let Ok(store) = MemBackstore::new(128) else {
        return;
    };
    let mut cfg = LunConfig::new(0, "iqn.2026-11.org.example:fuzz", "FUZZ0001");
    cfg.removable = true;
    let mut set = LunSet::new();
    set.insert(Arc::new(Lun::new(cfg, Arc::new(store))));
    let nexuses: Vec<ItNexus> = (0..3u8)
        .map(|i| ItNexus::iscsi("iqn.2026-11.org.example:client", [0x40, 0, 0, 0, 0, i], 1))
        .collect();
    // Each command: [nexus+lun][cdb length][cdb][data length][data].
    let mut rest = data;
    while let [sel, cdb_len, tail @ ..] = rest {
        let cdb_len = usize::from(*cdb_len % 17).min(tail.len());
        let (cdb, tail) = tail.split_at(cdb_len);
        let Some((&dlen, tail)) = tail.split_first() else {
            break;
        };
        let dlen = (usize::from(dlen) * 8).min(tail.len());
        let (dout, tail) = tail.split_at(dlen);
        rest = tail;
        let nexus = &nexuses[usize::from(sel % 3)];
        let lun = u64::from(sel >> 7);
        match sel & 0x0C {
            0x0C => {
                set.reset(lun, Some(nexus));
            }
            0x08 if sel & 0x10 != 0 => set.nexus_lost(nexus),
            _ => {}
        }
        let t = set.transfer(lun, cdb);
        let r = set.execute(nexus, lun, cdb, dout);
        assert_eq!(r.sense.is_some(), r.status == ScsiStatus::CheckCondition);
        assert!(r.data_in.len() <= t.data_in as usize);
        assert!(r.status == ScsiStatus::Good || r.data_in.is_empty());
    }
});
