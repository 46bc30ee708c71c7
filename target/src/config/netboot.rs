//! `[server]`, `[dhcp]`, `[tftp]` and `[[client]]`: the network-boot half of the file.
//!
//! Each `[[client]]` describes one diskless machine; [`expand_clients`] turns it into what the
//! admin would otherwise keep in agreement by hand: an iSCSI target with the client's disk as LUN 0
//! and an ACL for its initiator name, CHAP and address, a DHCP reservation, and the boot
//! configuration that `pxe` generates on request.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pxeroot_proto::chap::Credentials;

use crate::dhcp::leases::{format_mac, parse_mac};

use super::{valid_iscsi_name, wire, Acl, Cidr, Collector, LunConfig, TargetConfig};

/// Target names of `[[client]]` entries start with this unless `server.target_prefix` says
/// otherwise.
pub const DEFAULT_TARGET_PREFIX: &str = "iqn.2026-11.org.pxeroot";

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This server on the boot network (DHCP server id, next-server, TFTP, iSCSI portal).
    pub address: Ipv4Addr,
    /// Bind DHCP and TFTP to this interface.
    pub interface: Option<String>,
    /// Prefix of the target names made for clients.
    pub target_prefix: String,
}

/// Full DHCP server or proxyDHCP.
pub use crate::dhcp::Mode as DhcpMode;

/// `[dhcp]`.
#[derive(Debug, Clone)]
pub struct DhcpConfig {
    /// Network address of the clients' subnet.
    pub network: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// Option 3.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: Option<String>,
    /// Option 51.
    pub lease_time: Duration,
    /// Addresses for machines without an entry.
    pub pool: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Where leases persist.
    pub lease_file: Option<PathBuf>,
    /// Full or proxy.
    pub mode: DhcpMode,
    /// Boot file for BIOS clients.
    pub bios_loader: String,
    /// Boot file for x64 UEFI clients.
    pub efi_loader: Option<String>,
    /// UDP port (67).
    pub port: u16,
    /// Answer IPv6 router solicitations from clients with an empty advertisement, which ends
    /// iPXE's ~13 s wait for IPv6 (default: on in full mode, off in proxy mode).
    pub ipv6_ra: bool,
}

impl DhcpConfig {
    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        Cidr {
            addr: IpAddr::V4(self.network),
            prefix: self.prefix,
        }
        .contains(IpAddr::V4(ip))
    }
}

/// `[tftp]`.
#[derive(Debug, Clone)]
pub struct TftpConfig {
    /// The folder served (pxelinux.0, ldlinux.c32, kernels, initrds).
    pub root: PathBuf,
    /// UDP port (69).
    pub port: u16,
    /// Concurrent transfers at most.
    pub max_transfers: usize,
    /// Largest blksize granted.
    pub max_blksize: u16,
    /// Largest windowsize granted.
    pub max_window: u16,
    /// Retransmission timeout unless the client asks for one.
    pub timeout: Duration,
    /// Retransmissions before giving up.
    pub retries: u32,
}

/// Which boot program a client runs after its firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loader {
    /// iPXE clients get the generated iPXE script; other PXE firmware gets pxelinux.
    #[default]
    Auto,
    /// Always pxelinux (even when the firmware is iPXE).
    Pxelinux,
    /// Always the iPXE script (the firmware must be iPXE).
    Ipxe,
}

/// One `[[client]]`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// A short name: the target's suffix and the default host name.
    pub name: String,
    /// The boot NIC.
    pub mac: [u8; 6],
    /// Its reserved address (optional only in proxy mode).
    pub ip: Option<Ipv4Addr>,
    /// Option 12.
    pub hostname: String,
    /// The client's initiator name.
    pub initiator: String,
    /// The target made for it.
    pub target: String,
    /// LUN 0's image or block device.
    pub disk: PathBuf,
    /// CHAP the client must pass.
    pub chap: Option<Credentials>,
    /// CHAP the target answers with.
    pub mutual_chap: Option<Credentials>,
    /// Kernel, relative to the TFTP root.
    pub kernel: String,
    /// Initramfs, relative to the TFTP root.
    pub initrd: Option<String>,
    /// Extra kernel parameters.
    pub append: String,
    /// pxelinux, iPXE script, or by firmware.
    pub loader: Loader,
    /// Secrets on the kernel command line too.
    pub chap_in_cmdline: bool,
}

