//! Table-driven tests for every command-line form, valid and malformed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

const SECRET: &str = "S3cr3tPassw0rd";
const SECRET2: &str = "0therS3cretXY";

fn v4(a: u8, b: u8, c: u8, d: u8) -> Server {
    Server::Ipv4(Ipv4Addr::new(a, b, c, d))
}

fn lun(n: u16) -> Lun {
    Lun::from_number(n).unwrap()
}

fn ok(line: &str) -> BootArgs {
    match parse(line) {
        Ok(b) => b,
        Err(e) => panic!("{line:?}: {e}"),
    }
}

type Split = &'static [(&'static str, Option<&'static str>)];

#[test]
fn split_like_the_kernel() {
    #[rustfmt::skip]
    let cases: &[(&str, Split)] = &[
        ("", &[]),
        ("  quiet  ro ", &[("quiet", None), ("ro", None)]),
        ("a=b c=d=e", &[("a", Some("b")), ("c", Some("d=e"))]),
        ("x=\"one two\" y", &[("x", Some("one two")), ("y", None)]),
        ("\"x=one two\" y", &[("x", Some("one two")), ("y", None)]),
        ("x=a\"b c\"d", &[("x", Some("a\"b c\"d"))]),
        ("x=\"unterminated y", &[("x", Some("unterminated y"))]),
        ("a\tb\nc", &[("a", None), ("b", None), ("c", None)]),
        ("a -- iscsi_target_name=x", &[("a", None)]),
        ("a= b", &[("a", Some("")), ("b", None)]),
    ];
    for (line, want) in cases {
        assert_eq!(split(line), want.to_vec(), "{line:?}");
    }
}

#[test]
fn debian_parameters() {
    let b = ok("iscsi_initiator=iqn.2026-11.org.example:client iscsi_target_name=iqn.2026-11.org.example:disk \
                iscsi_target_ip=\"192.0.2.1 192.0.2.2,[fd00::1]\" iscsi_target_port=3261 \
                iscsi_target_group=2 iscsi_username=alice iscsi_password=S3cr3tPassw0rd \
                iscsi_in_username=bob iscsi_in_password=0therS3cretXY iscsi_auto");
    let a = &b.iscsi;
    assert_eq!(
        a.initiator.as_deref(),
        Some("iqn.2026-11.org.example:client")
    );
    assert_eq!(
        a.target_name.as_deref(),
        Some("iqn.2026-11.org.example:disk")
    );
    assert_eq!(
        a.target_ips,
        Some(vec![
            v4(192, 0, 2, 1),
            v4(192, 0, 2, 2),
            Server::Ipv6("fd00::1".parse().unwrap())
        ])
    );
    assert_eq!(a.target_port, Some(3261));
    assert_eq!(a.target_group, Some(2));
    assert_eq!(a.username.as_deref(), Some("alice"));
    assert_eq!(a.password, Some(Secret::new(SECRET)));
    assert_eq!(a.in_username.as_deref(), Some("bob"));
    assert_eq!(a.in_password, Some(Secret::new(SECRET2)));
    assert_eq!(a.use_ibft, Some(true));
    assert!(b.warnings.iter().any(|w| w.contains("/proc/cmdline")));
}

