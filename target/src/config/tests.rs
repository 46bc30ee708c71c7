use super::*;
use std::path::Path;

fn image() -> PathBuf {
    let p = std::env::temp_dir().join(format!("pxrt-config-{}.img", std::process::id()));
    if !p.exists() {
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
    }
    p
}

fn example() -> String {
    format!(
        r#"[iscsi]
listen = ["0.0.0.0:3260", "[::]:3260"]

[[target]]
name = "iqn.2026-11.org.example:disk1"
[[target.lun]]
id = 0
path = "{}"
read_only = false
[[target.acl]]
initiator = "iqn.2013-02.org.example.client:default"
chap = {{ user = "client", secret = "client-secret-1" }}
mutual_chap = {{ user = "target", secret = "target-secret-1" }}
"#,
        image().display()
    )
}

#[test]
fn the_readme_example_is_valid() {
    let checked = Config::parse(&example());
    assert_eq!(checked.problems, vec![]);
    let config = checked.config.unwrap();
    assert_eq!(config.iscsi.listen.len(), 2);
    let t = &config.targets[0];
    assert_eq!(t.name, "iqn.2026-11.org.example:disk1");
    assert_eq!(t.luns[0].id, 0);
    assert!(t.luns[0].write_cache);
    let acl = &t.acls[0];
    assert!(acl.matches(
        "IQN.2013-02.org.example.client:default",
        "10.0.0.5".parse().unwrap()
    ));
    assert!(!acl.matches(
        "iqn.2013-02.org.example.client:other",
        "10.0.0.5".parse().unwrap()
    ));
    assert_eq!(acl.chap.as_ref().unwrap().user, "client");
}

fn problems(text: &str) -> Vec<String> {
    Config::parse(text)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn each_mistake_is_named_with_its_line() {
    let text = example()
        .replace("0.0.0.0:3260", "0.0.0.0:99999")
        .replace("iqn.2026-11.org.example:disk1", "disk1")
        .replace("target-secret-1", "client-secret-1");
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|m| m.starts_with("line 2, column 11: error: iscsi.listen: \"0.0.0.0:99999\"")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|m| m
            .starts_with("line 5, column 8: error: target.name \"disk1\" is not an iSCSI name")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("line 13,") && m.contains("different secrets")),
        "{p:#?}"
    );
    assert!(
        p.iter().all(|m| !m.contains("client-secret-1")),
        "a secret leaked: {p:#?}"
    );
    assert!(Config::parse(&text).config.is_none());
}

#[test]
fn syntax_errors_and_unknown_keys_have_lines() {
    let p = problems("[iscsi]\nlisten = [\"0.0.0.0:3260\"\n");
    assert!(
        p[0].starts_with("line 2,") || p[0].starts_with("line 3,"),
        "{p:?}"
    );
    let p = problems("[iscsi]\nlisen = []\n");
    assert!(
        p[0].starts_with("line 2, column 1: error: unknown field `lisen`"),
        "{p:?}"
    );
}

#[test]
fn missing_image_duplicate_lun_and_short_secret() {
    let text = format!(
        "[[target]]\nname = \"iqn.2026-11.org.example:a\"\n[[target.lun]]\nid = 0\npath = \"/nonexistent/x.img\"\n\
         [[target.lun]]\nid = 0\npath = \"{}\"\n[[target.acl]]\ninitiator = \"*\"\nchap = {{ user = \"u\", secret = \"short\" }}\n",
        image().display()
    );
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|m| m.starts_with("line 5, column 8: error: target.lun.path /nonexistent/x.img")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("line 7, column 6: error: LUN 0 appears twice")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|m| m.starts_with("line 11,")
            && m.contains("warning")
            && m.contains("at least 12")),
        "{p:#?}"
    );
    assert!(p.iter().all(|m| !m.contains("\"short\"")));
}