impl ClientConfig {
    /// `01-52-54-00-12-34-56`: pxelinux's and BOOTIF's spelling of the MAC.
    pub fn bootif(&self) -> String {
        format!("01-{}", format_mac(&self.mac).replace(':', "-"))
    }
}

fn ipv4(c: &mut Collector<'_>, key: &str, v: &toml::Spanned<String>) -> Option<Ipv4Addr> {
    let parsed = v.get_ref().trim().parse::<Ipv4Addr>().ok();
    if parsed.is_none() {
        c.error(
            v.span(),
            format!("{key}: {:?} is not an IPv4 address", v.get_ref()),
        );
    }
    parsed
}

pub(super) fn server(
    c: &mut Collector<'_>,
    s: &toml::Spanned<wire::Server>,
) -> Option<ServerConfig> {
    let w = s.get_ref();
    let address = ipv4(c, "server.address", &w.address)?;
    if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
        c.error(
            w.address.span(),
            format!("server.address {address} is not a unicast address clients can reach"),
        );
        return None;
    }
    let prefix = match &w.target_prefix {
        None => DEFAULT_TARGET_PREFIX.to_string(),
        Some(p) => {
            let prefix = p.get_ref().trim().trim_end_matches(':').to_string();
            if !valid_iscsi_name(&format!("{prefix}:x")) {
                c.error(
                    p.span(),
                    format!("server.target_prefix {prefix:?} does not start an iSCSI name (iqn.YYYY-MM.reversed.domain)"),
                );
                return None;
            }
            prefix
        }
    };
    Some(ServerConfig {
        address,
        interface: w.interface.as_ref().map(|i| i.get_ref().trim().to_string()),
        target_prefix: prefix,
    })
}

pub(super) fn dhcp(c: &mut Collector<'_>, d: &toml::Spanned<wire::Dhcp>) -> Option<DhcpConfig> {
    let w = d.get_ref();
    let before = c.errors();
    let subnet = match Cidr::parse(w.subnet.get_ref()) {
        Some(Cidr {
            addr: IpAddr::V4(a),
            prefix,
        }) if (8..=30).contains(&prefix) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some((Ipv4Addr::from(u32::from(a) & mask), prefix))
        }
        _ => {
            c.error(
                w.subnet.span(),
                format!(
                    "dhcp.subnet {:?} is not an IPv4 network with a prefix of 8 to 30 (10.0.0.0/24)",
                    w.subnet.get_ref()
                ),
            );
            None
        }
    };
    let router = w.router.as_ref().and_then(|r| ipv4(c, "dhcp.router", r));
    let dns: Vec<Ipv4Addr> = w
        .dns
        .iter()
        .filter_map(|d| ipv4(c, "dhcp.dns", d))
        .collect();
    let pool = match &w.pool {
        None => None,
        Some(p) => match p.get_ref().as_slice() {
            [a, b] => match (a.trim().parse::<Ipv4Addr>(), b.trim().parse::<Ipv4Addr>()) {
                (Ok(a), Ok(b)) if u32::from(a) <= u32::from(b) => Some((a, b)),
                _ => {
                    c.error(p.span(), "dhcp.pool must be [\"FIRST\", \"LAST\"] IPv4 addresses, FIRST not after LAST");
                    None
                }
            },
            _ => {
                c.error(p.span(), "dhcp.pool must be [\"FIRST\", \"LAST\"]");
                None
            }
        },
    };
    let mode = match w.mode.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("full") => DhcpMode::Full,
        Some("proxy") => DhcpMode::Proxy,
        Some(other) => {
            if let Some(m) = &w.mode {
                c.error(
                    m.span(),
                    format!("dhcp.mode {other:?} is not \"full\" or \"proxy\""),
                );
            }
            DhcpMode::Full
        }
    };
    if mode == DhcpMode::Proxy && pool.is_some() {
        if let Some(p) = &w.pool {
            c.error(
                p.span(),
                "dhcp.pool makes no sense with mode = \"proxy\": a proxyDHCP server hands out no addresses",
            );
        }
    }
    let lease_time = w.lease_time.as_ref().map_or(3600, |l| *l.get_ref());
    if let Some(l) = &w.lease_time {
        if !(60..=u64::from(u32::MAX)).contains(&lease_time) {
            c.error(l.span(), "dhcp.lease_time must be 60 seconds or more");
        }
    }
    let (network, prefix) = subnet?;
    let config = DhcpConfig {
        network,
        prefix,
        router,
        dns,
        domain: w.domain.as_ref().map(|d| d.get_ref().trim().to_string()),
        lease_time: Duration::from_secs(lease_time),
        pool,
        lease_file: w.lease_file.as_ref().map(|f| PathBuf::from(f.get_ref())),
        mode,
        bios_loader: w
            .bios_loader
            .as_ref()
            .map_or_else(|| "pxelinux.0".to_string(), |b| b.get_ref().clone()),
        efi_loader: w.efi_loader.as_ref().map(|e| e.get_ref().clone()),
        port: w.port.unwrap_or(67),
        ipv6_ra: w.ipv6_ra.unwrap_or(mode == DhcpMode::Full),
    };
    if let (Some(span), Some(ip)) = (&w.router, router) {
        if !config.contains(ip) {
            c.error(
                span.span(),
                format!("dhcp.router {ip} is outside dhcp.subnet {network}/{prefix}"),
            );
        }
    }
    if let (Some(p), Some((a, b))) = (&w.pool, pool) {
        if !config.contains(a) || !config.contains(b) {
            c.error(
                p.span(),
                format!("dhcp.pool {a}-{b} is not inside dhcp.subnet {network}/{prefix}"),
            );
        }
    }
    if let Some(f) = &w.lease_file {
        let dir = Path::new(f.get_ref())
            .parent()
            .filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = dir {
            if !dir.is_dir() {
                c.error(
                    f.span(),
                    format!("dhcp.lease_file: folder {} does not exist", dir.display()),
                );
            }
        }
    }
    (c.errors() == before).then_some(config)
}

