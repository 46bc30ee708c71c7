//! The kernel command line: every iSCSI boot parameter of Debian's initramfs-tools script, of
//! dracut's iscsi module and of RFC 4173, plus pxeroot's own `pxeroot.*` parameters.
//!
//! [`parse`] is pure: it turns the text of `/proc/cmdline` into [`BootArgs`] and never touches
//! the system, so that every form is table-tested (`cmdline/tests.rs`) and fuzzed. Merging with
//! the other configuration sources happens in [`crate::config`].
//!
//! # Splitting
//! As the kernel does it: parameters are separated by white space, double quotes group white
//! space (`iscsi_target_ip="192.0.2.1 192.0.2.2"`), a quote opening the value or the whole
//! parameter is removed together with the matching final quote, and `--` ends the kernel's
//! parameters (what follows is init's argument list and is not read). Names are case-sensitive.
//! A parameter given twice keeps its last value, except `root=iscsi:`/`netroot=iscsi:`, `ip=`
//! and `rd.iscsi.param=`, which accumulate. Unknown parameters are ignored; unknown `rd.iscsi.*`
//! and `pxeroot.*` names produce a warning so that typos show on the console.
//!
//! # Parameters
//! * Debian: `iscsi_initiator`, `iscsi_target_name`, `iscsi_target_ip` (a list separated by
//!   spaces or commas), `iscsi_target_port`, `iscsi_target_group`, `iscsi_username`,
//!   `iscsi_password`, `iscsi_in_username`, `iscsi_in_password`, `iscsi_auto` (use iBFT),
//!   `root=iscsi:...`.
//! * dracut: `rd.iscsi.initiator`, `rd.iscsi.target.name`, `rd.iscsi.target.ip`,
//!   `rd.iscsi.target.port`, `rd.iscsi.target.group`, `rd.iscsi.username`, `rd.iscsi.password`,
//!   `rd.iscsi.in.username`, `rd.iscsi.in.password` (the `iscsi_*` names are their aliases, the
//!   later one on the line wins), `rd.iscsi.firmware` / `iscsi_firmware` (use iBFT),
//!   `rd.iscsi.login_retry_max`, `rd.iscsi.param=node.key=value`, `netroot=iscsi:...`,
//!   `netroot=dhcp` / `root=dhcp` (root path from DHCP option 17), `rd.bootif=0`.
//! * network: `BOOTIF=01-aa-bb-cc-dd-ee-ff`, `ip=` (see [`ip`]).
//! * pxeroot: see [`PxerootArgs`].
//!
//! # LUNs
//! RFC 4173 writes LUNs in hexadecimal (`a` is 10, `1-7` is a two-level LUN); Debian and dracut
//! read the same field as decimal. On the command line pxeroot reads a LUN made of decimal
//! digits only as decimal (what Debian and dracut users mean) and anything with hex letters or
//! `-` groups as RFC 4173; `pxeroot.lun_format=rfc4173` or `=decimal` forces one reading. The DHCP
//! root path is always RFC 4173 (see [`pxeroot_proto::root_path`]).
//!
//! # Secrets
//! Passwords are kept in [`Secret`] (redacting `Debug`) as soon as they are split off, and no
//! [`CmdlineError`] or warning quotes a value that may hold one.

mod ip;
mod netroot;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv6Addr};

use pxeroot_proto::chap::{Credentials, Secret};
use pxeroot_proto::root_path::{Server, MAX_NAME_LEN};
use pxeroot_proto::Lun;

#[allow(unused_imports)] // StaticIp is part of the API later phases use.
pub use ip::{Autoconf, IpConfig, StaticIp};
pub use netroot::IscsiRoot;

/// Default login retry budget in seconds (`pxeroot.timeout`).
pub const DEFAULT_TIMEOUT_SECS: u32 = 120;
/// Default time to wait for a DHCP lease in seconds (`pxeroot.dhcp_timeout`).
pub const DEFAULT_DHCP_TIMEOUT_SECS: u32 = 30;
/// Default time to wait for carrier in seconds (`pxeroot.link_timeout`).
pub const DEFAULT_LINK_TIMEOUT_SECS: u32 = 10;
/// Upper bound for any `pxeroot.*` duration (one day), so arithmetic on them cannot overflow.
pub const MAX_TIMEOUT_SECS: u32 = 86_400;