#[test]
fn dracut_parameters() {
    let b = ok("rd.iscsi.initiator=iqn.a:b rd.iscsi.target.name=iqn.t:x rd.iscsi.target.ip=192.0.2.9 \
                rd.iscsi.target.port=3262 rd.iscsi.target.group=7 rd.iscsi.username=u \
                rd.iscsi.password=S3cr3tPassw0rd rd.iscsi.in.username=t rd.iscsi.in.password=0therS3cretXY \
                rd.iscsi.firmware=1 rd.iscsi.login_retry_max=5 \
                rd.iscsi.param=node.session.initial_login_retry_max=4 \
                rd.iscsi.param=node.session.auth.authmethod=CHAP \
                rd.iscsi.param=node.session.auth.password=S3cr3tPassw0rd \
                rd.iscsi.param=node.conn[0].timeo.noop_out_interval=0 rd.iscsi.waitnet=0");
    let a = &b.iscsi;
    assert_eq!(a.initiator.as_deref(), Some("iqn.a:b"));
    assert_eq!(a.target_name.as_deref(), Some("iqn.t:x"));
    assert_eq!(a.target_ips, Some(vec![v4(192, 0, 2, 9)]));
    assert_eq!(a.target_port, Some(3262));
    assert_eq!(a.target_group, Some(7));
    assert_eq!(a.username.as_deref(), Some("u"));
    assert_eq!(a.in_username.as_deref(), Some("t"));
    assert_eq!(a.use_ibft, Some(true));
    assert_eq!(a.login_retry_max, Some(5));
    assert_eq!(
        a.params,
        vec![
            NodeParam::InitialLoginRetryMax(4),
            NodeParam::AuthMethodChap(true),
            NodeParam::Password(Secret::new(SECRET)),
            NodeParam::Ignored("node.conn[0].timeo.noop_out_interval".into()),
        ]
    );
    assert!(b.warnings.iter().any(|w| w.contains("rd.iscsi.waitnet")));
}

#[test]
fn aliases_last_one_wins() {
    let b = ok("iscsi_target_name=iqn.a:1 rd.iscsi.target.name=iqn.a:2");
    assert_eq!(b.iscsi.target_name.as_deref(), Some("iqn.a:2"));
    let b = ok("rd.iscsi.target.name=iqn.a:2 iscsi_target_name=iqn.a:1");
    assert_eq!(b.iscsi.target_name.as_deref(), Some("iqn.a:1"));
    let b = ok("iscsi_firmware rd.iscsi.firmware=0");
    assert_eq!(b.iscsi.use_ibft, Some(false));
}

/// (spec, chap user, mutual user, server, port, iface, netdev, lun, target)
type RootCase = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<Server>,
    u16,
    Option<&'static str>,
    Option<&'static str>,
    Lun,
    &'static str,
);