pub(super) fn tftp(c: &mut Collector<'_>, t: &toml::Spanned<wire::Tftp>) -> Option<TftpConfig> {
    let w = t.get_ref();
    let before = c.errors();
    let root = PathBuf::from(w.root.get_ref());
    if !root.is_dir() {
        c.error(
            w.root.span(),
            format!("tftp.root {} is not a folder", root.display()),
        );
    }
    let max_blksize = w.max_blksize.as_ref().map_or(65464, |b| *b.get_ref());
    if let Some(b) = &w.max_blksize {
        if !(512..=65464).contains(&max_blksize) {
            c.error(b.span(), "tftp.max_blksize must be 512 to 65464 (RFC 2348)");
        }
    }
    let max_window = w.max_window.as_ref().map_or(64, |b| *b.get_ref());
    if let Some(b) = &w.max_window {
        if max_window == 0 {
            c.error(b.span(), "tftp.max_window must be 1 or more (RFC 7440)");
        }
    }
    let max_transfers = w.max_transfers.as_ref().map_or(64, |b| *b.get_ref());
    if let Some(b) = &w.max_transfers {
        if max_transfers == 0 {
            c.error(b.span(), "tftp.max_transfers must be 1 or more");
        }
    }
    let timeout_ms = w.timeout_ms.as_ref().map_or(1000, |b| *b.get_ref());
    if let Some(b) = &w.timeout_ms {
        if !(10..=255_000).contains(&timeout_ms) {
            c.error(b.span(), "tftp.timeout_ms must be 10 to 255000");
        }
    }
    (c.errors() == before).then(|| TftpConfig {
        root,
        port: w.port.unwrap_or(69),
        max_transfers,
        max_blksize,
        max_window,
        timeout: Duration::from_millis(timeout_ms),
        retries: w.retries.unwrap_or(5),
    })
}

/// The parts of the file a `[[client]]` is checked against.
pub(super) struct Context<'a> {
    pub server: Option<&'a ServerConfig>,
    pub dhcp: Option<&'a DhcpConfig>,
    pub tftp: Option<&'a TftpConfig>,
}

