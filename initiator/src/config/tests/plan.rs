//! Precedence, interface and addressing choice, plan errors and redaction.

use pxeroot_proto::chap::Secret;
use pxeroot_proto::Lun;

use super::*;
use crate::plan::{Auth, REDACTED};

#[test]
fn defaults() {
    let p = plan("iscsi_target_name=iqn.x:y iscsi_target_ip=192.0.2.1");
    assert_eq!(p.interface, Interface::FirstWithCarrier);
    assert_eq!(p.addressing, Addressing::Dhcp);
    assert_eq!(p.portals, vec![portal(v4(192, 0, 2, 1), 3260)]);
    assert_eq!(p.lun, Lun::ZERO);
    assert_eq!(p.auth, Auth::None);
    assert_eq!(p.retry.budget_secs, 120);
    assert_eq!(p.retry.max_attempts_per_portal, None);
    assert_eq!(p.sources.lun, Source::Default);
    assert_eq!(
        p.pending,
        vec!["initiator name (DHCP option 203, else made up from the MAC)"]
    );
}

#[test]
fn precedence_layers() {
    let ibft = sample_ibft();
    let dhcp = sample_dhcp();
    let line_auto = "iscsi_auto";
    let name = Some("InitiatorName=iqn.1993-08.org.debian:01:file\n");

    // file only
    let p = run("", Some(DEBIAN_FILE), name, None, None).unwrap();
    assert_eq!(
        p.target_name.as_deref(),
        Some("iqn.2026-11.org.example:disk")
    );
    assert_eq!(
        p.portals,
        vec![
            portal(v4(192, 0, 2, 1), 3261),
            portal(v4(192, 0, 2, 2), 3261)
        ]
    );
    // ISCSI_INITIATOR beats /etc/initiatorname.iscsi
    assert_eq!(
        p.initiator_name.as_deref(),
        Some("iqn.2026-11.org.example:from-file")
    );
    assert_eq!(p.sources.target_name, Some(Source::File));
    assert!(matches!(&p.auth, Auth::Chap { user, .. } if user == "alice"));
    let p = run(
        "",
        Some("ISCSI_TARGET_NAME=iqn.x:y\nISCSI_TARGET_IP=192.0.2.1\n"),
        name,
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        p.initiator_name.as_deref(),
        Some("iqn.1993-08.org.debian:01:file")
    );

    // iBFT over file (only when asked for)
    let p = run("", Some(DEBIAN_FILE), name, Some(&ibft), None).unwrap();
    assert_eq!(p.sources.target_name, Some(Source::File));
    let p = run(line_auto, Some(DEBIAN_FILE), name, Some(&ibft), None).unwrap();
    assert_eq!(
        p.target_name.as_deref(),
        Some("iqn.2026-11.org.example:ibft")
    );
    assert_eq!(
        p.portals,
        vec![
            portal(v4(198, 51, 100, 1), 3260),
            portal(v4(198, 51, 100, 2), 3260)
        ]
    );
    assert_eq!(p.lun, Lun::from_number(3).unwrap());
    assert_eq!(
        p.initiator_name.as_deref(),
        Some("iqn.2010-04.org.ipxe:ibft")
    );
    assert!(
        matches!(&p.auth, Auth::Chap { user, secret } if user == "ibftuser" && *secret == Secret::new(SECRET3))
    );
    assert_eq!(p.sources.auth, Some(Source::Ibft));
    // with no ip=, the iBFT NIC sets interface and static addressing
    assert_eq!(
        p.interface,
        Interface::Mac {
            mac: Mac([2, 0, 0, 0, 0, 1]),
            from: "iBFT"
        }
    );
    assert!(matches!(
        p.addressing,
        Addressing::Static { prefix_len: 24, .. }
    ));
    // ISCSI_AUTO in the file asks for it too
    let p = run("", Some("ISCSI_AUTO=true\n"), None, Some(&ibft), None).unwrap();
    assert_eq!(p.sources.target_name, Some(Source::Ibft));

    // DHCP over iBFT and file
    let p = run(line_auto, Some(DEBIAN_FILE), name, Some(&ibft), Some(&dhcp)).unwrap();
    assert_eq!(
        p.target_name.as_deref(),
        Some("iqn.2026-11.org.example:dhcp")
    );
    assert_eq!(p.portals, vec![portal(v4(203, 0, 113, 9), 3262)]);
    assert_eq!(p.lun, Lun::from_number(10).unwrap()); // RFC 4173 hex "a"
    assert_eq!(
        p.initiator_name.as_deref(),
        Some("iqn.2026-11.org.example:dhcp-client")
    );
    assert!(matches!(&p.auth, Auth::Chap { user, .. } if user == "dhcpuser"));
    assert!(p.pending.is_empty());

    // command line over everything
    let line = "iscsi_auto iscsi_initiator=iqn.c:init iscsi_username=cmduser iscsi_password=S3cr3tPassw0rd \
                root=iscsi:192.0.2.77::3263:4:iqn.2026-11.org.example:cmdline";
    let p = run(line, Some(DEBIAN_FILE), name, Some(&ibft), Some(&dhcp)).unwrap();
    assert_eq!(
        p.target_name.as_deref(),
        Some("iqn.2026-11.org.example:cmdline")
    );
    assert_eq!(p.portals, vec![portal(v4(192, 0, 2, 77), 3263)]);
    assert_eq!(p.lun, Lun::from_number(4).unwrap());
    assert_eq!(p.initiator_name.as_deref(), Some("iqn.c:init"));
    assert!(
        matches!(&p.auth, Auth::Chap { user, secret } if user == "cmduser" && *secret == Secret::new(SECRET))
    );
    assert_eq!(
        p.sources,
        Sources {
            target_name: Some(Source::Cmdline),
            portals: Some(Source::Cmdline),
            lun: Source::Cmdline,
            initiator_name: Some(Source::Cmdline),
            auth: Some(Source::Cmdline),
        }
    );
}