#[test]
fn iscsi_root_forms() {
    let v6 = Server::Ipv6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    #[rustfmt::skip]
    let cases: Vec<RootCase> = vec![
        // RFC 4173 / Debian
        ("iscsi:192.0.2.1::::iqn.2026-11.org.example:disk", None, None, Some(v4(192,0,2,1)), 3260, None, None, Lun::ZERO, "iqn.2026-11.org.example:disk"),
        ("iscsi:192.0.2.1:6:3261:1:iqn.x:y", None, None, Some(v4(192,0,2,1)), 3261, None, None, lun(1), "iqn.x:y"),
        ("ISCSI:san.example.org::::iqn.x:y:z", None, None, Some(Server::Name("san.example.org".into())), 3260, None, None, Lun::ZERO, "iqn.x:y:z"),
        // Debian credentials, one-way and mutual
        ("iscsi:alice:S3cr3tPassw0rd@192.0.2.1::3260:0:iqn.x:y", Some("alice"), None, Some(v4(192,0,2,1)), 3260, None, None, Lun::ZERO, "iqn.x:y"),
        ("iscsi:alice:S3cr3tPassw0rd:bob:0therS3cretXY@192.0.2.1::3260:0:iqn.x:y", Some("alice"), Some("bob"), Some(v4(192,0,2,1)), 3260, None, None, Lun::ZERO, "iqn.x:y"),
        // dracut: IPv6, iface and netdev, '@' in the target, empty credentials
        ("iscsi:[2001:db8::1]:6:3260:0:iqn.x:y", None, None, Some(v6.clone()), 3260, None, None, Lun::ZERO, "iqn.x:y"),
        ("iscsi:[2001:db8::1]::3260:default:eth0:2:iqn.x:y", None, None, Some(v6), 3260, Some("default"), Some("eth0"), lun(2), "iqn.x:y"),
        ("iscsi:@192.168.1.100::3260::iqn.2009-06.dracut:target0", None, None, Some(v4(192,168,1,100)), 3260, None, None, Lun::ZERO, "iqn.2009-06.dracut:target0"),
        ("iscsi:192.168.1.100::3260::iqn.2009-06.dracut:testdi@sk", None, None, Some(v4(192,168,1,100)), 3260, None, None, Lun::ZERO, "iqn.2009-06.dracut:testdi@sk"),
        ("iscsi:@192.168.1.100::3260::iqn.2009-06.dracut:a@b:c:d:e:f", None, None, Some(v4(192,168,1,100)), 3260, None, None, Lun::ZERO, "iqn.2009-06.dracut:a@b:c:d:e:f"),
        ("iscsi:u:S3cr3tPassw0rd@192.0.2.1::::eui.0123456789abcdef", Some("u"), None, Some(v4(192,0,2,1)), 3260, None, None, Lun::ZERO, "eui.0123456789abcdef"),
        ("iscsi:192.0.2.1::::naa.600a0b80001234", None, None, Some(v4(192,0,2,1)), 3260, None, None, Lun::ZERO, "naa.600a0b80001234"),
        // empty server: discovery by name
        ("iscsi:::::iqn.x:y", None, None, None, 3260, None, None, Lun::ZERO, "iqn.x:y"),
        // LUNs: decimal (Debian/dracut) vs RFC 4173 hex
        ("iscsi:192.0.2.1:::10:iqn.x:y", None, None, Some(v4(192,0,2,1)), 3260, None, None, lun(10), "iqn.x:y"),
        ("iscsi:192.0.2.1:::a:iqn.x:y", None, None, Some(v4(192,0,2,1)), 3260, None, None, lun(10), "iqn.x:y"),
        ("iscsi:192.0.2.1:::1-7:iqn.x:y", None, None, Some(v4(192,0,2,1)), 3260, None, None, Lun([0,1,0,7,0,0,0,0]), "iqn.x:y"),
        ("iscsi:192.0.2.1:::300:iqn.x:y", None, None, Some(v4(192,0,2,1)), 3260, None, None, lun(300), "iqn.x:y"),
        // target without a known prefix: RFC 4173, everything after the LUN
        ("iscsi:192.0.2.1::::mytarget:with:colons", None, None, Some(v4(192,0,2,1)), 3260, None, None, Lun::ZERO, "mytarget:with:colons"),
    ];
    for (spec, user, in_user, server, port, iface, netdev, l, target) in cases {
        for key in ["root", "netroot"] {
            let b = ok(&format!("{key}={spec}"));
            let [r] = b.roots.as_slice() else {
                panic!("{spec}: {:?}", b.roots)
            };
            assert_eq!(r.param, key);
            assert_eq!(r.chap.as_ref().map(|c| c.user.as_str()), user, "{spec}");
            assert_eq!(
                r.mutual.as_ref().map(|c| c.user.as_str()),
                in_user,
                "{spec}"
            );
            assert_eq!(r.server, server, "{spec}");
            assert_eq!(r.port, port, "{spec}");
            assert_eq!(r.iface.as_deref(), iface, "{spec}");
            assert_eq!(r.netdev.as_deref(), netdev, "{spec}");
            assert_eq!(r.lun, l, "{spec}");
            assert_eq!(r.target_name, target, "{spec}");
        }
    }
    let b = ok("root=iscsi:alice:S3cr3tPassw0rd:bob:0therS3cretXY@192.0.2.1::::iqn.x:y");
    assert_eq!(
        b.roots[0].chap.as_ref().unwrap().secret,
        Secret::new(SECRET)
    );
    assert_eq!(
        b.roots[0].mutual.as_ref().unwrap().secret,
        Secret::new(SECRET2)
    );
}

#[test]
fn lun_formats() {
    let r = |line: &str| ok(line).roots[0].lun;
    assert_eq!(
        r("root=iscsi:h:::10:iqn.x pxeroot.lun_format=rfc4173"),
        lun(16)
    );
    assert_eq!(
        r("pxeroot.lun_format=decimal root=iscsi:h:::10:iqn.x"),
        lun(10)
    );
    assert_eq!(r("root=iscsi:h:::10:iqn.x"), lun(10));
    assert!(parse("pxeroot.lun_format=decimal root=iscsi:h:::a:iqn.x").is_err());
    assert_eq!(ok("pxeroot.lun=5").pxeroot.lun, Some(lun(5)));
    assert_eq!(
        ok("pxeroot.lun=1-2").pxeroot.lun,
        Some(Lun([0, 1, 0, 2, 0, 0, 0, 0]))
    );
    assert!(parse("pxeroot.lun=16384").is_err());
    assert!(parse("pxeroot.lun_format=octal").is_err());
}

