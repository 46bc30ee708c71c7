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
//! Neither holds a secret (no CHAP value reaches [`NetUp`]'s written fields), so both are
//! 0644. Each is written to a temporary name and renamed, so a reader never sees half a file.

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
        .mode(0o644)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    // The umask may have taken bits away.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
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
