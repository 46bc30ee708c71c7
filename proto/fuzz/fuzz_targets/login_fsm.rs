//! Sequences of arbitrary PDUs fed to the target and initiator login state machines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxeroot_proto::bhs::Isid;
use pxeroot_proto::chap::{ChapAlgorithm, Credentials, Random};
use pxeroot_proto::login::{
    Admission, InitiatorAuth, InitiatorConfig, InitiatorLogin, LoginContext, LoginPolicy,
    TargetAuth, TargetConfig, TargetLogin,
};
use pxeroot_proto::negotiate::LocalParams;
use pxeroot_proto::pdu::{LoginStatus, Pdu};
use pxeroot_proto::SerialNumber;

struct Counter(u8);

impl Random for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
}

struct Policy(bool);

impl LoginPolicy for Policy {
    fn admit(&self, _ctx: &LoginContext<'_>) -> Result<Admission, LoginStatus> {
        let auth = if self.0 {
            TargetAuth::Chap {
                expected: Credentials::new("i", *b"initiator-secret"),
                mutual: Some(Credentials::new("t", *b"target-secret-1")),
            }
        } else {
            TargetAuth::None
        };
        Ok(Admission { auth, tsih: 1, target_alias: None, target_portal_group_tag: 1 })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let chap = flags & 1 != 0;
    let mut target = TargetLogin::new(TargetConfig {
        params: LocalParams::default(),
        chap_algorithms: ChapAlgorithm::ALL.to_vec(),
        stat_sn: SerialNumber(0),
        cmd_window: 8,
        policy: Box::new(Policy(chap)),
    });
    let auth = if chap {
        InitiatorAuth::Chap {
            algorithms: ChapAlgorithm::ALL.to_vec(),
            creds: Credentials::new("i", *b"initiator-secret"),
            mutual: Some(Credentials::new("t", *b"target-secret-1")),
        }
    } else {
        InitiatorAuth::None
    };
    let Ok(mut initiator) = InitiatorLogin::new(InitiatorConfig {
        initiator_name: "iqn.2026-11.org.example:i".into(),
        initiator_alias: None,
        target_name: Some("iqn.2026-11.org.example:t".into()),
        isid: Isid::default(),
        tsih: 0,
        cid: 0,
        itt: 1,
        cmd_sn: SerialNumber(0),
        auth,
        params: LocalParams::default(),
    }) else {
        return;
    };
    let mut rng = Counter(0);
    // Each chunk: 48-byte BHS, one length byte, then that many data bytes.
    while rest.len() > 48 {
        let (bhs, tail) = rest.split_at(48);
        let Some((&len, tail)) = tail.split_first() else { return };
        let len = usize::from(len).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let mut bhs = bhs.to_vec();
        bhs[5..8].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        if let Ok(pdu) = Pdu::parse(&bhs, payload) {
            let _ = target.handle_pdu(&pdu, &mut rng);
            let _ = initiator.handle_pdu(&pdu, &mut rng);
        }
        while target.poll_transmit().is_some() {}
        while initiator.poll_transmit().is_some() {}
    }
});