#[test]
fn root_dhcp_and_foreign_roots() {
    assert!(ok("netroot=dhcp").root_from_dhcp);
    assert!(ok("root=dhcp").root_from_dhcp);
    let b = ok("root=/dev/sda1 root=UUID=1234 netroot=nfs:192.0.2.1:/srv root");
    assert!(b.roots.is_empty() && !b.root_from_dhcp);
    assert_eq!(
        ok("root=iscsi:h::::iqn.a netroot=iscsi:h2::::iqn.a")
            .roots
            .len(),
        2
    );
}

#[test]
fn bootif() {
    let mac = Mac([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
    for v in [
        "01-52-54-00-ab-cd-ef",
        "01-52-54-00-AB-CD-EF",
        "52:54:00:ab:cd:ef",
        "52-54-00-ab-cd-ef",
    ] {
        assert_eq!(ok(&format!("BOOTIF={v}")).bootif, Some(mac), "{v}");
    }
    assert_eq!(ok("BOOTIF=01-52-54-00-ab-cd-ef rd.bootif=0").bootif, None);
    assert_eq!(mac.to_string(), "52:54:00:ab:cd:ef");
}

#[test]
fn ip_forms() {
    let ip4 = |s: &str| IpAddr::V4(s.parse().unwrap());
    let simple = |m: Autoconf| IpConfig {
        device: None,
        method: m,
        mtu: None,
        mac: None,
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, IpConfig)> = vec![
        ("dhcp", simple(Autoconf::Dhcp)),
        ("on", simple(Autoconf::Dhcp)),
        ("any", simple(Autoconf::Dhcp)),
        ("bootp", simple(Autoconf::Dhcp)),
        ("dhcp6", simple(Autoconf::Dhcp6)),
        ("auto6", simple(Autoconf::Auto6)),
        ("either6", simple(Autoconf::Auto6)),
        ("ibft", simple(Autoconf::Ibft)),
        ("off", simple(Autoconf::Off)),
        ("none", simple(Autoconf::Off)),
        ("eth0:dhcp", IpConfig { device: Some("eth0".into()), method: Autoconf::Dhcp, mtu: None, mac: None }),
        ("enp1s0:dhcp:9000:52:54:00:ab:cd:ef", IpConfig { device: Some("enp1s0".into()), method: Autoconf::Dhcp, mtu: Some(9000), mac: Some(Mac([0x52,0x54,0,0xab,0xcd,0xef])) }),
        ("eth1:ibft", IpConfig { device: Some("eth1".into()), method: Autoconf::Ibft, mtu: None, mac: None }),
        (":::::eth0:dhcp", IpConfig { device: Some("eth0".into()), method: Autoconf::Dhcp, mtu: None, mac: None }),
        ("::::::", simple(Autoconf::Dhcp)),
        ("192.0.2.10:192.0.2.1:192.0.2.254:255.255.255.0:client1:eth0:none:192.0.2.53:192.0.2.54",
         IpConfig { device: Some("eth0".into()), mtu: None, mac: None, method: Autoconf::Static(StaticIp {
             address: ip4("192.0.2.10"), prefix_len: 24, gateway: Some(ip4("192.0.2.254")), server: Some(ip4("192.0.2.1")),
             hostname: Some("client1".into()), dns: vec![ip4("192.0.2.53"), ip4("192.0.2.54")] }) }),
        ("10.1.2.3::10.0.0.1:::eth0:off:1500",
         IpConfig { device: Some("eth0".into()), mtu: Some(1500), mac: None, method: Autoconf::Static(StaticIp {
             address: ip4("10.1.2.3"), prefix_len: 8, gateway: Some(ip4("10.0.0.1")), server: None, hostname: None, dns: vec![] }) }),
        ("192.0.2.10::192.0.2.1:26",
         IpConfig { device: None, mtu: None, mac: None, method: Autoconf::Static(StaticIp {
             address: ip4("192.0.2.10"), prefix_len: 26, gateway: Some(ip4("192.0.2.1")), server: None, hostname: None, dns: vec![] }) }),
        ("[2001:db8::2]::[2001:db8::1]:64::eth0:none",
         IpConfig { device: Some("eth0".into()), mtu: None, mac: None, method: Autoconf::Static(StaticIp {
             address: "2001:db8::2".parse().unwrap(), prefix_len: 64, gateway: Some("2001:db8::1".parse().unwrap()), server: None, hostname: None, dns: vec![] }) }),
        ("192.0.2.10::::::dhcp", simple(Autoconf::Dhcp)),
    ];
    for (v, want) in cases {
        let b = ok(&format!("ip={v}"));
        assert_eq!(b.ip, vec![want], "ip={v}");
    }
    assert_eq!(ok("ip=eth0:dhcp ip=eth1:dhcp").ip.len(), 2);
    assert_eq!(ok("rd.iscsi.ibft").ip, vec![simple(Autoconf::Ibft)]);
    assert_eq!(ok("rd.iscsi.ibft=0").ip, vec![]);
}

#[test]
fn pxeroot_parameters() {
    let p = ok("").pxeroot;
    assert_eq!(p, PxerootArgs::default());
    assert_eq!(p.timeout_secs, 120);
    let b = ok("pxeroot.timeout=30 pxeroot.dhcp_timeout=5s pxeroot.link_timeout=0 pxeroot.debug pxeroot.bogus=1");
    assert_eq!(b.pxeroot.timeout_secs, 30);
    assert_eq!(b.pxeroot.dhcp_timeout_secs, 5);
    assert_eq!(b.pxeroot.link_timeout_secs, 0);
    assert!(b.pxeroot.debug);
    assert!(b.warnings.iter().any(|w| w.contains("pxeroot.bogus")));
    assert!(!ok("pxeroot.debug=0").pxeroot.debug);
}

#[test]
fn unknown_parameters_are_ignored() {
    let b = ok("BOOT_IMAGE=/vmlinuz-6.1 ro quiet splash console=ttyS0,115200n8 init=/sbin/init iscsi_bogus=1");
    assert_eq!(b, BootArgs::default());
}

#[test]
fn malformed() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        // (line, parameter named, words of the problem)
        ("iscsi_target_port=abc", "iscsi_target_port", "port number"),
        ("iscsi_target_port=0", "iscsi_target_port", "port 0"),
        ("iscsi_target_port=70000", "iscsi_target_port", "port number"),
        ("rd.iscsi.target.port=", "rd.iscsi.target.port", "needs a value"),
        ("iscsi_target_ip=", "iscsi_target_ip", "needs a value"),
        ("iscsi_target_ip=\"192.0.2.1 not/an/ip\"", "iscsi_target_ip", "not an IP address"),
        ("iscsi_target_ip=\" , \"", "iscsi_target_ip", "at least one"),
        ("iscsi_target_group=-1", "iscsi_target_group", "not a number"),
        ("iscsi_target_name=\"iqn.a b\"", "iscsi_target_name", "white space"),
        ("iscsi_initiator", "iscsi_initiator", "needs a value"),
        ("iscsi_password=", "iscsi_password", "empty"),
        ("iscsi_auto=maybe", "iscsi_auto", "0 or 1"),
        ("rd.iscsi.login_retry_max=many", "rd.iscsi.login_retry_max", "count"),
        ("rd.iscsi.param=novalue", "rd.iscsi.param", "node.key=value"),
        ("rd.iscsi.param=node.session.auth.authmethod=Kerberos", "rd.iscsi.param node.session.auth.authmethod", "CHAP or None"),
        ("rd.iscsi.param=node.session.initial_login_retry_max=x", "rd.iscsi.param node.session.initial_login_retry_max", "count"),
        ("root=iscsi:192.0.2.1", "root", "protocol field"),
        ("netroot=iscsi:192.0.2.1:6:3260:0", "netroot", "target name"),
        ("root=iscsi:192.0.2.1:17:3260:0:iqn.x", "root", "not 6"),
        ("root=iscsi:192.0.2.1:tcp:3260:0:iqn.x", "root", "not 6"),
        ("root=iscsi:192.0.2.1::http:0:iqn.x", "root", "port"),
        ("root=iscsi:192.0.2.1::3260:zz:iqn.x", "root", "LUN"),
        ("root=iscsi:192.0.2.1::3260:1-2-3-4-5:iqn.x", "root", "LUN"),
        ("root=iscsi:192.0.2.1::3260:99999:iqn.x", "root", "LUN"),
        ("root=iscsi:[2001:db8::1::3260::iqn.x", "root", "closing"),
        ("root=iscsi:[zz]::3260::iqn.x", "root", "not an IP"),
        ("root=iscsi:bad_host!::3260::iqn.x", "root", "not an IP"),
        ("root=iscsi:192.0.2.1:::::iqn.x", "root", "found 4 fields"),
        ("root=iscsi:192.0.2.1::3260:::", "root", "target name"),
        ("root=iscsi:192.0.2.1:::::naa.6001", "root", "found 4 fields"),
        ("root=iscsi:192.0.2.1::3260:default:eth0:0:mytarget", "root", "must start with iqn."),
        ("root=\"iscsi:192.0.2.1::3260:a b:eth0:0:iqn.x\"", "root", "iface"),
        ("root=iscsi:192.0.2.1::3260:default:eth/0:0:iqn.x", "root", "interface name"),
        ("root=iscsi:alice@192.0.2.1::3260::iqn.x", "root", "user:password"),
        ("root=iscsi:alice:S3cr3t:Passw0rd@192.0.2.1::3260::iqn.x", "root", "user:password"),
        ("root=iscsi::S3cr3tPassw0rd@192.0.2.1::3260::iqn.x", "root", "without a user name"),
        ("root=iscsi:alice:@192.0.2.1::3260::iqn.x", "root", "without a secret"),
        ("root=iscsi:::bob:S3cr3tPassw0rd@192.0.2.1::3260::iqn.x", "root", "without the initiator"),
        ("BOOTIF=", "BOOTIF", "needs a value"),
        ("BOOTIF=01-52-54-00", "BOOTIF", "six hex bytes"),
        ("BOOTIF=20-52-54-00-ab-cd-ef", "BOOTIF", "not 01"),
        ("BOOTIF=01-52-54-00-ab-cd-gg", "BOOTIF", "six hex bytes"),
        ("rd.bootif=maybe", "rd.bootif", "0 or 1"),
        ("ip=", "ip", "needs a value"),
        ("ip=dhcpp", "ip", "not a method"),
        ("ip=eth0:dhcp:9:aa", "ip", "MTU"),
        ("ip=eth0:dhcp:1500:aa:bb", "ip", "MAC"),
        ("ip=averyveryverylongname0:dhcp", "ip", "interface name"),
        ("ip=192.0.2.300::::::none", "ip", "client address"),
        ("ip=192.0.2.10::gw::::none", "ip", "gateway"),
        ("ip=192.0.2.10:::255.0.255.0:::none", "ip", "not contiguous"),
        ("ip=192.0.2.10:::33:::none", "ip", "prefix length"),
        ("ip=192.0.2.10::::bad!host::none", "ip", "hostname"),
        ("ip=192.0.2.10::::::static", "ip", "method"),
        ("ip=192.0.2.10::::::none:192.0.2.53:x", "ip", "DNS server"),
        ("ip=192.0.2.10::[2001:db8::1]::::none", "ip", "different families"),
        ("ip=[2001:db8::2]:::255.255.255.0:::none", "ip", "not valid for the address"),
        ("pxeroot.timeout=soon", "pxeroot.timeout", "seconds"),
        ("pxeroot.timeout=999999", "pxeroot.timeout", "maximum"),
        ("pxeroot.debug=sometimes", "pxeroot.debug", "0 or 1"),
        ("pxeroot.lun=", "pxeroot.lun", "needs a value"),
    ];
    for (line, param, words) in cases {
        match parse(line) {
            Ok(b) => panic!("{line:?} parsed: {b:?}"),
            Err(e) => {
                assert_eq!(e.param, *param, "{line:?}: {e}");
                let text = e.to_string();
                assert!(text.contains(words), "{line:?}: {text:?} lacks {words:?}");
                assert!(
                    text.starts_with(&format!("bad boot parameter {param}: ")),
                    "{text}"
                );
                for s in [SECRET, "S3cr3t", "Passw0rd"] {
                    assert!(!text.contains(s), "{line:?} leaks the secret: {text}");
                }
            }
        }
    }
}

