//! The iSCSI Boot Firmware Table as the kernel shows it in `/sys/firmware/ibft/` (module
//! `iscsi_ibft`): `initiator/`, `ethernetN/`, `targetN/`, one value per file.
//!
//! Only the reader touches the file system ([`read_dir`]); the values are a plain struct
//! ([`Ibft`]) so that the merge in [`super`] is tested without sysfs. The reader is tested on a
//! fake tree in a temporary directory.
//!
//! Formats (kernel `drivers/firmware/iscsi_ibft.c`): numbers in decimal, addresses as text,
//! flags bit 0 "block valid" and bit 1 "firmware boot selected". The target `lun` is printed
//! byte by byte with `%x`, unpadded on older kernels (`0500000` style) and `%02x` on newer ones
//! (16 digits); both are read. iPXE fills the table when it `sanboot`s, including the CHAP
//! secrets (readable by root only), which spares the kernel command line a password.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use pxeroot_proto::chap::Secret;
use pxeroot_proto::Lun;

use crate::cmdline::Mac;

/// Where the kernel shows the table.
pub const SYSFS_IBFT: &str = "/sys/firmware/ibft";

/// Flags bit 1: the firmware booted from this entry.
pub const FLAG_BOOT_SELECTED: u8 = 0x2;

/// Reading the table failed.
#[derive(Debug, thiserror::Error)]
#[error("iBFT {path}: {problem}")]
pub struct IbftError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong.
    pub problem: String,
}

/// One `ethernetN` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IbftNic {
    /// `index`, which targets' `nic-assoc` refers to.
    pub index: u32,
    /// `flags`.
    pub flags: u8,
    /// `mac`.
    pub mac: Option<Mac>,
    /// The kernel's name for it (`device/net/<name>`).
    pub ifname: Option<String>,
    /// `ip-addr`.
    pub address: Option<IpAddr>,
    /// `prefix-len`.
    pub prefix_len: Option<u8>,
    /// `gateway`.
    pub gateway: Option<IpAddr>,
    /// `primary-dns`, `secondary-dns`.
    pub dns: Vec<IpAddr>,
    /// `dhcp`: the DHCP server the firmware used, if it used one.
    pub dhcp: Option<IpAddr>,
    /// `origin` (3 = DHCP).
    pub origin: Option<u8>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `vlan`.
    pub vlan: Option<u16>,
}

impl IbftNic {
    /// Whether the firmware got the address by DHCP.
    pub fn uses_dhcp(&self) -> bool {
        self.origin == Some(3) || self.dhcp.is_some() || self.address.is_none()
    }
}

/// One `targetN` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IbftTarget {
    /// `index`.
    pub index: u32,
    /// `flags`.
    pub flags: u8,
    /// `ip-addr`.
    pub address: Option<IpAddr>,
    /// `port`.
    pub port: Option<u16>,
    /// `lun`.
    pub lun: Lun,
    /// `target-name`.
    pub target_name: Option<String>,
    /// `nic-assoc`.
    pub nic_assoc: Option<u32>,
    /// `chap-name`.
    pub chap_name: Option<String>,
    /// `chap-secret`.
    pub chap_secret: Option<Secret>,
    /// `rev-chap-name`.
    pub rev_chap_name: Option<String>,
    /// `rev-chap-name-secret`.
    pub rev_chap_secret: Option<Secret>,
}

/// The table's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ibft {
    /// `initiator/initiator-name`.
    pub initiator_name: Option<String>,
    /// `ethernetN`, by N.
    pub nics: Vec<IbftNic>,
    /// `targetN`, by N.
    pub targets: Vec<IbftTarget>,
}

impl Ibft {
    /// The boot targets: those flagged "boot selected", else every valid one (some firmware
    /// sets only one of the bits), in index order.
    pub fn boot_targets(&self) -> Vec<&IbftTarget> {
        let selected: Vec<&IbftTarget> = self
            .targets
            .iter()
            .filter(|t| t.flags & FLAG_BOOT_SELECTED != 0)
            .collect();
        if selected.is_empty() {
            self.targets.iter().filter(|t| t.flags != 0).collect()
        } else {
            selected
        }
    }

    /// The NIC a target is associated with, else the first boot-selected NIC, else the first.
    pub fn nic_for(&self, target: Option<&IbftTarget>) -> Option<&IbftNic> {
        target
            .and_then(|t| t.nic_assoc)
            .and_then(|i| self.nics.iter().find(|n| n.index == i))
            .or_else(|| self.nics.iter().find(|n| n.flags & FLAG_BOOT_SELECTED != 0))
            .or_else(|| self.nics.first())
    }
}

/// Parses the `lun` attribute (see the module docs).
pub fn parse_lun(s: &str) -> Option<Lun> {
    let s = s.trim();
    let hex_byte = |h: &str| u8::from_str_radix(h, 16).ok();
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut lun = [0u8; 8];
        for (i, slot) in lun.iter_mut().enumerate() {
            *slot = hex_byte(s.get(2 * i..2 * i + 2)?)?;
        }
        return Some(Lun(lun));
    }
    // Unpadded "%x" per byte: a single-level LUN n reads "0" <n in hex> "000000".
    if let Some(mid) = s.strip_prefix('0').and_then(|r| r.strip_suffix("000000")) {
        if (1..=2).contains(&mid.len()) {
            return Some(Lun([0, hex_byte(mid)?, 0, 0, 0, 0, 0, 0]));
        }
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u16>().ok().and_then(Lun::from_number);
    }
    None
}