/// A malformed boot parameter: names the parameter and what is wrong, never its secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad boot parameter {param}: {problem}")]
pub struct CmdlineError {
    /// The parameter name as written (`iscsi_target_port`, `root`, `ip`, ...).
    pub param: String,
    /// What is wrong with it.
    pub problem: String,
}

impl CmdlineError {
    pub(crate) fn new(param: impl Into<String>, problem: impl Into<String>) -> Self {
        CmdlineError {
            param: param.into(),
            problem: problem.into(),
        }
    }
}

/// How command-line LUNs are read (`pxeroot.lun_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LunFormat {
    /// Decimal if only digits (Debian, dracut), else RFC 4173 hexadecimal groups.
    #[default]
    Auto,
    /// Always RFC 4173 hexadecimal groups.
    Rfc4173,
    /// Always decimal.
    Decimal,
}

/// The iSCSI settings that Debian's `iscsi_*` variables, dracut's `rd.iscsi.*` parameters and
/// `/etc/iscsi.initramfs` share. `None` / empty means "not given here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IscsiArgs {
    /// Initiator name (`iscsi_initiator`, `rd.iscsi.initiator`, ISCSI_INITIATOR).
    pub initiator: Option<String>,
    /// Target name (`iscsi_target_name`, `rd.iscsi.target.name`).
    pub target_name: Option<String>,
    /// Target portals' addresses (`iscsi_target_ip`, `rd.iscsi.target.ip`), tried in order.
    pub target_ips: Option<Vec<Server>>,
    /// Port for `target_ips` (`iscsi_target_port`, `rd.iscsi.target.port`).
    pub target_port: Option<u16>,
    /// Target portal group tag (`iscsi_target_group`, `rd.iscsi.target.group`).
    pub target_group: Option<u16>,
    /// CHAP user name the initiator presents.
    pub username: Option<String>,
    /// CHAP secret the initiator proves.
    pub password: Option<Secret>,
    /// CHAP user name the target presents (mutual CHAP).
    pub in_username: Option<String>,
    /// CHAP secret the target proves (mutual CHAP).
    pub in_password: Option<Secret>,
    /// Log in to the targets the iBFT describes (`iscsi_auto`, `rd.iscsi.firmware`).
    pub use_ibft: Option<bool>,
    /// dracut's `rd.iscsi.login_retry_max`: login attempts per portal.
    pub login_retry_max: Option<u32>,
    /// `rd.iscsi.param=` settings, in order.
    pub params: Vec<NodeParam>,
}

/// One `rd.iscsi.param=node.key=value` (open-iscsi node record syntax). Keys that change what
/// pxeroot does are decoded; the others are kept by name only (their value may be a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeParam {
    /// `node.session.initial_login_retry_max`.
    InitialLoginRetryMax(u32),
    /// `node.session.auth.authmethod`: `true` for CHAP, `false` for None.
    AuthMethodChap(bool),
    /// `node.session.auth.username`.
    Username(String),
    /// `node.session.auth.password`.
    Password(Secret),
    /// `node.session.auth.username_in`.
    InUsername(String),
    /// `node.session.auth.password_in`.
    InPassword(Secret),
    /// Any other key: accepted but not applied (its value is dropped unread).
    Ignored(String),
}

/// pxeroot's own parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxerootArgs {
    /// `pxeroot.timeout=SECONDS`: total budget for reaching and logging in to the target
    /// (default 120; `0` means one attempt per portal).
    pub timeout_secs: u32,
    /// `pxeroot.dhcp_timeout=SECONDS`: how long to wait for a DHCP lease (default 30).
    pub dhcp_timeout_secs: u32,
    /// `pxeroot.link_timeout=SECONDS`: how long to wait for carrier (default 10).
    pub link_timeout_secs: u32,
    /// `pxeroot.lun=LUN`: the boot LUN when no `root=iscsi:` names one.
    pub lun: Option<Lun>,
    /// `pxeroot.lun_format=auto|rfc4173|decimal`.
    pub lun_format: LunFormat,
    /// `pxeroot.debug[=0|1]`: verbose console output (never secrets).
    pub debug: bool,
}

