//! The iSCSI root path of RFC 4173 §5, carried in DHCP option 17:
//! `"iscsi:" <servername> ":" <protocol> ":" <port> ":" <LUN> ":" <targetname>`.
//!
//! The server side (DHCP) emits it, the initramfs agent parses it, so both live here.
//!
//! * `servername` is a DNS name, an IPv4 address or a bracketed IPv6 address (`[fe80::1]`);
//!   it may be empty, meaning "find the target by name" (RFC 4173 §5).
//! * `protocol` is empty or `6` (TCP, the only transport defined); `port` defaults to 3260.
//! * `LUN` is hexadecimal, empty meaning 0. It is written as up to four `-`-separated groups of
//!   up to four hex digits, each group one 16-bit level of the 8-byte SAM LUN, most significant
//!   level first, the way iPXE reads it: `5` is LUN 5, `1-7` is bytes `00 01 00 07 00 ..`.
//!   (Debian and dracut read the field as decimal, so `a` or `10` mean different things there;
//!   we follow the RFC's hexadecimal.)
//! * `targetname` is everything after the fourth field separator, so it may contain `:`
//!   (`iqn.2026-11.org.example:disk1`).

use core::fmt;
use core::str::FromStr;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::bhs::Lun;

/// Default iSCSI port (RFC 7143 §13.8 / IANA).
pub const DEFAULT_PORT: u16 = 3260;
/// The only protocol RFC 4173 defines: 6 (TCP).
pub const PROTOCOL_TCP: u8 = 6;
/// Maximum length of an iSCSI name (RFC 3722 §3.1: 223 bytes).
pub const MAX_NAME_LEN: usize = 223;

/// Why a root path could not be parsed or emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RootPathError {
    /// The string does not start with `iscsi:`.
    #[error("root path does not start with \"iscsi:\"")]
    MissingPrefix,
    /// Fewer than five `:`-separated fields.
    #[error("root path has no {0} field")]
    MissingField(&'static str),
    /// The server name is not a valid host name or address.
    #[error("bad server name {0:?}")]
    BadServer(String),
    /// The protocol field is not a number.
    #[error("bad protocol {0:?}")]
    BadProtocol(String),
    /// A protocol other than 6 (TCP).
    #[error("unsupported protocol {0}, only 6 (TCP) is defined")]
    UnsupportedProtocol(u8),
    /// The port is not a number in 1..=65535.
    #[error("bad port {0:?}")]
    BadPort(String),
    /// The LUN is not valid hexadecimal groups.
    #[error("bad LUN {0:?}")]
    BadLun(String),
    /// The target name is empty, too long or contains control characters.
    #[error("bad target name")]
    BadTargetName,
}

/// Where the target lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Server {
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (bracketed in the root path).
    Ipv6(Ipv6Addr),
    /// A DNS name.
    Name(String),
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Server::Ipv4(a) => write!(f, "{a}"),
            Server::Ipv6(a) => write!(f, "[{a}]"),
            Server::Name(n) => f.write_str(n),
        }
    }
}

fn parse_server(s: &str) -> Result<Option<Server>, RootPathError> {
    let bad = || RootPathError::BadServer(s.chars().take(80).collect());
    if s.is_empty() {
        return Ok(None);
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse()
            .map(|a| Some(Server::Ipv6(a)))
            .map_err(|_| bad());
    }
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(Some(Server::Ipv4(a)));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if s.len() <= 253 && s.trim_end_matches('.').split('.').all(label_ok) {
        Ok(Some(Server::Name(s.to_owned())))
    } else {
        Err(bad())
    }
}

/// Parses the LUN field (see the module docs).
pub fn parse_lun(s: &str) -> Result<Lun, RootPathError> {
    let bad = || RootPathError::BadLun(s.chars().take(40).collect());
    let mut lun = [0u8; 8];
    if s.is_empty() {
        return Ok(Lun(lun));
    }
    let groups: Vec<&str> = s.split('-').collect();
    if groups.len() > 4 {
        return Err(bad());
    }
    for (level, g) in lun.chunks_exact_mut(2).zip(&groups) {
        if g.is_empty() || g.len() > 4 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let v = u16::from_str_radix(g, 16).map_err(|_| bad())?;
        level.copy_from_slice(&v.to_be_bytes());
    }
    Ok(Lun(lun))
}

/// Formats a LUN for the root path: hex 16-bit levels, trailing zero levels omitted.
pub fn format_lun(lun: &Lun) -> String {
    let levels: Vec<u16> = lun
        .0
        .chunks_exact(2)
        .map(|c| match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        })
        .collect();
    let used = levels.iter().rposition(|l| *l != 0).map_or(1, |p| p + 1);
    levels
        .iter()
        .take(used)
        .map(|l| format!("{l:x}"))
        .collect::<Vec<_>>()
        .join("-")
}