#[test]
fn values_merge_independently() {
    // The file names the target; the command line only re-ports it and adds the password.
    let p = run(
        "iscsi_target_port=3270 iscsi_password=S3cr3tPassw0rd",
        Some("ISCSI_TARGET_NAME=iqn.x:y\nISCSI_TARGET_IP=192.0.2.1\nISCSI_USERNAME=alice\n"),
        None,
        None,
        None,
    )
    .unwrap();
    assert_eq!(p.portals, vec![portal(v4(192, 0, 2, 1), 3270)]);
    assert!(matches!(&p.auth, Auth::Chap { user, .. } if user == "alice"));
    assert_eq!(p.sources.auth, Some(Source::Cmdline));
    // A command-line port re-ports DHCP's portal too.
    let p = run(
        "iscsi_target_port=3270",
        None,
        None,
        None,
        Some(&sample_dhcp()),
    )
    .unwrap();
    assert_eq!(p.portals, vec![portal(v4(203, 0, 113, 9), 3270)]);
}

#[test]
fn command_line_internal_precedence() {
    // root= beats netroot=, both beat iscsi_target_*.
    let p = plan("iscsi_target_name=iqn.a:0 iscsi_target_ip=192.0.2.9 netroot=iscsi:192.0.2.2::::iqn.a:net root=iscsi:192.0.2.1::::iqn.a:root");
    assert_eq!(p.target_name.as_deref(), Some("iqn.a:root"));
    assert_eq!(p.portals, vec![portal(v4(192, 0, 2, 1), 3260)]);
    let p = plan("iscsi_target_name=iqn.a:0 netroot=iscsi:192.0.2.2::::iqn.a:net");
    assert_eq!(p.target_name.as_deref(), Some("iqn.a:net"));
    // several netroot= to the same target are paths, tried in turn
    let p = plan("netroot=iscsi:192.0.2.1::::iqn.a:mp netroot=iscsi:192.0.2.2::3261::iqn.a:mp netroot=iscsi:192.0.2.1::::iqn.a:mp");
    assert_eq!(
        p.portals,
        vec![
            portal(v4(192, 0, 2, 1), 3260),
            portal(v4(192, 0, 2, 2), 3261)
        ]
    );
    // pxeroot.lun applies when no root spec names one
    assert_eq!(
        plan("iscsi_target_name=iqn.a:0 iscsi_target_ip=192.0.2.9 pxeroot.lun=2").lun,
        Lun::from_number(2).unwrap()
    );
    // rd.iscsi.param auth and retry
    let p = plan("root=iscsi:u:S3cr3tPassw0rd@192.0.2.1::::iqn.a:b rd.iscsi.param=node.session.auth.authmethod=None rd.iscsi.login_retry_max=2 rd.iscsi.param=node.session.initial_login_retry_max=7 pxeroot.timeout=30");
    assert_eq!(p.auth, Auth::None);
    assert_eq!(p.retry.max_attempts_per_portal, Some(7));
    assert_eq!(p.retry.budget_secs, 30);
    let p = plan("root=iscsi:192.0.2.1::::iqn.a:b rd.iscsi.param=node.session.auth.username=pu rd.iscsi.param=node.session.auth.password=S3cr3tPassw0rd rd.iscsi.param=node.startup=automatic");
    assert!(matches!(&p.auth, Auth::Chap { user, .. } if user == "pu"));
    assert_eq!(p.ignored_params, vec!["node.startup".to_owned()]);
}