#[test]
fn no_secret_in_debug_or_errors() {
    let line = format!(
        "iscsi_password={SECRET} iscsi_in_password={SECRET2} \
         root=iscsi:a:{SECRET}:b:{SECRET2}@192.0.2.1::::iqn.x:y \
         rd.iscsi.param=node.session.auth.password_in={SECRET2}"
    );
    let b = ok(&line);
    let dbg = format!("{b:?}");
    assert!(!dbg.contains(SECRET) && !dbg.contains(SECRET2), "{dbg}");
    for w in &b.warnings {
        assert!(!w.contains(SECRET) && !w.contains(SECRET2));
    }
    // A mis-split spec (no target) must not quote fields that might hold the password.
    for spec in [
        format!("root=iscsi:user:{SECRET}@192.0.2.1:6:3260:0"),
        format!("root=iscsi:user:{SECRET}@192.0.2.1:x:y:z:w:v"),
        format!("root=iscsi:{SECRET}@1:2:3:4:5:6"),
        format!("root=iscsi:u:p:{SECRET}@192.0.2.1::::iqn.x"),
        format!("root=iscsi:u:{SECRET}@[::1::::iqn.x"),
        format!("root=iscsi:u:{SECRET}@192.0.2.1::::zz:iqn.x"),
    ] {
        let e = parse(&spec).expect_err(&spec);
        let t = e.to_string();
        assert!(!t.contains(SECRET), "{spec}: {t}");
        assert!(!format!("{e:?}").contains(SECRET), "{spec}: {e:?}");
    }
}