impl Default for PxerootArgs {
    fn default() -> Self {
        PxerootArgs {
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            dhcp_timeout_secs: DEFAULT_DHCP_TIMEOUT_SECS,
            link_timeout_secs: DEFAULT_LINK_TIMEOUT_SECS,
            lun: None,
            lun_format: LunFormat::Auto,
            debug: false,
        }
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Mac {
    /// Parses six hex bytes separated by `:` or `-`.
    pub fn parse(s: &str) -> Option<Mac> {
        let sep = if s.contains(':') { ':' } else { '-' };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(sep) {
            let slot = out.get_mut(n)?;
            if part.is_empty() || part.len() > 2 {
                return None;
            }
            *slot = u8::from_str_radix(part, 16).ok()?;
            n += 1;
        }
        (n == 6).then_some(Mac(out))
    }
}

/// Everything the command line says about booting from iSCSI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootArgs {
    /// `iscsi_*` and `rd.iscsi.*`.
    pub iscsi: IscsiArgs,
    /// `root=iscsi:` and `netroot=iscsi:` specs, in order.
    pub roots: Vec<IscsiRoot>,
    /// `netroot=dhcp` / `root=dhcp`: the root path comes from DHCP option 17.
    pub root_from_dhcp: bool,
    /// `BOOTIF=`: the MAC of the NIC the firmware booted from (cleared by `rd.bootif=0`).
    pub bootif: Option<Mac>,
    /// `ip=` settings, in order.
    pub ip: Vec<IpConfig>,
    /// `pxeroot.*`.
    pub pxeroot: PxerootArgs,
    /// Things worth telling the admin that do not stop the boot (never contain secrets).
    pub warnings: Vec<String>,
}

/// Splits a command line the way the kernel does (see the module docs).
pub fn split(cmdline: &str) -> Vec<(&str, Option<&str>)> {
    let mut out = Vec::new();
    let mut rest = cmdline.trim_start();
    while !rest.is_empty() {
        let mut in_quote = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if c == '"' {
                in_quote = !in_quote;
            } else if c.is_whitespace() && !in_quote {
                end = i;
                break;
            }
        }
        let (arg, tail) = rest.split_at(end);
        rest = tail.trim_start();
        if arg == "--" {
            break;
        }
        out.push(unquote(arg));
    }
    out
}

fn strip_pair(s: &str) -> &str {
    match s.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
        None => s,
    }
}

fn unquote(arg: &str) -> (&str, Option<&str>) {
    let arg = strip_pair(arg);
    match arg.split_once('=') {
        Some((k, v)) => (k, Some(strip_pair(v))),
        None => (arg, None),
    }
}

/// Parses a kernel command line.
///
/// # Errors
/// [`CmdlineError`] for the first malformed parameter, naming it and what is wrong.
pub fn parse(cmdline: &str) -> Result<BootArgs, CmdlineError> {
    let args = split(cmdline);
    let mut boot = BootArgs::default();
    // pxeroot.lun_format decides how LUNs elsewhere on the line read, so it goes first.
    for (key, value) in &args {
        if *key == "pxeroot.lun_format" {
            boot.pxeroot.lun_format = parse_lun_format(key, *value)?;
        }
    }
    let mut bootif_disabled = false;
    for (key, value) in args {
        match key {
            "root" | "netroot" => parse_root(&mut boot, key, value)?,
            "BOOTIF" => boot.bootif = Some(parse_bootif(key, value)?),
            "rd.bootif" => bootif_disabled = !parse_bool(key, value)?,
            "ip" => boot.ip.push(ip::parse(need(key, value)?)?),
            "pxeroot.lun_format" => {}
            k if k.starts_with("pxeroot.") => parse_pxeroot(&mut boot, key, value)?,
            _ => {
                if !set_iscsi_arg(&mut boot.iscsi, key, value)?
                    && key.starts_with("rd.iscsi.")
                {
                    boot.warnings.push(format!("{key} is not supported, ignored"));
                }
            }
        }
    }
    if bootif_disabled {
        boot.bootif = None;
    }
    if boot.iscsi.password.is_some()
        || boot.iscsi.in_password.is_some()
        || boot.roots.iter().any(|r| r.chap.is_some())
    {
        boot.warnings.push(
            "a CHAP password on the kernel command line is readable by every user in \
             /proc/cmdline; prefer /etc/iscsi.initramfs in the initramfs or the iBFT"
                .into(),
        );
    }
    Ok(boot)
}

