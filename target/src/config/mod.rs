//! The configuration file: one TOML file for the whole server.
//!
//! [`Config::parse`] turns the text into validated types or a list of [`Problem`]s, each with the
//! line and column it is about, so that `pxeroot-target check` can explain every mistake at once
//! instead of stopping at the first. Secrets never appear in a message.

mod netboot;
mod wire;

pub use netboot::{
    ClientConfig, DhcpConfig, DhcpMode, Loader, ServerConfig, TftpConfig, DEFAULT_TARGET_PREFIX,
};

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use pxeroot_proto::chap::Credentials;

/// The default iSCSI portal port.
pub const ISCSI_PORT: u16 = 3260;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// iSCSI listener settings.
    pub iscsi: IscsiConfig,
    /// The targets, in file order: `[[target]]` entries, then one per `[[client]]`.
    pub targets: Vec<TargetConfig>,
    /// `[server]`.
    pub server: Option<ServerConfig>,
    /// `[dhcp]`: no DHCP server when absent.
    pub dhcp: Option<DhcpConfig>,
    /// `[tftp]`: no TFTP server when absent.
    pub tftp: Option<TftpConfig>,
    /// `[[client]]` entries.
    pub clients: Vec<ClientConfig>,
}

/// `[iscsi]`.
#[derive(Debug, Clone)]
pub struct IscsiConfig {
    /// Portals to listen on.
    pub listen: Vec<SocketAddr>,
    /// Idle seconds before a NOP-In ping (0: never).
    pub nop_interval: u64,
}

/// One `[[target]]`.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// The iSCSI name (iqn., eui. or naa.).
    pub name: String,
    /// TargetAlias.
    pub alias: Option<String>,
    /// Logical units.
    pub luns: Vec<LunConfig>,
    /// Who may log in.
    pub acls: Vec<Acl>,
}

/// One `[[target.lun]]`.
#[derive(Debug, Clone)]
pub struct LunConfig {
    /// LUN number.
    pub id: u64,
    /// Image file or block device.
    pub path: PathBuf,
    /// Refuse writes.
    pub read_only: bool,
    /// Write-back cache (true) or write-through.
    pub write_cache: bool,
    /// Unit serial number; derived from the target name and LUN when absent.
    pub serial: Option<String>,
    /// Report a removable medium.
    pub removable: bool,
}

/// One `[[target.acl]]`.
#[derive(Debug, Clone)]
pub struct Acl {
    /// `None` for "*" (any initiator).
    pub initiator: Option<String>,
    /// Source address restriction.
    pub address: Option<Cidr>,
    /// CHAP the initiator must pass.
    pub chap: Option<Credentials>,
    /// Credentials the target answers mutual CHAP with.
    pub mutual_chap: Option<Credentials>,
}

impl Acl {
    /// Whether this entry covers `initiator` connecting from `peer`.
    pub fn matches(&self, initiator: &str, peer: IpAddr) -> bool {
        let name_ok = match &self.initiator {
            None => true,
            Some(name) => name.eq_ignore_ascii_case(initiator),
        };
        name_ok && self.address.as_ref().is_none_or(|c| c.contains(peer))
    }
}

/// An address with a prefix length (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parse `10.0.0.0/24`, `fd00::/8` or a bare address.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside (IPv4-mapped IPv6 peers compare as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(net: u128, addr: u128, prefix: u8, bits: u32) -> bool {
    let host_bits = bits - u32::from(prefix);
    let shift = |v: u128| v.checked_shr(host_bits).unwrap_or(0);
    shift(net) == shift(addr)
}

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The server refuses to start.
    Error,
    /// Allowed, but probably not what was meant.
    Warning,
}

/// One thing wrong with the file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "line {}, column {}: {kind}: {}",
            self.line, self.column, self.message
        )
    }
}

/// The outcome of reading a file: a config if there was no error, and every problem found.
#[derive(Debug)]
pub struct Checked {
    /// The configuration, when no problem is an error.
    pub config: Option<Config>,
    /// Errors and warnings in file order.
    pub problems: Vec<Problem>,
}