/// A parsed RFC 4173 root path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RootPath {
    /// The target's address; `None` if the root path leaves it empty.
    pub server: Option<Server>,
    /// The transport protocol (always 6, TCP).
    pub protocol: u8,
    /// The TCP port.
    pub port: u16,
    /// The boot LUN.
    pub lun: Lun,
    /// The iSCSI target name.
    pub target_name: String,
}

impl RootPath {
    /// A root path for `server` and `target_name` with TCP, port 3260 and LUN 0.
    pub fn new(server: Option<Server>, target_name: impl Into<String>) -> Self {
        RootPath {
            server,
            protocol: PROTOCOL_TCP,
            port: DEFAULT_PORT,
            lun: Lun::ZERO,
            target_name: target_name.into(),
        }
    }

    /// Parses `iscsi:<server>:<protocol>:<port>:<LUN>:<targetname>`.
    ///
    /// # Errors
    /// [`RootPathError`] naming the offending field.
    pub fn parse(s: &str) -> Result<Self, RootPathError> {
        let rest = match s.get(..6) {
            Some(p) if p.eq_ignore_ascii_case("iscsi:") => s.get(6..).unwrap_or_default(),
            _ => return Err(RootPathError::MissingPrefix),
        };
        // The server may be a bracketed IPv6 literal containing ':'.
        let (server, rest) = if rest.starts_with('[') {
            let end = rest
                .find(']')
                .ok_or(RootPathError::BadServer(rest.chars().take(80).collect()))?;
            let (srv, after) = rest.split_at(end + 1);
            let after = after
                .strip_prefix(':')
                .ok_or(RootPathError::MissingField("protocol"))?;
            (srv, after)
        } else {
            rest.split_once(':')
                .ok_or(RootPathError::MissingField("protocol"))?
        };
        let (protocol, rest) = rest
            .split_once(':')
            .ok_or(RootPathError::MissingField("port"))?;
        let (port, rest) = rest
            .split_once(':')
            .ok_or(RootPathError::MissingField("LUN"))?;
        let (lun, target) = rest
            .split_once(':')
            .ok_or(RootPathError::MissingField("targetname"))?;
        let protocol = if protocol.is_empty() {
            PROTOCOL_TCP
        } else {
            protocol
                .parse::<u8>()
                .map_err(|_| RootPathError::BadProtocol(protocol.chars().take(20).collect()))?
        };
        if protocol != PROTOCOL_TCP {
            return Err(RootPathError::UnsupportedProtocol(protocol));
        }
        let port = if port.is_empty() {
            DEFAULT_PORT
        } else {
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| RootPathError::BadPort(port.chars().take(20).collect()))?
        };
        check_target_name(target)?;
        Ok(RootPath {
            server: parse_server(server)?,
            protocol,
            port,
            lun: parse_lun(lun)?,
            target_name: target.to_owned(),
        })
    }

    /// Formats the root path, validating the target name.
    ///
    /// # Errors
    /// [`RootPathError::BadTargetName`] or [`RootPathError::UnsupportedProtocol`].
    pub fn emit(&self) -> Result<String, RootPathError> {
        check_target_name(&self.target_name)?;
        if self.protocol != PROTOCOL_TCP {
            return Err(RootPathError::UnsupportedProtocol(self.protocol));
        }
        if let Some(Server::Name(n)) = &self.server {
            parse_server(n)?;
        }
        Ok(self.to_string())
    }
}

fn check_target_name(t: &str) -> Result<(), RootPathError> {
    if t.is_empty() || t.len() > MAX_NAME_LEN || t.chars().any(char::is_control) {
        Err(RootPathError::BadTargetName)
    } else {
        Ok(())
    }
}

impl fmt::Display for RootPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("iscsi:")?;
        if let Some(s) = &self.server {
            write!(f, "{s}")?;
        }
        write!(
            f,
            ":{}:{}:{}:{}",
            self.protocol,
            self.port,
            format_lun(&self.lun),
            self.target_name
        )
    }
}

impl FromStr for RootPath {
    type Err = RootPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RootPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ipxe_example() {
        // From iPXE's error page text (cited in shared/reference/initiator.md §2c).
        let r = RootPath::parse("iscsi:192.168.0.1:::1:iqn.2000-04.uk.co.fensystems:iscsi-boot")
            .unwrap();
        assert_eq!(r.server, Some(Server::Ipv4(Ipv4Addr::new(192, 168, 0, 1))));
        assert_eq!(r.protocol, 6);
        assert_eq!(r.port, 3260);
        assert_eq!(r.lun, Lun::from_number(1).unwrap());
        assert_eq!(r.target_name, "iqn.2000-04.uk.co.fensystems:iscsi-boot");
        assert_eq!(
            r.emit().unwrap(),
            "iscsi:192.168.0.1:6:3260:1:iqn.2000-04.uk.co.fensystems:iscsi-boot"
        );
    }