fn parse_root(boot: &mut BootArgs, key: &str, value: Option<&str>) -> Result<(), CmdlineError> {
    let Some(v) = value else {
        return Ok(());
    };
    if v == "dhcp" {
        boot.root_from_dhcp = true;
    } else if v.len() >= 6 && v.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("iscsi:")) {
        let root = netroot::parse(key, v, boot.pxeroot.lun_format)?;
        boot.roots.push(root);
    }
    // root=/dev/..., root=UUID=..., netroot=nfs:...: not ours.
    Ok(())
}

fn parse_pxeroot(boot: &mut BootArgs, key: &str, value: Option<&str>) -> Result<(), CmdlineError> {
    let p = &mut boot.pxeroot;
    match key {
        "pxeroot.timeout" => p.timeout_secs = parse_secs(key, value)?,
        "pxeroot.dhcp_timeout" => p.dhcp_timeout_secs = parse_secs(key, value)?,
        "pxeroot.link_timeout" => p.link_timeout_secs = parse_secs(key, value)?,
        "pxeroot.debug" => p.debug = parse_bool(key, value)?,
        "pxeroot.lun" => p.lun = Some(parse_lun(key, need(key, value)?, p.lun_format)?),
        _ => boot
            .warnings
            .push(format!("unknown parameter {key}, ignored")),
    }
    Ok(())
}

/// Applies one `iscsi_*` / `rd.iscsi.*` parameter; `false` if `key` is not one.
pub(crate) fn set_iscsi_arg(
    a: &mut IscsiArgs,
    key: &str,
    value: Option<&str>,
) -> Result<bool, CmdlineError> {
    match key {
        "iscsi_initiator" | "rd.iscsi.initiator" => {
            a.initiator = Some(parse_iscsi_name(key, need(key, value)?)?);
        }
        "iscsi_target_name" | "rd.iscsi.target.name" => {
            a.target_name = Some(parse_iscsi_name(key, need(key, value)?)?);
        }
        "iscsi_target_ip" | "rd.iscsi.target.ip" => {
            a.target_ips = Some(parse_ip_list(key, need(key, value)?)?);
        }
        "iscsi_target_port" | "rd.iscsi.target.port" => {
            a.target_port = Some(parse_port(key, need(key, value)?)?);
        }
        "iscsi_target_group" | "rd.iscsi.target.group" => {
            a.target_group = Some(parse_num::<u16>(key, need(key, value)?, "a number 0-65535")?);
        }
        "iscsi_username" | "rd.iscsi.username" => a.username = Some(parse_user(key, value)?),
        "iscsi_password" | "rd.iscsi.password" => a.password = Some(parse_secret(key, value)?),
        "iscsi_in_username" | "rd.iscsi.in.username" => {
            a.in_username = Some(parse_user(key, value)?);
        }
        "iscsi_in_password" | "rd.iscsi.in.password" => {
            a.in_password = Some(parse_secret(key, value)?);
        }
        "iscsi_auto" | "iscsi_firmware" | "rd.iscsi.firmware" => {
            a.use_ibft = Some(parse_bool(key, value)?);
        }
        "rd.iscsi.login_retry_max" => {
            a.login_retry_max = Some(parse_num::<u32>(key, need(key, value)?, "a count")?);
        }
        "rd.iscsi.param" => a.params.push(parse_node_param(key, need(key, value)?)?),
        _ => return Ok(false),
    }
    Ok(true)
}

pub(crate) fn need<'a>(key: &str, value: Option<&'a str>) -> Result<&'a str, CmdlineError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(CmdlineError::new(key, "needs a value")),
    }
}

pub(crate) fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, CmdlineError> {
    match value {
        None | Some("1" | "yes" | "y" | "true" | "on") => Ok(true),
        Some("0" | "no" | "n" | "false" | "off") => Ok(false),
        Some(_) => Err(CmdlineError::new(key, "must be 0 or 1 (or no value)")),
    }
}