struct Collector<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Collector<'_> {
    fn at(&mut self, severity: Severity, span: std::ops::Range<usize>, message: String) {
        let before = self.text.get(..span.start).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count() + 1)
            .unwrap_or(1);
        self.problems.push(Problem {
            severity,
            line,
            column,
            message,
        });
    }
    fn error(&mut self, span: std::ops::Range<usize>, message: impl Into<String>) {
        self.at(Severity::Error, span, message.into());
    }
    fn warn(&mut self, span: std::ops::Range<usize>, message: impl Into<String>) {
        self.at(Severity::Warning, span, message.into());
    }
    fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }
}

impl Config {
    /// Read and validate a file.
    pub fn load(path: &Path) -> Checked {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text),
            Err(e) => Checked {
                config: None,
                problems: vec![Problem {
                    severity: Severity::Error,
                    line: 0,
                    column: 0,
                    message: format!("cannot read {}: {e}", path.display()),
                }],
            },
        }
    }

    /// Validate configuration text. File paths named in it are checked on this machine.
    pub fn parse(text: &str) -> Checked {
        let mut c = Collector {
            text,
            problems: Vec::new(),
        };
        let file: wire::File = match toml::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                c.error(span, e.message().to_string());
                return Checked {
                    config: None,
                    problems: c.problems,
                };
            }
        };
        let iscsi = iscsi_section(&mut c, file.iscsi.as_ref());
        let mut targets = Vec::new();
        for t in &file.target {
            if let Some(target) = target(&mut c, t) {
                if targets
                    .iter()
                    .any(|o: &TargetConfig| o.name.eq_ignore_ascii_case(&target.name))
                {
                    c.error(
                        t.get_ref().name.span(),
                        format!("target name {:?} appears twice", target.name),
                    );
                }
                targets.push(target);
            }
        }
        let server = file
            .server
            .as_ref()
            .and_then(|s| netboot::server(&mut c, s));
        let dhcp = file.dhcp.as_ref().and_then(|d| netboot::dhcp(&mut c, d));
        let tftp = file.tftp.as_ref().and_then(|t| netboot::tftp(&mut c, t));
        if (file.dhcp.is_some() || file.tftp.is_some()) && file.server.is_none() {
            c.error(
                0..0,
                "[dhcp] and [tftp] need [server] address = \"...\" (this server on the boot network)",
            );
        }
        if let (Some(s), Some(d)) = (&server, &dhcp) {
            if !d.contains(s.address) && d.mode == DhcpMode::Full {
                c.warn(
                    0..0,
                    format!(
                        "server.address {} is outside dhcp.subnet {}/{}: replies go through a relay",
                        s.address, d.network, d.prefix
                    ),
                );
            }
        }
        let ctx = netboot::Context {
            server: server.as_ref(),
            dhcp: dhcp.as_ref(),
            tftp: tftp.as_ref(),
        };
        let clients = netboot::clients(&mut c, &file.client, &ctx);
        for t in netboot::expand_clients(&clients) {
            if targets.iter().any(|o| o.name.eq_ignore_ascii_case(&t.name)) {
                let client = t.alias.clone().unwrap_or_default();
                let span = file
                    .client
                    .iter()
                    .find(|e| e.get_ref().name.get_ref().trim() == client)
                    .map_or(0..0, |e| e.get_ref().name.span());
                c.error(
                    span,
                    format!(
                        "client {client}'s target {} is also a [[target]] or another client's",
                        t.name
                    ),
                );
            }
            targets.push(t);
        }
        if targets.is_empty() {
            c.warn(
                0..0,
                "no [[target]] or [[client]]: the iSCSI server will serve nothing",
            );
        }
        let ok = c.errors() == 0;
        Checked {
            config: ok.then_some(Config {
                iscsi,
                targets,
                server,
                dhcp,
                tftp,
                clients,
            }),
            problems: c.problems,
        }
    }
}