fn index_of(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.parse().ok()
}

/// Reads one attribute: `Ok(None)` if absent or empty.
fn attr(dir: &Path, name: &str) -> Result<Option<String>, IbftError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => {
            let s = String::from_utf8_lossy(&bytes).trim().to_owned();
            Ok((!s.is_empty()).then_some(s))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IbftError {
            path,
            problem: if e.kind() == io::ErrorKind::PermissionDenied {
                "permission denied (reading the iBFT needs CAP_SYS_ADMIN)".into()
            } else {
                e.to_string()
            },
        }),
    }
}

/// Reads a secret attribute without ever turning it into a `String`.
fn secret(dir: &Path, name: &str) -> Result<Option<Secret>, IbftError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(mut bytes) => {
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == 0) {
                bytes.pop();
            }
            Ok((!bytes.is_empty()).then(|| Secret::new(bytes)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IbftError {
            path,
            problem: e.to_string(),
        }),
    }
}

fn parsed<T: std::str::FromStr>(dir: &Path, name: &str) -> Result<Option<T>, IbftError> {
    match attr(dir, name)? {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| IbftError {
            path: dir.join(name),
            problem: format!("{:?} is not valid", s.chars().take(60).collect::<String>()),
        }),
    }
}

/// An address, where `0.0.0.0` and `::` (what firmware writes for "none") read as absent.
fn address(dir: &Path, name: &str) -> Result<Option<IpAddr>, IbftError> {
    Ok(parsed::<IpAddr>(dir, name)?.filter(|a| !a.is_unspecified()))
}

fn ifname(dir: &Path) -> Option<String> {
    let net = dir.join("device").join("net");
    let mut names: Vec<String> = fs::read_dir(net)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}

fn read_nic(dir: &Path, index: u32) -> Result<IbftNic, IbftError> {
    let mac = match attr(dir, "mac")? {
        None => None,
        Some(m) => Some(Mac::parse(&m).ok_or_else(|| IbftError {
            path: dir.join("mac"),
            problem: "not a MAC address".into(),
        })?),
    };
    let prefix_len = match parsed::<u8>(dir, "prefix-len")? {
        Some(p) => Some(p),
        None => parsed::<std::net::Ipv4Addr>(dir, "subnet-mask")?
            .map(|m| u8::try_from(u32::from(m).leading_ones()).unwrap_or(0)),
    };
    let dns = [address(dir, "primary-dns")?, address(dir, "secondary-dns")?]
        .into_iter()
        .flatten()
        .collect();
    Ok(IbftNic {
        index: parsed(dir, "index")?.unwrap_or(index),
        flags: parsed(dir, "flags")?.unwrap_or(0),
        mac,
        ifname: ifname(dir),
        address: address(dir, "ip-addr")?,
        prefix_len,
        gateway: address(dir, "gateway")?,
        dns,
        dhcp: address(dir, "dhcp")?,
        origin: parsed(dir, "origin")?,
        hostname: attr(dir, "hostname")?,
        vlan: parsed::<u16>(dir, "vlan")?.filter(|v| *v != 0),
    })
}

fn read_target(dir: &Path, index: u32) -> Result<IbftTarget, IbftError> {
    let lun = match attr(dir, "lun")? {
        None => Lun::ZERO,
        Some(s) => parse_lun(&s).ok_or_else(|| IbftError {
            path: dir.join("lun"),
            problem: format!("{:?} is not a LUN", s.chars().take(40).collect::<String>()),
        })?,
    };
    Ok(IbftTarget {
        index: parsed(dir, "index")?.unwrap_or(index),
        flags: parsed(dir, "flags")?.unwrap_or(0),
        address: address(dir, "ip-addr")?,
        port: parsed::<u16>(dir, "port")?.filter(|p| *p != 0),
        lun,
        target_name: attr(dir, "target-name")?,
        nic_assoc: parsed(dir, "nic-assoc")?,
        chap_name: attr(dir, "chap-name")?,
        chap_secret: secret(dir, "chap-secret")?,
        rev_chap_name: attr(dir, "rev-chap-name")?,
        rev_chap_secret: secret(dir, "rev-chap-name-secret")?,
    })
}

/// Reads the table under `root` (normally [`SYSFS_IBFT`]); `Ok(None)` if there is none.
///
/// # Errors
/// [`IbftError`] if an attribute cannot be read or is malformed.
pub fn read_dir(root: &Path) -> Result<Option<Ibft>, IbftError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(IbftError {
                path: root.to_owned(),
                problem: e.to_string(),
            })
        }
    };
    let mut ibft = Ibft::default();
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let dir = root.join(&name);
        if name == "initiator" {
            ibft.initiator_name = attr(&dir, "initiator-name")?;
        } else if let Some(i) = index_of(&name, "ethernet") {
            ibft.nics.push(read_nic(&dir, i)?);
        } else if let Some(i) = index_of(&name, "target") {
            ibft.targets.push(read_target(&dir, i)?);
        }
    }
    ibft.nics.sort_by_key(|n| n.index);
    ibft.targets.sort_by_key(|t| t.index);
    Ok(Some(ibft))
}