fn parse_lun_format(key: &str, value: Option<&str>) -> Result<LunFormat, CmdlineError> {
    match value {
        Some("auto") => Ok(LunFormat::Auto),
        Some("rfc4173" | "hex") => Ok(LunFormat::Rfc4173),
        Some("decimal") => Ok(LunFormat::Decimal),
        _ => Err(CmdlineError::new(key, "must be auto, rfc4173 or decimal")),
    }
}

pub(crate) fn parse_num<T: std::str::FromStr>(
    key: &str,
    v: &str,
    what: &str,
) -> Result<T, CmdlineError> {
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CmdlineError::new(key, format!("{v:?} is not {what}")));
    }
    v.parse()
        .map_err(|_| CmdlineError::new(key, format!("{v:?} is not {what}")))
}

fn parse_secs(key: &str, value: Option<&str>) -> Result<u32, CmdlineError> {
    let v = need(key, value)?;
    let v = v.strip_suffix('s').unwrap_or(v);
    let n: u32 = parse_num(key, v, "a number of seconds")?;
    if n > MAX_TIMEOUT_SECS {
        return Err(CmdlineError::new(
            key,
            format!("{n} s is more than the maximum {MAX_TIMEOUT_SECS} s"),
        ));
    }
    Ok(n)
}

pub(crate) fn parse_port(key: &str, v: &str) -> Result<u16, CmdlineError> {
    match parse_num::<u16>(key, v, "a port number 1-65535")? {
        0 => Err(CmdlineError::new(key, "port 0 is not a valid port")),
        p => Ok(p),
    }
}

/// Parses a LUN per `format` (see the module docs).
///
/// # Errors
/// A [`CmdlineError`] naming `key`.
pub fn parse_lun(key: &str, v: &str, format: LunFormat) -> Result<Lun, CmdlineError> {
    let decimal = match format {
        LunFormat::Decimal => true,
        LunFormat::Rfc4173 => false,
        LunFormat::Auto => v.bytes().all(|b| b.is_ascii_digit()),
    };
    if v.is_empty() {
        return Ok(Lun::ZERO);
    }
    if decimal {
        let n: u16 = parse_num(key, v, "a decimal LUN")?;
        Lun::from_number(n).ok_or_else(|| {
            CmdlineError::new(key, format!("decimal LUN {n} is too large (at most 16383)"))
        })
    } else {
        pxeroot_proto::root_path::parse_lun(v).map_err(|_| {
            CmdlineError::new(
                key,
                format!(
                    "LUN {:?} is neither decimal nor RFC 4173 hex (up to four '-'-separated \
                     groups of 1-4 hex digits)",
                    v.chars().take(40).collect::<String>()
                ),
            )
        })
    }
}

/// Checks an iSCSI name (RFC 3720 §3.2.6): 1-223 bytes, no white space or control characters.
///
/// # Errors
/// A [`CmdlineError`] naming `key`.
pub fn parse_iscsi_name(key: &str, v: &str) -> Result<String, CmdlineError> {
    if v.is_empty() {
        return Err(CmdlineError::new(key, "iSCSI name is empty"));
    }
    if v.len() > MAX_NAME_LEN {
        return Err(CmdlineError::new(
            key,
            format!("iSCSI name is {} bytes, at most {MAX_NAME_LEN}", v.len()),
        ));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CmdlineError::new(
            key,
            "iSCSI name contains white space or control characters",
        ));
    }
    Ok(v.to_owned())
}

pub(crate) fn parse_user(key: &str, value: Option<&str>) -> Result<String, CmdlineError> {
    let v = need(key, value)?;
    if v.chars().any(char::is_control) || v.len() > 255 {
        return Err(CmdlineError::new(
            key,
            "CHAP user name is longer than 255 bytes or has control characters",
        ));
    }
    Ok(v.to_owned())
}

pub(crate) fn parse_secret(key: &str, value: Option<&str>) -> Result<Secret, CmdlineError> {
    match value {
        Some(v) if !v.is_empty() => Ok(Secret::new(v.as_bytes())),
        _ => Err(CmdlineError::new(key, "CHAP secret is empty")),
    }
}