#[test]
fn interface_and_addressing() {
    let base = "root=iscsi:192.0.2.1::::iqn.a:b";
    let p = plan(&format!("{base} BOOTIF=01-52-54-00-00-00-01 ip=eth1:dhcp"));
    assert_eq!(
        p.interface,
        Interface::Mac {
            mac: Mac([0x52, 0x54, 0, 0, 0, 1]),
            from: "BOOTIF"
        }
    );
    assert_eq!(
        p.initiator_name.as_deref(),
        Some("iqn.2026-11.org.pxeroot:525400000001")
    );
    assert_eq!(p.sources.initiator_name, Some(Source::Default));
    let p = plan(&format!("{base} ip=eth1:dhcp"));
    assert_eq!(
        p.interface,
        Interface::Name {
            name: "eth1".into(),
            from: "ip"
        }
    );
    let p = plan("root=iscsi:192.0.2.1::3260:default:eth2:0:iqn.a:b");
    assert_eq!(
        p.interface,
        Interface::Name {
            name: "eth2".into(),
            from: "netroot netdev"
        }
    );
    assert_eq!(p.iface_name.as_deref(), Some("default"));
    let p = plan(&format!(
        "{base} ip=192.0.2.10::192.0.2.254:255.255.255.0:c1:eth0:none:192.0.2.53 ip=eth9:dhcp"
    ));
    assert_eq!(
        p.addressing,
        Addressing::Static {
            address: "192.0.2.10".parse().unwrap(),
            prefix_len: 24,
            gateway: Some("192.0.2.254".parse().unwrap()),
            dns: vec!["192.0.2.53".parse().unwrap()],
            hostname: Some("c1".into()),
        }
    );
    assert!(p.warnings.iter().any(|w| w.contains("2 ip=")));
    assert_eq!(plan(&format!("{base} ip=off")).addressing, Addressing::None);
    assert_eq!(plan(&format!("{base} ip=eth0:dhcp:9000")).mtu, Some(9000));
    // Static addressing with DHCP-only data is complete without DHCP.
    let p = plan(&format!(
        "{base} ip=192.0.2.10:::24::eth0:none iscsi_initiator=iqn.a:i"
    ));
    assert!(p.pending.is_empty(), "{:?}", p.pending);
    // ip=ibft takes the NIC's settings from the iBFT without logging in to its targets.
    let ibft = sample_ibft();
    let p = run(&format!("{base} ip=ibft"), None, None, Some(&ibft), None).unwrap();
    assert!(matches!(p.addressing, Addressing::Static { .. }));
    assert_eq!(p.target_name.as_deref(), Some("iqn.a:b"));
}