fn arb_root_path() -> impl Strategy<Value = pxeroot_proto::root_path::RootPath> {
    let server = prop_oneof![
        Just(None),
        any::<[u8; 4]>().prop_map(|a| Some(Server::Ipv4(Ipv4Addr::from(a)))),
        any::<[u8; 16]>().prop_map(|a| Some(Server::Ipv6(Ipv6Addr::from(a)))),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9]{0,10}){0,3}".prop_map(|n| Some(Server::Name(n))),
    ];
    (
        server,
        1u16..,
        any::<[u8; 8]>(),
        "(iqn|eui|naa)\\.[0-9]{4}-[0-9]{2}\\.[a-z.]{1,20}(:[a-z0-9:.@-]{0,30})?",
    )
        .prop_map(|(server, port, lun, target_name)| {
            let mut r = pxeroot_proto::root_path::RootPath::new(server, target_name);
            r.port = port;
            r.lun = Lun(lun);
            r
        })
}

proptest! {
    /// What pxeroot-target puts in DHCP option 17 reads back the same from netroot=.
    #[test]
    fn netroot_reads_what_proto_emits(r in arb_root_path()) {
        let spec = r.emit().unwrap();
        let b = parse(&format!("netroot={spec} pxeroot.lun_format=rfc4173")).unwrap();
        let got = &b.roots[0];
        prop_assert_eq!(&got.server, &r.server);
        prop_assert_eq!(got.port, r.port);
        prop_assert_eq!(got.lun, r.lun);
        prop_assert_eq!(&got.target_name, &r.target_name);
        prop_assert!(got.chap.is_none());
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_parameters(
        key in prop::sample::select(vec![
            "root", "netroot", "ip", "BOOTIF", "iscsi_target_ip", "iscsi_target_port",
            "rd.iscsi.param", "pxeroot.lun", "pxeroot.timeout", "iscsi_initiator",
        ]),
        value in "[\\[\\]:@a-f0-9.\\-=, \"iqn]{0,60}",
    ) {
        let _ = parse(&format!("{key}={value}"));
        let _ = parse(&format!("{key}=iscsi:{value}"));
    }
}