/// Parses a host: IPv4, IPv6 (bare or in brackets) or a DNS name.
pub(crate) fn parse_host(s: &str) -> Option<Server> {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(Server::Ipv6);
    }
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => return Some(Server::Ipv4(a)),
        Ok(IpAddr::V6(a)) => return Some(Server::Ipv6(a)),
        Err(_) => {}
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let name_ok = s.len() <= 253
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.trim_end_matches('.').split('.').all(label_ok);
    name_ok.then(|| Server::Name(s.to_owned()))
}

fn parse_ip_list(key: &str, v: &str) -> Result<Vec<Server>, CmdlineError> {
    let mut out = Vec::new();
    for item in v.split([' ', ',', '\t']).filter(|s| !s.is_empty()) {
        let host = parse_host(item).ok_or_else(|| {
            CmdlineError::new(
                key,
                format!(
                    "{:?} is not an IP address or host name",
                    item.chars().take(60).collect::<String>()
                ),
            )
        })?;
        if !out.contains(&host) {
            out.push(host);
        }
    }
    if out.is_empty() {
        return Err(CmdlineError::new(key, "needs at least one address"));
    }
    Ok(out)
}

fn parse_bootif(key: &str, value: Option<&str>) -> Result<Mac, CmdlineError> {
    let v = need(key, value)?;
    let bad = || {
        CmdlineError::new(
            key,
            format!(
                "{:?} is not 01-xx-xx-xx-xx-xx-xx (hardware type 01 then six hex bytes)",
                v.chars().take(60).collect::<String>()
            ),
        )
    };
    let groups = v.split(['-', ':']).count();
    let mac = match groups {
        7 => {
            let (ty, rest) = v.split_at_checked(2).ok_or_else(bad)?;
            if ty != "01" {
                return Err(CmdlineError::new(
                    key,
                    format!(
                        "hardware type {:?} is not 01 (Ethernet)",
                        ty.chars().take(4).collect::<String>()
                    ),
                ));
            }
            rest.strip_prefix(['-', ':']).and_then(Mac::parse)
        }
        6 => Mac::parse(v),
        _ => None,
    };
    mac.ok_or_else(bad)
}

fn parse_node_param(key: &str, v: &str) -> Result<NodeParam, CmdlineError> {
    let (k, val) = v
        .split_once('=')
        .ok_or_else(|| CmdlineError::new(key, "must be node.key=value"))?;
    let k = k.trim();
    if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CmdlineError::new(key, "must be node.key=value"));
    }
    Ok(match k {
        "node.session.initial_login_retry_max" => NodeParam::InitialLoginRetryMax(parse_num(
            "rd.iscsi.param node.session.initial_login_retry_max",
            val,
            "a count",
        )?),
        "node.session.auth.authmethod" => match val {
            "CHAP" | "chap" => NodeParam::AuthMethodChap(true),
            "None" | "none" => NodeParam::AuthMethodChap(false),
            _ => {
                return Err(CmdlineError::new(
                    "rd.iscsi.param node.session.auth.authmethod",
                    "must be CHAP or None",
                ))
            }
        },
        "node.session.auth.username" => {
            NodeParam::Username(parse_user("rd.iscsi.param node.session.auth.username", Some(val))?)
        }
        "node.session.auth.password" => NodeParam::Password(parse_secret(
            "rd.iscsi.param node.session.auth.password",
            Some(val),
        )?),
        "node.session.auth.username_in" => NodeParam::InUsername(parse_user(
            "rd.iscsi.param node.session.auth.username_in",
            Some(val),
        )?),
        "node.session.auth.password_in" => NodeParam::InPassword(parse_secret(
            "rd.iscsi.param node.session.auth.password_in",
            Some(val),
        )?),
        other => NodeParam::Ignored(other.chars().take(80).collect()),
    })
}

/// Builds CHAP credentials from an optional user and secret, naming `what` in errors.
pub(crate) fn credentials(
    key: &str,
    what: &str,
    user: Option<String>,
    secret: Option<Secret>,
) -> Result<Option<Credentials>, CmdlineError> {
    match (user, secret) {
        (None, None) => Ok(None),
        (Some(user), Some(secret)) => Ok(Some(Credentials { user, secret })),
        (Some(_), None) => Err(CmdlineError::new(
            key,
            format!("{what} user name given without a secret"),
        )),
        (None, Some(_)) => Err(CmdlineError::new(
            key,
            format!("{what} secret given without a user name"),
        )),
    }
}