/// (command line, iscsi.initramfs, iBFT, DHCP, words of the error)
type ErrCase<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a Ibft>,
    Option<&'a DhcpInfo>,
    &'a str,
);

#[test]
fn plan_errors() {
    let ibft_no_target = Ibft {
        targets: vec![],
        ..sample_ibft()
    };
    let no_root = DhcpInfo {
        root_path: Some("/srv/nfs/client".into()),
        ..DhcpInfo::default()
    };
    let bad_root = DhcpInfo {
        root_path: Some("iscsi:192.0.2.1:17:::iqn.x".into()),
        ..DhcpInfo::default()
    };
    #[rustfmt::skip]
    let cases: Vec<ErrCase<'_>> = vec![
        ("quiet", None, None, None, "no iSCSI root configured"),
        ("iscsi_auto", None, None, None, "asks for the iBFT"),
        ("ip=ibft root=iscsi:192.0.2.1::::iqn.a:b", None, None, None, "asks for the iBFT"),
        ("rd.iscsi.firmware", None, Some(&ibft_no_target), None, "no valid boot target"),
        ("netroot=dhcp", None, None, Some(&no_root), "root path \"/srv/nfs/client\" is not an iscsi: path"),
        ("netroot=dhcp", None, None, Some(&bad_root), "option 17"),
        ("netroot=dhcp ip=192.0.2.10:::24::eth0:none", None, None, None, "netroot=dhcp"),
        ("iscsi_target_ip=192.0.2.1 ip=192.0.2.10:::24::eth0:none", None, None, None, "no target name"),
        ("iscsi_target_name=iqn.a:b ip=192.0.2.10:::24::eth0:none", None, None, None, "no target address"),
        ("root=iscsi:::::iqn.a:b ip=192.0.2.10:::24::eth0:none", None, None, None, "discovery by name"),
        ("root=iscsi:192.0.2.1::::iqn.a:b root=iscsi:192.0.2.2::::iqn.a:c", None, None, None, "different targets"),
        ("root=iscsi:192.0.2.1::::iqn.a:b iscsi_username=u", None, None, None, "initiator CHAP user name is set (from the kernel command line)"),
        ("root=iscsi:192.0.2.1::::iqn.a:b", Some("ISCSI_PASSWORD=S3cr3tPassw0rd\n"), None, None, "initiator CHAP secret is set (from /etc/iscsi.initramfs)"),
        ("root=iscsi:192.0.2.1::::iqn.a:b iscsi_in_username=t iscsi_in_password=S3cr3tPassw0rd", None, None, None, "need the initiator's"),
        ("root=iscsi:u:S3cr3tPassw0rd:t:S3cr3tPassw0rd@192.0.2.1::::iqn.a:b", None, None, None, "same secret"),
        ("root=iscsi:192.0.2.1::::iqn.a:b", Some("ISCSI_TARGET_PORT=x\n"), None, None, "line 1: ISCSI_TARGET_PORT"),
    ];
    for (line, file, ibft, dhcp, msg) in cases {
        let e = run(line, file, None, ibft, dhcp).unwrap_err();
        let t = e.to_string();
        assert!(t.contains(msg), "{line:?}: {t:?} lacks {msg:?}");
        assert!(!t.contains("S3cr3t"), "{t}");
        assert_eq!(e.is_not_configured(), line == "quiet");
    }
}

