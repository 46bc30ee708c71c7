//! The files that tell the rest of the boot what the network phase did.
//!
//! * `/run/net-<IFACE>.conf`: what klibc `ipconfig` writes and initramfs-tools'
//!   `configure_networking` sources (so its later steps, `netinfo_to_resolv_conf` and the
//!   hooks that skip an already configured device, work unchanged): shell assignments with
//!   single-quoted values, `0.0.0.0` for an absent address and `''` for an absent string, as
//!   klibc does.
//! * `/run/initramfs/open-iscsi.interface`: the interface name, where Debian's open-iscsi
//!   initramfs script leaves it so that the booted system's iSCSI tools keep that NIC
//!   configured.
//!
//! Neither holds a secret (no CHAP value reaches [`NetUp`]'s written fields); both are still
//! 0600, like everything the agent leaves in /run, since only root reads them. Each is written to a temporary name and renamed, so a reader never sees half a file.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::net::Ipv4Addr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::dhcp::{broadcast_of, netmask_of};
use super::NetUp;

/// Quotes a value for a POSIX shell: inside single quotes, `'` becomes `'\''`.
pub fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

fn ip(a: Option<Ipv4Addr>) -> String {
    a.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string()
}

/// The text of `net-<IFACE>.conf`; `uptime_secs` is the system uptime to record.
pub fn net_conf(up: &NetUp, uptime_secs: Option<u64>) -> String {
    let lease = up.lease.as_ref();
    let (addr, prefix) = match up.address {
        Some((a, p)) => (Some(a), Some(p)),
        None => (None, None),
    };
    let broadcast = lease.and_then(|l| l.broadcast).or_else(|| {
        addr.zip(prefix)
            .map(|(a, p)| broadcast_of(a, p))
            .filter(|_| prefix.is_some_and(|p| p < 31))
    });
    let rootserver = lease.and_then(|l| l.siaddr.or(Some(l.server_id)));
    let fields: [(&str, String); 17] = [
        ("DEVICE", up.ifname.clone()),
        (
            "PROTO",
            if lease.is_some() { "dhcp" } else { "none" }.into(),
        ),
        ("IPV4ADDR", ip(addr)),
        ("IPV4BROADCAST", ip(broadcast)),
        ("IPV4NETMASK", ip(prefix.map(netmask_of))),
        ("IPV4GATEWAY", ip(up.gateway)),
        ("IPV4DNS0", ip(up.dns.first().copied())),
        ("IPV4DNS1", ip(up.dns.get(1).copied())),
        ("HOSTNAME", up.hostname.clone().unwrap_or_default()),
        ("DNSDOMAIN", up.domain.clone().unwrap_or_default()),
        ("NISDOMAIN", String::new()),
        ("ROOTSERVER", ip(rootserver)),
        (
            "ROOTPATH",
            lease.and_then(|l| l.root_path.clone()).unwrap_or_default(),
        ),
        (
            "filename",
            lease.and_then(|l| l.bootfile.clone()).unwrap_or_default(),
        ),
        (
            "UPTIME",
            uptime_secs.map(|u| u.to_string()).unwrap_or_default(),
        ),
        (
            "DHCPLEASETIME",
            lease
                .and_then(|l| l.lease_secs)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        (
            "DOMAINSEARCH",
            lease.map(|l| l.domain_search.join(" ")).unwrap_or_default(),
        ),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        let _ = writeln!(out, "{k}={}", shell_quote(&v));
    }
    out
}

/// Whole seconds of `/proc/uptime`, if readable.
fn uptime() -> Option<u64> {
    let text = fs::read_to_string("/proc/uptime").ok()?;
    let first = text.split_whitespace().next()?;
    first.split('.').next()?.parse().ok()
}

fn write_file(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp-pxeroot");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    // Root only, like everything the agent leaves in /run (its readers, initramfs-tools'
    // scripts and ifupdown, run as root); and whatever the umask says.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    fs::rename(&tmp, path)
}

/// Writes `<run>/net-<IFACE>.conf` and `<run>/initramfs/open-iscsi.interface` (see the
/// module docs) and returns their paths.
///
/// # Errors
/// The first failing file operation, its path in the message.
pub fn write_run_files(up: &NetUp, run: &Path) -> io::Result<Vec<PathBuf>> {
    let with_path = |p: &Path| {
        let p = p.to_path_buf();
        move |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()))
    };
    if up.ifname.contains('/') || up.ifname.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} is not an interface name", up.ifname),
        ));
    }
    fs::create_dir_all(run).map_err(with_path(run))?;
    let conf = run.join(format!("net-{}.conf", up.ifname));
    write_file(&conf, &net_conf(up, uptime())).map_err(with_path(&conf))?;
    let dir = run.join("initramfs");
    fs::create_dir_all(&dir).map_err(with_path(&dir))?;
    let iface = dir.join("open-iscsi.interface");
    write_file(&iface, &format!("{}\n", up.ifname)).map_err(with_path(&iface))?;
    Ok(vec![conf, iface])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::Mac;
    use crate::config::DhcpInfo;
    use crate::net::Lease;
    use pxeroot_proto::chap::Secret;

    const SECRET: &str = "S3cr3tPassw0rd";

    fn dhcp_up() -> NetUp {
        let lease = Lease {
            address: Ipv4Addr::new(10, 0, 0, 5),
            prefix_len: 24,
            server_id: Ipv4Addr::new(10, 0, 0, 2),
            lease_secs: Some(3600),
            routers: vec![Ipv4Addr::new(10, 0, 0, 1)],
            dns: vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)],
            broadcast: None,
            hostname: Some("client1".into()),
            domain: Some("example.org".into()),
            domain_search: vec!["example.org".into(), "lab.example.org".into()],
            mtu: Some(1400),
            siaddr: Some(Ipv4Addr::new(10, 0, 0, 4)),
            server_name: None,
            bootfile: Some("pxelinux.0".into()),
            root_path: Some("iscsi:10.0.0.2::3260:1:iqn.2026-11.org.example:it's".into()),
        };
        NetUp {
            ifname: "eth0".into(),
            ifindex: 2,
            mac: Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            address: Some((lease.address, 24)),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dns: lease.dns.clone(),
            hostname: lease.hostname.clone(),
            domain: lease.domain.clone(),
            mtu: Some(1400),
            dhcp: Some(DhcpInfo {
                root_path: lease.root_path.clone(),
                username: Some("alice".into()),
                password: Some(Secret::new(SECRET)),
                ..DhcpInfo::default()
            }),
            lease: Some(lease),
        }
    }

    #[test]
    fn dhcp_net_conf_golden() {
        let want = "\
DEVICE='eth0'
PROTO='dhcp'
IPV4ADDR='10.0.0.5'
IPV4BROADCAST='10.0.0.255'
IPV4NETMASK='255.255.255.0'
IPV4GATEWAY='10.0.0.1'
IPV4DNS0='10.0.0.2'
IPV4DNS1='10.0.0.3'
HOSTNAME='client1'
DNSDOMAIN='example.org'
NISDOMAIN=''
ROOTSERVER='10.0.0.4'
ROOTPATH='iscsi:10.0.0.2::3260:1:iqn.2026-11.org.example:it'\\''s'
filename='pxelinux.0'
UPTIME='12'
DHCPLEASETIME='3600'
DOMAINSEARCH='example.org lab.example.org'
";
        assert_eq!(net_conf(&dhcp_up(), Some(12)), want);
    }

    #[test]
    fn static_and_link_only_net_conf_golden() {
        let mut up = dhcp_up();
        up.lease = None;
        up.dhcp = None;
        up.address = Some((Ipv4Addr::new(192, 0, 2, 9), 31));
        up.dns = vec![Ipv4Addr::new(192, 0, 2, 53)];
        up.domain = None;
        let want = "\
DEVICE='eth0'
PROTO='none'
IPV4ADDR='192.0.2.9'
IPV4BROADCAST='0.0.0.0'
IPV4NETMASK='255.255.255.254'
IPV4GATEWAY='10.0.0.1'
IPV4DNS0='192.0.2.53'
IPV4DNS1='0.0.0.0'
HOSTNAME='client1'
DNSDOMAIN=''
NISDOMAIN=''
ROOTSERVER='0.0.0.0'
ROOTPATH=''
filename=''
UPTIME=''
DHCPLEASETIME=''
DOMAINSEARCH=''
";
        assert_eq!(net_conf(&up, None), want);
        up.address = None;
        up.gateway = None;
        let text = net_conf(&up, None);
        assert!(
            text.contains("IPV4ADDR='0.0.0.0'\nIPV4BROADCAST='0.0.0.0'\nIPV4NETMASK='0.0.0.0'\n")
        );
    }

    #[test]
    fn shell_quoting_survives_sh() {
        let nasty = "a'b\"c $(touch /x) `id`\n\\";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("V={}; printf %s \"$V\"", shell_quote(nasty)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
    }

    #[test]
    fn writes_files_0600_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let files = write_run_files(&dhcp_up(), &run).unwrap();
        assert_eq!(
            files,
            [
                run.join("net-eth0.conf"),
                run.join("initramfs/open-iscsi.interface")
            ]
        );
        for f in &files {
            let meta = fs::metadata(f).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", f.display());
            let text = fs::read_to_string(f).unwrap();
            assert!(!text.contains(SECRET));
            assert!(!text.contains("alice"), "no CHAP names either");
        }
        assert_eq!(fs::read_to_string(&files[1]).unwrap(), "eth0\n");
        let conf = fs::read_to_string(&files[0]).unwrap();
        assert!(conf.starts_with("DEVICE='eth0'\nPROTO='dhcp'\n"));
        // Sourced by sh as initramfs-tools does.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                ". '{}'; echo \"$IPV4ADDR/$IPV4NETMASK $ROOTPATH\"",
                files[0].display()
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "10.0.0.5/255.255.255.0 iscsi:10.0.0.2::3260:1:iqn.2026-11.org.example:it's\n"
        );
        // No temporary files left; a second write replaces.
        write_run_files(&dhcp_up(), &run).unwrap();
        let names: Vec<_> = fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let mut bad = dhcp_up();
        bad.ifname = "../etc".into();
        assert!(write_run_files(&bad, &run).is_err());
    }
}
