//! `/etc/iscsi.initramfs`, `/etc/initiatorname.iscsi` and the iBFT reader.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use pxeroot_proto::chap::Secret;
use pxeroot_proto::Lun;

use super::*;

#[test]
fn debian_file() {
    let (a, w) = files::parse_iscsi_initramfs(DEBIAN_FILE).unwrap();
    assert_eq!(
        a.initiator.as_deref(),
        Some("iqn.2026-11.org.example:from-file")
    );
    assert_eq!(
        a.target_name.as_deref(),
        Some("iqn.2026-11.org.example:disk")
    );
    assert_eq!(a.target_ips, Some(vec![v4(192, 0, 2, 1), v4(192, 0, 2, 2)]));
    assert_eq!(a.target_port, Some(3261));
    assert_eq!(a.target_group, Some(1));
    assert_eq!(a.username.as_deref(), Some("alice"));
    assert_eq!(a.password, Some(Secret::new("S3cr3t\"Passw0rd")));
    assert_eq!(a.in_username, None);
    assert_eq!(w.len(), 1, "{w:?}");
    let (a, _) = files::parse_iscsi_initramfs("ISCSI_AUTO=true\n").unwrap();
    assert_eq!(a.use_ibft, Some(true));
    let (a, _) = files::parse_iscsi_initramfs("ISCSI_PASSWORD='it''s'\\ x\n").unwrap();
    assert_eq!(a.password, Some(Secret::new("its x")));
}

#[test]
fn debian_file_errors() {
    #[rustfmt::skip]
    let cases: &[(&str, usize, &str)] = &[
        ("\nISCSI_TARGET_PORT=http\n", 2, "ISCSI_TARGET_PORT: \"http\" is not a port number"),
        ("ISCSI_PASSWORD=\"S3cr3tPassw0rd\n", 1, "ISCSI_PASSWORD: unterminated double quote"),
        ("ISCSI_PASSWORD='S3cr3tPassw0rd\n", 1, "ISCSI_PASSWORD: unterminated single quote"),
        ("ISCSI_PASSWORD=S3cr3t$Passw0rd\n", 1, "ISCSI_PASSWORD: variable or command expansion"),
        ("ISCSI_PASSWORD=S3cr3t Passw0rd\n", 1, "ISCSI_PASSWORD: more than one word"),
        ("ISCSI_TARGET_NAME=\"iqn.a b\"\n", 1, "ISCSI_TARGET_NAME: iSCSI name contains white space"),
        ("ISCSI_TARGET_IP=not/ip\n", 1, "ISCSI_TARGET_IP: \"not/ip\" is not an IP"),
    ];
    for (text, line, msg) in cases {
        let e = files::parse_iscsi_initramfs(text).unwrap_err();
        assert_eq!(e.line, *line, "{text:?}");
        let t = e.to_string();
        assert!(t.starts_with("/etc/iscsi.initramfs line "), "{t}");
        assert!(t.contains(msg), "{text:?}: {t}");
        assert!(!t.contains("S3cr3t") && !t.contains("Passw0rd"), "{t}");
    }
}

