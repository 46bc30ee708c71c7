//! `ip=`: the kernel's (Documentation/admin-guide/nfs/nfsroot.rst) and dracut's forms.
//!
//! * `ip=<method>`: `dhcp`, `on`, `any`, `bootp`, `rarp`, `both` (all: DHCP), `dhcp6`,
//!   `auto6`, `either6`, `link6`, `ibft`, `off`, `none`;
//! * `ip=<device>:<method>[:[<mtu>][:<mac>]]` (dracut), e.g. `ip=eth0:dhcp`;
//! * `ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<method>[:<dns0>[:<dns1>[:<ntp0>]]]`
//!   (kernel) or with `[:<mtu>[:<mac>]]` after the method (dracut). Trailing fields may be left
//!   out. IPv6 addresses go in brackets. The netmask may be dotted or a prefix length; if empty,
//!   the kernel's classful default (IPv4) or /64 (IPv6) applies. An empty method means static if
//!   a client address is given and DHCP otherwise; `off`/`none` with a client address is static.
//!
//! Nothing here is secret, so errors quote the offending field.

use std::net::IpAddr;

use super::{CmdlineError, Mac};

const KEY: &str = "ip";

/// How the interface gets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Autoconf {
    /// DHCPv4 (also `on`, `any`, `bootp`, `rarp`, `both`).
    Dhcp,
    /// DHCPv6.
    Dhcp6,
    /// IPv6 router advertisements (also `either6`).
    Auto6,
    /// From the iBFT's NIC entry.
    Ibft,
    /// No configuration (also `none`, `link6`).
    Off,
    /// The static settings given.
    Static(StaticIp),
}

/// A static address from the full `ip=` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticIp {
    /// The client's address.
    pub address: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
    /// The default gateway.
    pub gateway: Option<IpAddr>,
    /// The boot server (`<server-ip>` / dracut's `<peer>`).
    pub server: Option<IpAddr>,
    /// The host name.
    pub hostname: Option<String>,
    /// DNS servers.
    pub dns: Vec<IpAddr>,
}

/// One `ip=` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The interface it applies to, if named.
    pub device: Option<String>,
    /// How the address is obtained.
    pub method: Autoconf,
    /// dracut's MTU field.
    pub mtu: Option<u16>,
    /// dracut's MAC field (sets the interface's address).
    pub mac: Option<Mac>,
}

fn err(problem: impl Into<String>) -> CmdlineError {
    CmdlineError::new(KEY, problem)
}

fn q(v: &str) -> String {
    format!("{:?}", v.chars().take(60).collect::<String>())
}

fn method(word: &str) -> Option<Autoconf> {
    Some(match word {
        "dhcp" | "on" | "any" | "bootp" | "rarp" | "both" => Autoconf::Dhcp,
        "dhcp6" => Autoconf::Dhcp6,
        "auto6" | "either6" => Autoconf::Auto6,
        "ibft" => Autoconf::Ibft,
        "off" | "none" | "link6" => Autoconf::Off,
        _ => return None,
    })
}

/// Checks a network interface name (at most 15 bytes, no `/`, `:` or white space).
pub(crate) fn check_ifname(key: &str, d: &str) -> Result<String, CmdlineError> {
    let ok = !d.is_empty()
        && d.len() <= 15
        && d != "."
        && d != ".."
        && !d
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(d.to_owned())
    } else {
        Err(CmdlineError::new(
            key,
            format!(
                "device {} is not an interface name (1-15 bytes, no '/', ':' or spaces)",
                q(d)
            ),
        ))
    }
}

