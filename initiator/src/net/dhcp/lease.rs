//! What an ACK grants (RFC 2132 options), and iPXE's encapsulated option 175 (sub-options
//! 190-193: CHAP user names and secrets, as iPXE's `include/ipxe/dhcp.h` numbers them).
//!
//! Strings from the wire are cut at the first NUL (some servers NUL-terminate them) and
//! option values that do not decode are dropped with a warning rather than failing the boot;
//! only an unusable subnet mask rejects the lease.

use std::net::Ipv4Addr;

use pxeroot_proto::chap::Secret;
use serde::Serialize;

use super::wire::{self, code, Reply};
use super::Bound;
use crate::config::DhcpInfo;

/// A DHCP lease as the ACK describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// yiaddr.
    pub address: Ipv4Addr,
    /// From option 1, else the address class's default (as klibc ipconfig does).
    pub prefix_len: u8,
    /// Option 54.
    pub server_id: Ipv4Addr,
    /// Option 51, seconds.
    pub lease_secs: Option<u32>,
    /// Option 3.
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 28.
    pub broadcast: Option<Ipv4Addr>,
    /// Option 12.
    pub hostname: Option<String>,
    /// Option 15.
    pub domain: Option<String>,
    /// Option 119, without trailing dots.
    pub domain_search: Vec<String>,
    /// Option 26.
    pub mtu: Option<u16>,
    /// siaddr, the next server (TFTP), if not 0.0.0.0.
    pub siaddr: Option<Ipv4Addr>,
    /// sname.
    pub server_name: Option<String>,
    /// The `file` field, else option 67.
    pub bootfile: Option<String>,
    /// Option 17.
    pub root_path: Option<String>,
}

/// The all-ones host part of `address/prefix_len`.
pub fn broadcast_of(address: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let host_mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    Ipv4Addr::from(u32::from(address) | host_mask)
}

/// The netmask of a prefix length (0-32).
pub fn netmask_of(prefix_len: u8) -> Ipv4Addr {
    let mask = u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(prefix_len)))
        .unwrap_or(0);
    Ipv4Addr::from(mask)
}

/// The prefix length of a contiguous netmask.
pub fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

fn classful_prefix(address: Ipv4Addr) -> u8 {
    match address.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// A wire string: up to the first NUL, without surrounding white space.
pub(super) fn clean(s: &str) -> String {
    s.split('\0').next().unwrap_or_default().trim().to_owned()
}

fn non_empty(s: &str) -> Option<String> {
    Some(clean(s)).filter(|s| !s.is_empty())
}

fn bytes_str(b: &[u8]) -> Option<String> {
    std::str::from_utf8(b).ok().and_then(non_empty)
}

/// The credentials in iPXE's option 175.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpxeCredentials {
    /// 175.190.
    pub username: Option<String>,
    /// 175.191.
    pub password: Option<Secret>,
    /// 175.192.
    pub reverse_username: Option<String>,
    /// 175.193.
    pub reverse_password: Option<Secret>,
}

/// Parses the encapsulated options of option 175 (code, length, value; 0 pads, 255 ends).
/// Sub-options other than 190-193 (iPXE's feature flags and settings) are skipped.
///
/// # Errors
/// A message naming the sub-option that is truncated or not UTF-8 (never its value).
pub fn parse_ipxe_encap(data: &[u8]) -> Result<IpxeCredentials, String> {
    let mut out = IpxeCredentials::default();
    let mut rest = data;
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            0 => {
                rest = tail;
                continue;
            }
            255 => break,
            _ => {}
        }
        let (&len, tail) = tail
            .split_first()
            .ok_or_else(|| format!("option 175: sub-option {code} has no length"))?;
        let len = usize::from(len);
        if tail.len() < len {
            return Err(format!(
                "option 175: sub-option {code} is truncated ({len} bytes announced, {} left)",
                tail.len()
            ));
        }
        let (value, tail) = tail.split_at(len);
        rest = tail;
        let text = || {
            std::str::from_utf8(value)
                .map(clean)
                .map_err(|_| format!("option 175: sub-option {code} is not UTF-8"))
        };
        match code {
            190 => out.username = Some(text()?),
            191 => out.password = Some(Secret::new(value)),
            192 => out.reverse_username = Some(text()?),
            193 => out.reverse_password = Some(Secret::new(value)),
            _ => {}
        }
    }
    Ok(out)
}

/// Builds the lease and the plan's DHCP values from an ACK from `server`.
pub(super) fn from_ack(msg: &Reply, server: Ipv4Addr) -> Result<Bound, String> {
    let o = &msg.options;
    let mut warnings = Vec::new();
    let text = |c: u8| o.get(c).and_then(bytes_str);
    let prefix_len = match o.ipv4(code::SUBNET_MASK) {
        Some(mask) => {
            prefix_of(mask).ok_or_else(|| format!("subnet mask {mask} is not contiguous"))?
        }
        None => {
            let p = classful_prefix(msg.yiaddr);
            warnings.push(format!(
                "no subnet mask (option 1); assuming /{p} for {}",
                msg.yiaddr
            ));
            p
        }
    };
    let mtu = match o.u16(code::MTU) {
        Some(m) if m < 68 => {
            warnings.push(format!("option 26: MTU {m} is below 68, ignored"));
            None
        }
        m => m,
    };
    let domain_search = match o.get(code::DOMAIN_SEARCH).map(wire::parse_domain_list) {
        Some(Ok(names)) => names,
        Some(Err(e)) => {
            warnings.push(format!("{e}; domain search list ignored"));
            Vec::new()
        }
        None => Vec::new(),
    };
    let lease = Lease {
        address: msg.yiaddr,
        prefix_len,
        server_id: server,
        lease_secs: o.u32(code::LEASE_TIME),
        routers: o.ipv4s(code::ROUTER),
        dns: o.ipv4s(code::DNS),
        broadcast: o.ipv4(code::BROADCAST),
        hostname: text(code::HOSTNAME),
        domain: text(code::DOMAIN),
        domain_search,
        mtu,
        siaddr: Some(msg.siaddr).filter(|a| !a.is_unspecified()),
        server_name: bytes_str(&msg.sname),
        bootfile: bytes_str(&msg.file).or_else(|| text(code::BOOTFILE)),
        root_path: text(code::ROOT_PATH),
    };
    let mut info = DhcpInfo {
        root_path: lease.root_path.clone(),
        ..DhcpInfo::default()
    };
    if let Some(name) = o.get(code::INITIATOR_NAME) {
        match bytes_str(name) {
            Some(n) => info.initiator_name = Some(n),
            None => warnings.push("option 203 (initiator name) is not UTF-8, ignored".into()),
        }
    }
    if let Some(encap) = o.get(code::IPXE) {
        match parse_ipxe_encap(encap) {
            Ok(c) => {
                info.username = c.username;
                info.password = c.password;
                info.in_username = c.reverse_username;
                info.in_password = c.reverse_password;
            }
            Err(e) => warnings.push(format!("{e}; its credentials are ignored")),
        }
    }
    Ok(Bound {
        lease,
        info,
        warnings,
    })
}
