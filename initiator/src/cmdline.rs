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
//!   `netroot=dhcp` / `root=dhcp` (root path from DHCP option 17), `rd.bootif=0`,
//!   `rd.iscsi.ibft` (= `ip=ibft`).
//! * network: `BOOTIF=01-aa-bb-cc-dd-ee-ff`, `ip=` (see [`ip`]).
//! * pxeroot ([`PxerootArgs`]): `pxeroot.timeout=SECONDS` (budget for reaching and logging in
//!   to the target, default 120, `0` = one attempt per portal, an `s` suffix is allowed),
//!   `pxeroot.dhcp_timeout=SECONDS` (default 30), `pxeroot.link_timeout=SECONDS` (wait for
//!   carrier, default 10), `pxeroot.lun=LUN` (boot LUN when no `root=iscsi:` names one),
//!   `pxeroot.lun_format=auto|rfc4173|decimal` (see below), `pxeroot.debug[=0|1]`. Durations
//!   are capped at one day.
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
pub(crate) mod netroot;
#[cfg(test)]
mod tests;
mod values;

use pxeroot_proto::chap::Secret;
use pxeroot_proto::root_path::Server;
use pxeroot_proto::Lun;

pub(crate) use values::{need, parse_bool, parse_host, parse_port};
use values::{
    parse_bootif, parse_ip_list, parse_lun_format, parse_node_param, parse_num, parse_secret,
    parse_secs, parse_user,
};
pub use values::{parse_iscsi_name, parse_lun, Mac};

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
            "rd.iscsi.ibft" => {
                if parse_bool(key, value)? {
                    boot.ip.push(ip::parse("ibft")?);
                }
            }
            "pxeroot.lun_format" => {}
            k if k.starts_with("pxeroot.") => parse_pxeroot(&mut boot, key, value)?,
            _ => {
                if !set_iscsi_arg(&mut boot.iscsi, key, value)? && key.starts_with("rd.iscsi.") {
                    boot.warnings
                        .push(format!("{key} is not supported, ignored"));
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
            a.target_group = Some(parse_num::<u16>(
                key,
                need(key, value)?,
                "a number 0-65535",
            )?);
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