/// Splits on `:` outside brackets.
fn fields(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in v.char_indices() {
        match c {
            '[' => depth = depth.saturating_add(1),
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                out.push(v.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v.get(start..).unwrap_or_default());
    out
}

fn addr(what: &str, v: &str) -> Result<Option<IpAddr>, CmdlineError> {
    if v.is_empty() {
        return Ok(None);
    }
    let inner = v
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(v);
    inner
        .parse()
        .map(Some)
        .map_err(|_| err(format!("{what} {} is not an IP address", q(v))))
}

fn mtu_and_mac(rest: &[&str]) -> Result<(Option<u16>, Option<Mac>), CmdlineError> {
    let mtu = match rest.first() {
        None | Some(&"") => None,
        Some(m) => Some(
            m.parse::<u16>()
                .ok()
                .filter(|n| *n >= 68 && m.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| err(format!("MTU {} is not a number 68-65535", q(m))))?,
        ),
    };
    let mac_str = rest.get(1..).map(|r| r.join(":")).unwrap_or_default();
    let mac = if mac_str.is_empty() {
        None
    } else {
        Some(Mac::parse(&mac_str).ok_or_else(|| err(format!("MAC {} is not valid", q(&mac_str))))?)
    };
    Ok((mtu, mac))
}

fn prefix_len(mask: &str, address: IpAddr) -> Result<u8, CmdlineError> {
    let max = if address.is_ipv4() { 32 } else { 128 };
    if mask.is_empty() {
        return Ok(match address {
            IpAddr::V4(a) => match a.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                _ => 24,
            },
            IpAddr::V6(_) => 64,
        });
    }
    if mask.bytes().all(|b| b.is_ascii_digit()) {
        return mask
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| {
                err(format!(
                    "netmask {} is not a prefix length 0-{max}",
                    q(mask)
                ))
            });
    }
    match mask.parse::<std::net::Ipv4Addr>() {
        Ok(m) if address.is_ipv4() => {
            let bits = u32::from(m);
            let ones = bits.leading_ones();
            if bits.checked_shl(ones).unwrap_or(0) == 0 {
                u8::try_from(ones).map_err(|_| err("netmask out of range"))
            } else {
                Err(err(format!("netmask {} is not contiguous", q(mask))))
            }
        }
        _ => Err(err(format!(
            "netmask {} is not valid for the address",
            q(mask)
        ))),
    }
}

fn hostname(v: &str) -> Result<Option<String>, CmdlineError> {
    if v.is_empty() {
        return Ok(None);
    }
    let ok = v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(Some(v.to_owned()))
    } else {
        Err(err(format!("hostname {} is not a valid host name", q(v))))
    }
}

/// Parses the value of one `ip=` parameter.
pub(super) fn parse(v: &str) -> Result<IpConfig, CmdlineError> {
    if let Some(m) = method(v) {
        return Ok(IpConfig {
            device: None,
            method: m,
            mtu: None,
            mac: None,
        });
    }
    let f = fields(v);
    // dracut's <device>:<method>[:[<mtu>][:<mac>]]
    if let [dev, word, rest @ ..] = f.as_slice() {
        if let Some(m) = method(word) {
            if !dev.is_empty() && addr("", dev).is_err() {
                let (mtu, mac) = mtu_and_mac(rest)?;
                return Ok(IpConfig {
                    device: Some(check_ifname(KEY, dev)?),
                    method: m,
                    mtu,
                    mac,
                });
            }
        }
    }
    if f.len() == 1 {
        return Err(err(format!(
            "{} is not a method (dhcp, on, any, dhcp6, auto6, ibft, off, none) nor \
             <client>:<server>:<gw>:<netmask>:<hostname>:<device>:<method>",
            q(v)
        )));
    }
    let get = |i: usize| f.get(i).copied().unwrap_or_default();
    let client = addr("client address", get(0))?;
    let server = addr("server address", get(1))?;
    let gateway = addr("gateway", get(2))?;
    let mask = get(3);
    let host = hostname(get(4))?;
    let device = match get(5) {
        "" => None,
        d => Some(check_ifname(KEY, d)?),
    };
    let word = get(6);
    let extra = f.get(7..).unwrap_or_default();
    let (dns, mtu, mac) = match extra.first() {
        None => (Vec::new(), None, None),
        Some(first) if first.is_empty() || first.contains('.') || first.starts_with('[') => {
            if extra.len() > 3 {
                return Err(err("too many fields after the DNS servers"));
            }
            let mut dns = Vec::new();
            for d in extra.iter().take(2) {
                if let Some(a) = addr("DNS server", d)? {
                    dns.push(a);
                }
            }
            if let Some(ntp) = extra.get(2) {
                addr("NTP server", ntp)?;
            }
            (dns, None, None)
        }
        Some(_) => {
            let (mtu, mac) = mtu_and_mac(extra)?;
            (Vec::new(), mtu, mac)
        }
    };
    let explicit = if word.is_empty() {
        None
    } else {
        Some(method(word).ok_or_else(|| {
            err(format!(
                "method {} is not dhcp, on, any, dhcp6, auto6, ibft, off or none",
                q(word)
            ))
        })?)
    };
    let method = match (explicit, client) {
        (None | Some(Autoconf::Off), Some(address)) => {
            if let Some(g) = gateway {
                if g.is_ipv4() != address.is_ipv4() {
                    return Err(err("gateway and client address are of different families"));
                }
            }
            Autoconf::Static(StaticIp {
                address,
                prefix_len: prefix_len(mask, address)?,
                gateway,
                server,
                hostname: host,
                dns,
            })
        }
        (None, None) => Autoconf::Dhcp,
        (Some(m), _) => m,
    };
    Ok(IpConfig {
        device,
        method,
        mtu,
        mac,
    })
}
