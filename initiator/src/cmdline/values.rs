//! Value parsers shared by the command line, `/etc/iscsi.initramfs` and the DHCP values: each
//! names the parameter in its error and never quotes a secret.

use std::net::{IpAddr, Ipv6Addr};

use pxeroot_proto::chap::Secret;
use pxeroot_proto::root_path::{Server, MAX_NAME_LEN};
use pxeroot_proto::Lun;

use super::{CmdlineError, LunFormat, NodeParam, MAX_TIMEOUT_SECS};

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

pub(super) fn parse_lun_format(key: &str, value: Option<&str>) -> Result<LunFormat, CmdlineError> {
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

pub(super) fn parse_secs(key: &str, value: Option<&str>) -> Result<u32, CmdlineError> {
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
    if !v.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(CmdlineError::new(
            key,
            "iSCSI name must start with a letter or digit (iqn., eui., naa.)",
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

pub(super) fn parse_ip_list(key: &str, v: &str) -> Result<Vec<Server>, CmdlineError> {
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

pub(super) fn parse_bootif(key: &str, value: Option<&str>) -> Result<Mac, CmdlineError> {
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

pub(super) fn parse_node_param(key: &str, v: &str) -> Result<NodeParam, CmdlineError> {
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
        "node.session.auth.username" => NodeParam::Username(parse_user(
            "rd.iscsi.param node.session.auth.username",
            Some(val),
        )?),
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