#[test]
fn cidr_matching() {
    let c = Cidr::parse("10.0.0.0/24").unwrap();
    assert!(c.contains("10.0.0.77".parse().unwrap()));
    assert!(!c.contains("10.0.1.1".parse().unwrap()));
    assert!(c.contains("::ffff:10.0.0.9".parse().unwrap()));
    assert!(Cidr::parse("fd00::/8")
        .unwrap()
        .contains("fd12::1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("192.0.2.1".parse().unwrap()));
    assert_eq!(Cidr::parse("10.0.0.0/33"), None);
    assert_eq!(Cidr::parse("nope"), None);
}

#[test]
fn iscsi_names() {
    for ok in [
        "iqn.2013-02.org.example.client:default",
        "eui.0123456789ABCDEF",
        "naa.52004567BA64678D",
    ] {
        assert!(valid_iscsi_name(ok), "{ok}");
    }
    for bad in [
        "disk1",
        "iqn.2013.org",
        "iqn.13-02.org.x",
        "eui.123",
        "iqn.2013-02.org.example has space",
    ] {
        assert!(!valid_iscsi_name(bad), "{bad}");
    }
}

/// A TFTP root with pxelinux's files and a kernel, and a disk image, for `[[client]]` tests.
fn netboot_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pxrt-netboot-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tftp")).unwrap();
    for f in ["pxelinux.0", "ldlinux.c32", "vmlinuz", "initrd.img"] {
        std::fs::write(dir.join("tftp").join(f), b"x").unwrap();
    }
    for d in ["client.img", "client2.img"] {
        std::fs::write(dir.join(d), vec![0u8; 4096]).unwrap();
    }
    dir
}

/// The issue's example, with its paths under `dir`.
fn netboot_example(dir: &Path, extra: &str) -> String {
    format!(
        r#"[server]
address = "10.0.0.2"
interface = "tap0"
[dhcp]
subnet = "10.0.0.0/24"
router = "10.0.0.1"
dns = ["10.0.0.1"]
pool = ["10.0.0.100", "10.0.0.200"]
lease_file = "{d}/leases"
[tftp]
root = "{d}/tftp"
[[client]]
name = "client"
mac = "52:54:00:12:34:56"
ip = "10.0.0.5"
initiator = "iqn.2013-02.org.example.client:default"
disk = "{d}/client.img"
chap = {{ user = "client", secret = "client-secret-1" }}
kernel = "vmlinuz"
initrd = "initrd.img"
append = "root=/dev/sda console=ttyS0"
{extra}"#,
        d = dir.display()
    )
}

#[test]
fn a_client_entry_expands_into_target_acl_reservation_and_boot_files() {
    let dir = netboot_dir();
    let checked = Config::parse(&netboot_example(&dir, ""));
    assert_eq!(checked.problems, vec![]);
    let config = checked.config.unwrap();
    let t = &config.targets[0];
    assert_eq!(t.name, "iqn.2026-11.org.pxeroot:client");
    assert_eq!(t.luns[0].path, dir.join("client.img"));
    let acl = &t.acls[0];
    assert!(acl.matches(
        "iqn.2013-02.org.example.client:default",
        "10.0.0.5".parse().unwrap()
    ));
    assert!(!acl.matches(
        "iqn.2013-02.org.example.client:default",
        "10.0.0.6".parse().unwrap()
    ));
    assert_eq!(acl.chap.as_ref().unwrap().user, "client");

    let dhcp = crate::pxe::dhcp_settings(&config).unwrap();
    assert_eq!(dhcp.hosts.len(), 1);
    let host = &dhcp.hosts[0];
    assert_eq!(host.mac, [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    assert_eq!(host.ip, std::net::Ipv4Addr::new(10, 0, 0, 5));
    assert_eq!(host.boot.bios.as_deref(), Some("pxelinux.0"));
    assert_eq!(
        host.boot.ipxe.as_deref(),
        Some("pxeroot/01-52-54-00-12-34-56.ipxe")
    );
    let iscsi = host.iscsi.as_ref().unwrap();
    assert_eq!(
        iscsi.root_path,
        "iscsi:10.0.0.2::3260:0:iqn.2026-11.org.pxeroot:client"
    );
    assert_eq!(iscsi.initiator, "iqn.2013-02.org.example.client:default");

    use crate::tftp::{Resolver, Source};
    let (_, files) = crate::pxe::tftp_settings(&config).unwrap();
    let peer: SocketAddr = "10.0.0.5:2000".parse().unwrap();
    let text = |path: &str| match files.open(path, peer).unwrap() {
        Source::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
        Source::File(_) => panic!("{path} should be generated"),
    };
    let pxelinux = text("pxelinux.cfg/01-52-54-00-12-34-56");
    assert!(
        pxelinux.contains("KERNEL vmlinuz\n  INITRD initrd.img\n"),
        "{pxelinux}"
    );
    assert!(pxelinux.contains("IPAPPEND 2"), "{pxelinux}");
    assert!(pxelinux.contains(
        "APPEND root=/dev/sda console=ttyS0 ip=dhcp iscsi_initiator=iqn.2013-02.org.example.client:default \
         iscsi_target_name=iqn.2026-11.org.pxeroot:client iscsi_target_ip=10.0.0.2 iscsi_target_port=3260\n"
    ), "{pxelinux}");
    let ipxe = text("/pxeroot/01-52-54-00-12-34-56.IPXE");
    assert!(ipxe.starts_with("#!ipxe\n"), "{ipxe}");
    assert!(
        ipxe.contains("kernel tftp://10.0.0.2/vmlinuz initrd=initrd.img root=/dev/sda"),
        "{ipxe}"
    );
    assert!(
        ipxe.contains(" BOOTIF=01-52-54-00-12-34-56\ninitrd tftp://10.0.0.2/initrd.img\nboot\n"),
        "{ipxe}"
    );
    for generated in [&pxelinux, &ipxe] {
        assert!(
            !generated.contains("client-secret-1"),
            "secret in {generated}"
        );
    }
}

#[test]
fn chap_in_cmdline_is_served_to_the_clients_own_address_only() {
    let dir = netboot_dir();
    let text = netboot_example(&dir, "chap_in_cmdline = true\n");
    let config = Config::parse(&text).config.unwrap();
    let (_, files) = crate::pxe::tftp_settings(&config).unwrap();
    use crate::tftp::{OpenError, Resolver, Source};
    let own: SocketAddr = "10.0.0.5:2000".parse().unwrap();
    let other: SocketAddr = "10.0.0.6:2000".parse().unwrap();
    match files
        .open("pxelinux.cfg/01-52-54-00-12-34-56", own)
        .unwrap()
    {
        Source::Bytes(b) => {
            let s = String::from_utf8(b.to_vec()).unwrap();
            assert!(
                s.contains("iscsi_username=client iscsi_password=client-secret-1"),
                "{s}"
            );
        }
        Source::File(_) => panic!("not generated"),
    }
    match files.open("pxelinux.cfg/01-52-54-00-12-34-56", other) {
        Err(OpenError::Denied(why)) => {
            assert!(why.contains("10.0.0.5 only"), "{why}");
            assert!(!why.contains("client-secret-1"));
        }
        other => panic!("served to another address: {other:?}"),
    }
}

#[test]
fn client_conflicts_are_each_reported_with_their_line() {
    let dir = netboot_dir();
    let second = format!(
        r#"[[client]]
name = "client"
mac = "52-54-00-12-34-56"
ip = "10.0.0.5"
initiator = "iqn.2013-02.org.example.client:two"
disk = "{d}/client.img"
kernel = "vmlinuz"
[[client]]
name = "far"
mac = "52:54:00:12:34:99"
ip = "192.168.1.5"
initiator = "iqn.2013-02.org.example.client:far"
disk = "{d}/client2.img"
kernel = "missing-kernel"
[[client]]
name = "bad mac"
mac = "52:54:00:12:34"
initiator = "nope"
disk = "{d}/nothing.img"
kernel = "../vmlinuz"
"#,
        d = dir.display()
    );
    let all = problems(&netboot_example(&dir, &second));
    let has = |needle: &str| {
        assert!(
            all.iter().any(|p| p.contains(needle)),
            "no problem mentions {needle:?}: {all:#?}"
        )
    };
    has("client name \"client\" appears twice");
    has("mac 52-54-00-12-34-56 is already client client's");
    has("ip 10.0.0.5 is already client client's");
    has("disk");
    has("is already client client's; two machines writing one file system corrupt it");
    has("ip 192.168.1.5 is outside dhcp.subnet 10.0.0.0/24");
    has("missing-kernel is not a file inside tftp.root");
    has("client.name \"bad mac\" must be");
    has("mac \"52:54:00:12:34\" is not a MAC address");
    has("initiator \"nope\" is not an iSCSI name");
    has("nothing.img");
    has("../vmlinuz is not a file inside tftp.root");
    has("bad mac has no ip");
    for p in &all {
        assert!(p.starts_with("line "), "{p}");
        assert!(!p.contains("client-secret-1"), "{p}");
    }
}

#[test]
fn netboot_sections_are_checked() {
    let dir = netboot_dir();
    let text = format!(
        "[dhcp]\nsubnet = \"10.0.0.0/33\"\nrouter = \"10.9.0.1\"\nmode = \"relay\"\n\
         [tftp]\nroot = \"{}/none\"\nmax_blksize = 65500\n",
        dir.display()
    );
    let all = problems(&text);
    let has = |needle: &str| {
        assert!(
            all.iter().any(|p| p.contains(needle)),
            "no problem mentions {needle:?}: {all:#?}"
        )
    };
    has("dhcp.subnet \"10.0.0.0/33\" is not an IPv4 network");
    has("dhcp.mode \"relay\" is not \"full\" or \"proxy\"");
    has("is not a folder");
    has("max_blksize");
    has("[dhcp] and [tftp] need [server]");
    // Proxy mode: no pool, clients without an address.
    let proxy = netboot_example(&dir, "").replace("[dhcp]\n", "[dhcp]\nmode = \"proxy\"\n");
    assert!(problems(&proxy)
        .iter()
        .any(|p| p.contains("dhcp.pool makes no sense with mode = \"proxy\"")));
}