    #[test]
    fn ipv6_and_names() {
        let r = RootPath::parse("iscsi:[fd00::1]:6:3261:0:iqn.2026-11.org.example:disk1").unwrap();
        assert_eq!(r.server, Some(Server::Ipv6("fd00::1".parse().unwrap())));
        assert_eq!(r.port, 3261);
        assert_eq!(
            r.to_string(),
            "iscsi:[fd00::1]:6:3261:0:iqn.2026-11.org.example:disk1"
        );
        let r = RootPath::parse("ISCSI:san.example.org::::iqn.x:y:z").unwrap();
        assert_eq!(r.server, Some(Server::Name("san.example.org".into())));
        assert_eq!(r.target_name, "iqn.x:y:z");
        let r = RootPath::parse("iscsi:::::iqn.x").unwrap();
        assert_eq!(r.server, None);
        assert_eq!(r.to_string(), "iscsi::6:3260:0:iqn.x");
    }

    #[test]
    fn luns() {
        assert_eq!(parse_lun("").unwrap(), Lun::ZERO);
        assert_eq!(parse_lun("1-7").unwrap().0, [0, 1, 0, 7, 0, 0, 0, 0]);
        assert_eq!(
            parse_lun("4752-3A4F-6b7e-2F99").unwrap().0,
            [0x47, 0x52, 0x3a, 0x4f, 0x6b, 0x7e, 0x2f, 0x99]
        );
        assert_eq!(parse_lun("a").unwrap(), Lun::from_number(10).unwrap());
        assert_eq!(format_lun(&Lun::from_number(10).unwrap()), "a");
        assert_eq!(format_lun(&Lun([0, 1, 0, 7, 0, 0, 0, 0])), "1-7");
        assert_eq!(format_lun(&Lun::ZERO), "0");
        for bad in ["1-2-3-4-5", "12345", "x", "1--2", "-1"] {
            assert!(parse_lun(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors() {
        use RootPathError as E;
        assert_eq!(RootPath::parse("nfs:1.2.3.4:/x"), Err(E::MissingPrefix));
        assert_eq!(
            RootPath::parse("iscsi:1.2.3.4:6:3260:0"),
            Err(E::MissingField("targetname"))
        );
        assert_eq!(
            RootPath::parse("iscsi:1.2.3.4:17::0:t"),
            Err(E::UnsupportedProtocol(17))
        );
        assert!(matches!(
            RootPath::parse("iscsi:1.2.3.4::99999:0:t"),
            Err(E::BadPort(_))
        ));
        assert!(matches!(
            RootPath::parse("iscsi:1.2.3.4::0:0:t"),
            Err(E::BadPort(_))
        ));
        assert!(matches!(
            RootPath::parse("iscsi:[zz]::::t"),
            Err(E::BadServer(_))
        ));
        assert!(matches!(
            RootPath::parse("iscsi:[::1::::t"),
            Err(E::BadServer(_))
        ));
        assert!(matches!(
            RootPath::parse("iscsi:bad host::::t"),
            Err(E::BadServer(_))
        ));
        assert_eq!(RootPath::parse("iscsi:h::::"), Err(E::BadTargetName));
        assert!(RootPath::new(None, "").emit().is_err());
    }

    fn arb_root_path() -> impl Strategy<Value = RootPath> {
        let server = prop_oneof![
            Just(None),
            any::<[u8; 4]>().prop_map(|a| Some(Server::Ipv4(Ipv4Addr::from(a)))),
            any::<[u8; 16]>().prop_map(|a| Some(Server::Ipv6(Ipv6Addr::from(a)))),
            "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9]{0,10}){0,3}".prop_map(|n| Some(Server::Name(n))),
        ];
        (
            server,
            1u16..,
            any::<[u8; 8]>(),
            "iqn\\.[0-9]{4}-[0-9]{2}\\.[a-z.]{1,20}(:[a-z0-9:.-]{0,30})?",
        )
            .prop_map(|(server, port, lun, target_name)| RootPath {
                server,
                protocol: 6,
                port,
                lun: Lun(lun),
                target_name,
            })
    }

    proptest! {
        #[test]
        fn round_trip(r in arb_root_path()) {
            let s = r.emit().unwrap();
            prop_assert_eq!(RootPath::parse(&s).unwrap(), r);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = RootPath::parse(&s);
            let _ = RootPath::parse(&format!("iscsi:{s}"));
        }
    }
}
