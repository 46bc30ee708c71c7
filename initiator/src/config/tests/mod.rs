//! Tests of the configuration merge: `sources` reads the files and the iBFT, `plan` checks
//! precedence, interface and addressing choice, errors, and that no secret reaches the output.

mod plan;
mod sources;

use std::net::{IpAddr, Ipv4Addr};

use pxeroot_proto::chap::Secret;
use pxeroot_proto::root_path::Server;
use pxeroot_proto::Lun;

use super::ibft::{IbftNic, IbftTarget};
use super::*;
use crate::cmdline::parse;

pub(super) const SECRET: &str = "S3cr3tPassw0rd";
pub(super) const SECRET2: &str = "0therS3cretXY";
pub(super) const SECRET3: &str = "Ibft5ecretValue";
pub(super) const SECRET4: &str = "Dhcp5ecretValue";

pub(super) fn v4(a: u8, b: u8, c: u8, d: u8) -> Server {
    Server::Ipv4(Ipv4Addr::new(a, b, c, d))
}

pub(super) fn portal(a: Server, port: u16) -> Portal {
    Portal { address: a, port }
}

pub(super) fn run(
    line: &str,
    file: Option<&str>,
    name: Option<&str>,
    ibft: Option<&Ibft>,
    dhcp: Option<&DhcpInfo>,
) -> Result<Plan, PlanError> {
    let b = parse(line).unwrap();
    resolve(&Inputs {
        cmdline: &b,
        iscsi_initramfs: file,
        initiatorname: name,
        ibft,
        dhcp,
    })
}

pub(super) fn plan(line: &str) -> Plan {
    run(line, None, None, None, None).unwrap()
}

pub(super) const DEBIAN_FILE: &str = r#"
# /etc/iscsi.initramfs, as Debian's template leaves it
ISCSI_INITIATOR=iqn.2026-11.org.example:from-file
ISCSI_TARGET_NAME="iqn.2026-11.org.example:disk"
export ISCSI_TARGET_IP='192.0.2.1 192.0.2.2'
ISCSI_TARGET_PORT=3261   # comment
ISCSI_TARGET_GROUP=1
ISCSI_USERNAME=alice
ISCSI_PASSWORD="S3cr3t\"Passw0rd"
ISCSI_IN_USERNAME=
ISCSI_IN_PASSWORD=
OTHER_VAR=$HOME
if true; then echo; fi
"#;

pub(super) fn sample_ibft() -> Ibft {
    Ibft {
        initiator_name: Some("iqn.2010-04.org.ipxe:ibft".into()),
        nics: vec![IbftNic {
            index: 0,
            flags: 3,
            mac: Some(Mac([2, 0, 0, 0, 0, 1])),
            address: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))),
            prefix_len: Some(24),
            origin: Some(1),
            ..IbftNic::default()
        }],
        targets: vec![
            IbftTarget {
                index: 0,
                flags: 3,
                address: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))),
                port: Some(3260),
                lun: Lun::from_number(3).unwrap(),
                target_name: Some("iqn.2026-11.org.example:ibft".into()),
                nic_assoc: Some(0),
                chap_name: Some("ibftuser".into()),
                chap_secret: Some(Secret::new(SECRET3)),
                ..IbftTarget::default()
            },
            IbftTarget {
                index: 1,
                flags: 3,
                address: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2))),
                port: None,
                lun: Lun::from_number(3).unwrap(),
                target_name: Some("iqn.2026-11.org.example:ibft".into()),
                ..IbftTarget::default()
            },
        ],
    }
}

pub(super) fn sample_dhcp() -> DhcpInfo {
    DhcpInfo {
        root_path: Some("iscsi:203.0.113.9::3262:a:iqn.2026-11.org.example:dhcp".into()),
        initiator_name: Some("iqn.2026-11.org.example:dhcp-client".into()),
        username: Some("dhcpuser".into()),
        password: Some(Secret::new(SECRET4)),
        in_username: None,
        in_password: None,
    }
}