pub(super) fn clients(
    c: &mut Collector<'_>,
    entries: &[toml::Spanned<wire::Client>],
    ctx: &Context<'_>,
) -> Vec<ClientConfig> {
    let mut out: Vec<ClientConfig> = Vec::new();
    if !entries.is_empty() && ctx.server.is_none() {
        c.error(
            0..0,
            "[[client]] entries need [server] address = \"...\" (the address clients reach this server at)",
        );
    }
    for e in entries {
        let Some(client) = client(c, e, ctx) else {
            continue;
        };
        let w = e.get_ref();
        if out.iter().any(|o| o.name == client.name) {
            c.error(
                w.name.span(),
                format!("client name {:?} appears twice", client.name),
            );
        }
        if let Some(o) = out.iter().find(|o| o.mac == client.mac) {
            c.error(
                w.mac.span(),
                format!(
                    "client {}: mac {} is already client {}'s",
                    client.name,
                    w.mac.get_ref(),
                    o.name
                ),
            );
        }
        if let (Some(ip), Some(span)) = (client.ip, &w.ip) {
            if let Some(o) = out.iter().find(|o| o.ip == Some(ip)) {
                c.error(
                    span.span(),
                    format!(
                        "client {}: ip {ip} is already client {}'s",
                        client.name, o.name
                    ),
                );
            }
        }
        if let Some(o) = out
            .iter()
            .find(|o| o.initiator.eq_ignore_ascii_case(&client.initiator))
        {
            c.warn(
                w.initiator.span(),
                format!(
                    "client {}: initiator {} is also client {}'s; each machine should have its own",
                    client.name, client.initiator, o.name
                ),
            );
        }
        if let Some(o) = out.iter().find(|o| o.disk == client.disk) {
            c.error(
                w.disk.span(),
                format!(
                    "client {}: disk {} is already client {}'s; two machines writing one file system corrupt it",
                    client.name,
                    client.disk.display(),
                    o.name
                ),
            );
        }
        out.push(client);
    }
    out
}