fn iscsi_section(
    c: &mut Collector<'_>,
    section: Option<&toml::Spanned<wire::Iscsi>>,
) -> IscsiConfig {
    let default_listen = vec![SocketAddr::from(([0, 0, 0, 0], ISCSI_PORT))];
    let Some(section) = section else {
        return IscsiConfig {
            listen: default_listen,
            nop_interval: 30,
        };
    };
    let s = section.get_ref();
    let mut listen = Vec::new();
    for l in s.listen.iter().flatten() {
        match parse_portal(l.get_ref()) {
            Some(addr) if listen.contains(&addr) => c.error(l.span(), format!("listen address {addr} appears twice")),
            Some(addr) => listen.push(addr),
            None => c.error(
                l.span(),
                format!("iscsi.listen: {:?} is not an address with port (\"0.0.0.0:3260\", \"[::]:3260\")", l.get_ref()),
            ),
        }
    }
    if s.listen.is_none() {
        listen = default_listen;
    } else if listen.is_empty() && !c.problems.iter().any(|p| p.severity == Severity::Error) {
        c.warn(
            section.span(),
            "iscsi.listen is empty: the iSCSI server will not listen",
        );
    }
    IscsiConfig {
        listen,
        nop_interval: s.nop_interval.unwrap_or(30),
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, or a bare address (port 3260).
fn parse_portal(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().or_else(|| {
        s.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, ISCSI_PORT))
    })
}

/// RFC 7143 §4.2.7: iqn.yyyy-mm.reverse.domain[:anything], eui.<16 hex>, naa.<16 or 32 hex>.
pub fn valid_iscsi_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if name.len() > 223 || name.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        return false;
    }
    if let Some(rest) = lower.strip_prefix("iqn.") {
        let b = rest.as_bytes();
        return b.len() > 8
            && b.get(..4).is_some_and(|y| y.iter().all(u8::is_ascii_digit))
            && b.get(4) == Some(&b'-')
            && b.get(5..7)
                .is_some_and(|m| m.iter().all(u8::is_ascii_digit))
            && b.get(7) == Some(&b'.');
    }
    let hex = |s: &str, lens: &[usize]| {
        lens.contains(&s.len()) && s.chars().all(|ch| ch.is_ascii_hexdigit())
    };
    if let Some(rest) = lower.strip_prefix("eui.") {
        return hex(rest, &[16]);
    }
    if let Some(rest) = lower.strip_prefix("naa.") {
        return hex(rest, &[16, 32]);
    }
    false
}

fn target(c: &mut Collector<'_>, t: &toml::Spanned<wire::Target>) -> Option<TargetConfig> {
    let w = t.get_ref();
    let name = w.name.get_ref().trim().to_string();
    let mut ok = true;
    if !valid_iscsi_name(&name) {
        c.error(
            w.name.span(),
            format!("target.name {name:?} is not an iSCSI name (iqn.YYYY-MM.reversed.domain:id, eui. or naa.)"),
        );
        ok = false;
    }
    let mut luns: Vec<LunConfig> = Vec::new();
    for l in &w.lun {
        let lw = l.get_ref();
        let id = *lw.id.get_ref();
        if id >= 16384 {
            c.error(
                lw.id.span(),
                format!("target.lun.id {id} is too large (0..16383)"),
            );
            ok = false;
        } else if luns.iter().any(|o| o.id == id) {
            c.error(
                lw.id.span(),
                format!("LUN {id} appears twice in target {name}"),
            );
            ok = false;
        }
        let path = PathBuf::from(lw.path.get_ref());
        match std::fs::metadata(&path) {
            Err(e) => {
                c.error(
                    lw.path.span(),
                    format!("target.lun.path {}: {e}", path.display()),
                );
                ok = false;
            }
            Ok(m) if m.is_dir() => {
                c.error(
                    lw.path.span(),
                    format!(
                        "target.lun.path {} is a directory, not an image or block device",
                        path.display()
                    ),
                );
                ok = false;
            }
            Ok(m) => {
                if !lw.read_only && m.permissions().readonly() {
                    c.error(
                        lw.path.span(),
                        format!(
                            "target.lun.path {} is not writable; set read_only = true",
                            path.display()
                        ),
                    );
                    ok = false;
                }
                if m.is_file() && m.len() % 512 != 0 {
                    c.warn(
                        lw.path.span(),
                        format!(
                            "{} is {} bytes, not a multiple of 512: the tail is not served",
                            path.display(),
                            m.len()
                        ),
                    );
                }
            }
        }
        luns.push(LunConfig {
            id,
            path,
            read_only: lw.read_only,
            write_cache: lw.write_cache.unwrap_or(true),
            serial: lw.serial.as_ref().map(|s| s.get_ref().clone()),
            removable: lw.removable,
        });
    }
    if luns.is_empty() {
        c.error(
            w.name.span(),
            format!("target {name} has no [[target.lun]]"),
        );
        ok = false;
    }
    let mut acls = Vec::new();
    for a in &w.acl {
        match acl(c, a) {
            Some(acl) => acls.push(acl),
            None => ok = false,
        }
    }
    if w.acl.is_empty() {
        c.warn(
            w.name.span(),
            format!("target {name} has no [[target.acl]]: no initiator may log in"),
        );
    }
    ok.then(|| TargetConfig {
        name,
        alias: w.alias.clone(),
        luns,
        acls,
    })
}