#[test]
fn initiatorname_file() {
    let text = "## DO NOT EDIT\nInitiatorName=iqn.1993-08.org.debian:01:abcdef\n";
    assert_eq!(
        files::parse_initiatorname(text).unwrap().as_deref(),
        Some("iqn.1993-08.org.debian:01:abcdef")
    );
    assert_eq!(files::parse_initiatorname("# nothing\n").unwrap(), None);
    let e = files::parse_initiatorname("\nInitiatorName=\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("InitiatorName"));
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("pxeroot-init-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Path, name: &str, value: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
}

#[test]
fn ibft_reader_on_a_fake_tree() {
    let t = TempDir::new("ibft");
    let root = t.0.join("ibft");
    write(
        &root.join("initiator"),
        "initiator-name",
        "iqn.2010-04.org.ipxe:client",
    );
    write(&root.join("initiator"), "flags", "3");
    let e0 = root.join("ethernet0");
    for (k, v) in [
        ("index", "0"),
        ("flags", "3"),
        ("mac", "52:54:00:12:34:56"),
        ("ip-addr", "192.0.2.50"),
        ("prefix-len", "24"),
        ("gateway", "192.0.2.254"),
        ("primary-dns", "192.0.2.53"),
        ("secondary-dns", "0.0.0.0"),
        ("origin", "1"),
        ("hostname", "client1"),
        ("vlan", "0"),
    ] {
        write(&e0, k, v);
    }
    std::fs::create_dir_all(e0.join("device/net/enp1s0")).unwrap();
    let t0 = root.join("target0");
    for (k, v) in [
        ("index", "0"),
        ("flags", "3"),
        ("ip-addr", "192.0.2.1"),
        ("port", "3260"),
        ("lun", "0005000000000000"),
        ("nic-assoc", "0"),
        ("target-name", "iqn.2026-11.org.example:disk"),
        ("chap-type", "2"),
        ("chap-name", "alice"),
        ("chap-secret", SECRET3),
    ] {
        write(&t0, k, v);
    }
    let t1 = root.join("target1");
    for (k, v) in [
        ("index", "1"),
        ("flags", "0"),
        ("ip-addr", "0.0.0.0"),
        ("lun", "0"),
    ] {
        write(&t1, k, v);
    }
    write(&root.join("acpi_header"), "signature", "iBFT");

    let ibft = ibft::read_dir(&root).unwrap().unwrap();
    assert_eq!(
        ibft.initiator_name.as_deref(),
        Some("iqn.2010-04.org.ipxe:client")
    );
    let [nic] = ibft.nics.as_slice() else {
        panic!("{:?}", ibft.nics)
    };
    assert_eq!(nic.mac, Some(Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56])));
    assert_eq!(nic.ifname.as_deref(), Some("enp1s0"));
    assert_eq!(nic.address, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50))));
    assert_eq!(nic.prefix_len, Some(24));
    assert_eq!(nic.dns, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))]);
    assert_eq!(nic.vlan, None);
    assert!(!nic.uses_dhcp());
    assert_eq!(ibft.targets.len(), 2);
    let boot = ibft.boot_targets();
    assert_eq!(boot.len(), 1);
    assert_eq!(boot[0].lun, Lun::from_number(5).unwrap());
    assert_eq!(boot[0].chap_secret, Some(Secret::new(SECRET3)));
    assert_eq!(ibft.targets[1].address, None);
    assert!(!format!("{ibft:?}").contains(SECRET3));

    // No table: None. A malformed value: an error naming the file.
    assert_eq!(ibft::read_dir(&t.0.join("absent")).unwrap(), None);
    write(&t0, "port", "http");
    let e = ibft::read_dir(&root).unwrap_err();
    assert!(e.to_string().contains("target0/port"), "{e}");
}

#[test]
fn ibft_luns() {
    #[rustfmt::skip]
    let cases: &[(&str, Option<[u8; 8]>)] = &[
        ("0000000000000000", Some([0; 8])),
        ("0001000700000000", Some([0, 1, 0, 7, 0, 0, 0, 0])),
        ("00000000", Some([0; 8])),          // unpadded %x, LUN 0
        ("05000000", Some([0, 5, 0, 0, 0, 0, 0, 0])),  // unpadded, LUN 5
        ("0a000000", Some([0, 10, 0, 0, 0, 0, 0, 0])),
        ("0ff000000", Some([0, 255, 0, 0, 0, 0, 0, 0])),
        ("7", Some([0, 7, 0, 0, 0, 0, 0, 0])),   // decimal (offload HBAs)
        ("xyz", None),
        ("123456789012345678", None),
    ];
    for (s, want) in cases {
        assert_eq!(ibft::parse_lun(s).map(|l| l.0), *want, "{s}");
    }
}

proptest::proptest! {
    #[test]
    fn file_parsers_never_panic(s in "\\PC{0,200}") {
        let _ = files::parse_iscsi_initramfs(&s);
        let _ = files::parse_iscsi_initramfs(&format!("ISCSI_PASSWORD={s}"));
        let _ = files::parse_initiatorname(&format!("InitiatorName={s}"));
        let _ = ibft::parse_lun(&s);
    }
}