fn client(
    c: &mut Collector<'_>,
    e: &toml::Spanned<wire::Client>,
    ctx: &Context<'_>,
) -> Option<ClientConfig> {
    let w = e.get_ref();
    let before = c.errors();
    let name = w.name.get_ref().trim().to_string();
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.' || ch == '_')
        && !name.starts_with(['-', '.']);
    if !name_ok {
        c.error(
            w.name.span(),
            format!("client.name {name:?} must be 1-63 letters, digits, '-', '_' or '.' (it names a target and a host)"),
        );
    }
    let mac = parse_mac(w.mac.get_ref().trim());
    if mac.is_none() {
        c.error(
            w.mac.span(),
            format!(
                "client {name}: mac {:?} is not a MAC address (52:54:00:12:34:56)",
                w.mac.get_ref()
            ),
        );
    }
    let ip = w.ip.as_ref().and_then(|i| ipv4(c, "client.ip", i));
    if let (Some(span), Some(ip)) = (&w.ip, ip) {
        if let Some(d) = ctx.dhcp {
            if !d.contains(ip) {
                c.error(
                    span.span(),
                    format!(
                        "client {name}: ip {ip} is outside dhcp.subnet {}/{}",
                        d.network, d.prefix
                    ),
                );
            }
            if let Some((a, b)) = d.pool {
                if (u32::from(a)..=u32::from(b)).contains(&u32::from(ip)) {
                    c.warn(
                        span.span(),
                        format!("client {name}: ip {ip} is inside dhcp.pool; the pool skips it"),
                    );
                }
            }
        }
        if ctx.server.is_some_and(|s| s.address == ip) {
            c.error(
                span.span(),
                format!("client {name}: ip {ip} is the server's own address"),
            );
        }
    }
    if ip.is_none() && w.ip.is_none() && ctx.dhcp.is_some_and(|d| d.mode == DhcpMode::Full) {
        c.error(
            w.name.span(),
            format!("client {name} has no ip: a full DHCP server needs the address to reserve (or set dhcp.mode = \"proxy\")"),
        );
    }
    let initiator = w.initiator.get_ref().trim().to_string();
    if !valid_iscsi_name(&initiator) {
        c.error(
            w.initiator.span(),
            format!("client {name}: initiator {initiator:?} is not an iSCSI name"),
        );
    }
    let target = match &w.target {
        Some(t) => {
            let t_name = t.get_ref().trim().to_string();
            if !valid_iscsi_name(&t_name) {
                c.error(
                    t.span(),
                    format!("client {name}: target {t_name:?} is not an iSCSI name"),
                );
            }
            t_name
        }
        None => format!(
            "{}:{}",
            ctx.server
                .map_or(DEFAULT_TARGET_PREFIX, |s| s.target_prefix.as_str()),
            name.to_ascii_lowercase()
        ),
    };
    let disk = PathBuf::from(w.disk.get_ref());
    match std::fs::metadata(&disk) {
        Err(e) => c.error(
            w.disk.span(),
            format!("client {name}: disk {}: {e}", disk.display()),
        ),
        Ok(m) if m.is_dir() => c.error(
            w.disk.span(),
            format!(
                "client {name}: disk {} is a folder, not an image or block device",
                disk.display()
            ),
        ),
        Ok(m) if m.permissions().readonly() => c.error(
            w.disk.span(),
            format!("client {name}: disk {} is not writable", disk.display()),
        ),
        Ok(_) => {}
    }
    let loader = match w.loader.as_ref().map(|l| l.get_ref().as_str()) {
        None | Some("auto") => Loader::Auto,
        Some("pxelinux") => Loader::Pxelinux,
        Some("ipxe") => Loader::Ipxe,
        Some(other) => {
            if let Some(l) = &w.loader {
                c.error(
                    l.span(),
                    format!(
                        "client {name}: loader {other:?} is not \"auto\", \"pxelinux\" or \"ipxe\""
                    ),
                );
            }
            Loader::Auto
        }
    };
    // Boot files must exist in the TFTP root (pxelinux's own files when a client may use it).
    if let Some(t) = ctx.tftp {
        let mut files = vec![(w.kernel.get_ref().as_str(), w.kernel.span())];
        if let Some(i) = &w.initrd {
            files.push((i.get_ref().as_str(), i.span()));
        }
        for (file, span) in files {
            if !boot_file_ok(&t.root, file) {
                c.error(
                    span,
                    format!(
                        "client {name}: {file} is not a file inside tftp.root {}",
                        t.root.display()
                    ),
                );
            }
        }
        if loader != Loader::Ipxe {
            let bios = ctx.dhcp.map_or("pxelinux.0", |d| d.bios_loader.as_str());
            for file in [bios, "ldlinux.c32"] {
                if !boot_file_ok(&t.root, file) {
                    c.error(
                        w.name.span(),
                        format!(
                            "client {name} may boot pxelinux, but {file} is missing from tftp.root {} (Debian: /usr/lib/PXELINUX/pxelinux.0, /usr/lib/syslinux/modules/bios/ldlinux.c32)",
                            t.root.display()
                        ),
                    );
                }
            }
        }
    } else {
        c.error(
            w.kernel.span(),
            format!(
                "client {name}: a [tftp] section with root = \"...\" is needed to serve its kernel"
            ),
        );
    }
    let (chap, mutual_chap) = super::chap_pair(
        c,
        &format!("client {name}: "),
        e.span(),
        &w.chap,
        &w.mutual_chap,
    );
    let append = w.append.clone().unwrap_or_default();
    if append.contains('\n') {
        c.error(
            w.name.span(),
            format!("client {name}: append must be one line"),
        );
    }
    if c.errors() != before {
        return None;
    }
    let hostname = w
        .hostname
        .as_ref()
        .map_or_else(|| name.clone(), |h| h.get_ref().trim().to_string());
    Some(ClientConfig {
        name,
        mac: mac?,
        ip,
        hostname,
        initiator,
        target,
        disk,
        chap,
        mutual_chap,
        kernel: w.kernel.get_ref().clone(),
        initrd: w.initrd.as_ref().map(|i| i.get_ref().clone()),
        append,
        loader,
        chap_in_cmdline: w.chap_in_cmdline,
    })
}

/// A relative path without '..' naming a regular file under `root`.
fn boot_file_ok(root: &Path, file: &str) -> bool {
    let rel = Path::new(file);
    !rel.is_absolute()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        && root.join(rel).is_file()
}

/// The iSCSI target, LUN and ACL of each client.
pub(super) fn expand_clients(clients: &[ClientConfig]) -> Vec<TargetConfig> {
    clients
        .iter()
        .map(|cl| TargetConfig {
            name: cl.target.clone(),
            alias: Some(cl.name.clone()),
            luns: vec![LunConfig {
                id: 0,
                path: cl.disk.clone(),
                read_only: false,
                write_cache: true,
                serial: None,
                removable: false,
            }],
            acls: vec![Acl {
                initiator: Some(cl.initiator.clone()),
                address: cl.ip.map(|ip| Cidr {
                    addr: IpAddr::V4(ip),
                    prefix: 32,
                }),
                chap: cl.chap.clone(),
                mutual_chap: cl.mutual_chap.clone(),
            }],
        })
        .collect()
}