fn acl(c: &mut Collector<'_>, a: &toml::Spanned<wire::Acl>) -> Option<Acl> {
    let w = a.get_ref();
    let mut ok = true;
    let initiator = w.initiator.get_ref().trim();
    let initiator = if initiator == "*" {
        None
    } else {
        if !valid_iscsi_name(initiator) {
            c.error(
                w.initiator.span(),
                format!("target.acl.initiator {initiator:?} is not an iSCSI name or \"*\""),
            );
            ok = false;
        }
        Some(initiator.to_string())
    };
    let address = match &w.address {
        None => None,
        Some(s) => {
            let parsed = Cidr::parse(s.get_ref());
            if parsed.is_none() {
                c.error(
                    s.span(),
                    format!(
                        "target.acl.address {:?} is not an address or CIDR (10.0.0.0/24)",
                        s.get_ref()
                    ),
                );
                ok = false;
            }
            parsed
        }
    };
    let before = c.errors();
    let (chap, mutual_chap) = chap_pair(c, "target.acl.", a.span(), &w.chap, &w.mutual_chap);
    ok &= c.errors() == before;
    ok.then_some(Acl {
        initiator,
        address,
        chap,
        mutual_chap,
    })
}

/// An entry's `chap` and `mutual_chap`, checked: lengths, RFC 7143's 12-byte minimum (a
/// warning), different secrets in the two directions, mutual only with one-way. `prefix` names
/// the entry in messages ("target.acl." or "client NAME: "); secrets never appear in them.
fn chap_pair(
    c: &mut Collector<'_>,
    prefix: &str,
    entry: std::ops::Range<usize>,
    chap: &Option<toml::Spanned<wire::Chap>>,
    mutual: &Option<toml::Spanned<wire::Chap>>,
) -> (Option<Credentials>, Option<Credentials>) {
    let mut creds = |field: &str, chap: &Option<toml::Spanned<wire::Chap>>| {
        let chap = chap.as_ref()?;
        let w = chap.get_ref();
        if w.user.is_empty() || w.user.len() > 255 {
            c.error(
                chap.span(),
                format!("{prefix}{field}.user must be 1 to 255 characters"),
            );
        }
        if w.secret.is_empty() || w.secret.len() > 255 {
            c.error(
                chap.span(),
                format!("{prefix}{field}.secret must be 1 to 255 bytes"),
            );
        } else if w.secret.len() < 12 {
            c.warn(
                chap.span(),
                format!(
                    "{prefix}{field}.secret is {} bytes; RFC 7143 asks for at least 12",
                    w.secret.len()
                ),
            );
        }
        Some(Credentials::new(
            w.user.clone(),
            w.secret.as_bytes().to_vec(),
        ))
    };
    let one = creds("chap", chap);
    let two = creds("mutual_chap", mutual);
    if let (Some(a), Some(b)) = (chap, mutual) {
        if a.get_ref().secret == b.get_ref().secret {
            c.error(
                b.span(),
                format!("{prefix}mutual_chap.secret equals chap.secret; the two directions need different secrets"),
            );
        }
    }
    if mutual.is_some() && chap.is_none() {
        c.error(
            entry,
            format!("{prefix}mutual_chap needs chap (the initiator authenticates first)"),
        );
    }
    (one, two)
}

#[cfg(test)]
mod tests;