#[test]
fn json_never_contains_a_secret() {
    let ibft = sample_ibft();
    let dhcp = DhcpInfo {
        in_username: Some("dhcptarget".into()),
        in_password: Some(Secret::new(SECRET2)),
        ..sample_dhcp()
    };
    let lines = [
        format!("root=iscsi:alice:{SECRET}:bob:{SECRET2}@192.0.2.1::::iqn.x:y BOOTIF=01-52-54-00-00-00-01"),
        format!("iscsi_target_name=iqn.x:y iscsi_target_ip=192.0.2.1 iscsi_username=a iscsi_password={SECRET}"),
        "iscsi_auto".to_owned(),
        "netroot=dhcp".to_owned(),
        format!("rd.iscsi.param=node.session.auth.password={SECRET} rd.iscsi.param=node.session.auth.username=x rd.iscsi.param=discovery.sendtargets.auth.password={SECRET} netroot=dhcp"),
    ];
    for line in &lines {
        let p = run(line, None, None, Some(&ibft), Some(&dhcp)).unwrap();
        let json = p.to_json().unwrap();
        let dbg = format!("{p:?}");
        for s in [SECRET, SECRET2, SECRET3, SECRET4] {
            assert!(!json.contains(s), "{line}: {json}");
            assert!(!dbg.contains(s), "{line}: {dbg}");
        }
        if !matches!(p.auth, Auth::None) {
            assert!(json.contains(REDACTED), "{json}");
        }
    }
    // The shape of the mutual case.
    let p = run(&lines[0], None, None, None, None).unwrap();
    let v: serde_json::Value = serde_json::from_str(&p.to_json().unwrap()).unwrap();
    assert_eq!(v["auth"]["method"], "mutual_chap");
    assert_eq!(v["auth"]["user"], "alice");
    assert_eq!(v["auth"]["secret"], REDACTED);
    assert_eq!(v["auth"]["target_user"], "bob");
    assert_eq!(v["auth"]["target_secret"], REDACTED);
    assert_eq!(v["portals"][0]["address"], "192.0.2.1");
    assert_eq!(v["portals"][0]["port"], 3260);
    assert_eq!(v["lun"]["rfc4173"], "0");
    assert_eq!(v["interface"]["by"], "mac");
    assert_eq!(v["interface"]["mac"], "52:54:00:00:00:01");
    assert_eq!(v["addressing"]["method"], "dhcp");
    assert_eq!(v["retry"]["budget_secs"], 120);
}

#[test]
fn short_secret_warns() {
    let p = plan("root=iscsi:u:short@192.0.2.1::::iqn.a:b");
    assert!(
        p.warnings.iter().any(|w| w.contains("5 bytes")),
        "{:?}",
        p.warnings
    );
    assert!(!p.to_json().unwrap().contains("short"));
}

#[test]
fn dhcp_root_path_in_dracut_form() {
    let dhcp = DhcpInfo {
        root_path: Some(format!(
            "iscsi:u:{SECRET}:t:{SECRET2}@192.0.2.1::3260:default:eth0:a:iqn.x:y"
        )),
        ..DhcpInfo::default()
    };
    let p = run("netroot=dhcp", None, None, None, Some(&dhcp)).unwrap();
    assert_eq!(p.target_name.as_deref(), Some("iqn.x:y"));
    assert_eq!(p.lun, Lun::from_number(10).unwrap());
    assert!(
        matches!(&p.auth, Auth::MutualChap { user, target_user, .. } if user == "u" && target_user == "t")
    );
    assert_eq!(p.sources.auth, Some(Source::Dhcp));
    // Malformed with credentials: the error quotes nothing.
    for rp in [
        format!("iscsi:u:{SECRET}@192.0.2.1:6:3260:0"),
        format!("iscsi:u:{SECRET}@192.0.2.1:tcp:3260:0:iqn.x"),
    ] {
        let dhcp = DhcpInfo {
            root_path: Some(rp.clone()),
            ..DhcpInfo::default()
        };
        let e = run("netroot=dhcp", None, None, None, Some(&dhcp)).unwrap_err();
        assert!(
            e.to_string().starts_with("DHCP option 17 root path: "),
            "{e}"
        );
        assert!(!e.to_string().contains(SECRET), "{rp}: {e}");
    }
    // Malformed without: proto's error, quoting the field.
    let dhcp = DhcpInfo {
        root_path: Some("iscsi:192.0.2.1::http:0:iqn.x".into()),
        ..DhcpInfo::default()
    };
    let e = run("netroot=dhcp", None, None, None, Some(&dhcp)).unwrap_err();
    assert!(e.to_string().contains("bad port \"http\""), "{e}");
}
