//! The DHCP server: reservations from `[[client]]`, an optional pool, persisted leases, the PXE
//! and iPXE boot options, and a proxyDHCP mode.
//!
//! CONTRACT (filled in by the DHCP work; the config layer builds [`Settings`] and `main` runs
//! [`Server::serve`]). Field names here are the interface; add fields if needed, do not rename.

//!
//! Layout (style guide §6.1, dora's split): [`wire`] reads requests, [`reply`] writes replies
//! with dhcproto, [`leases`] is the pool's table and its file, [`server`] decides (sans-IO:
//! [`Server::handle`] takes bytes and a time and returns bytes and a destination, so unit
//! tests and the fuzzer drive it without sockets), and `io` is the tokio loop around it.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use pxeroot_proto::chap::Credentials;

mod io;
pub mod leases;
pub mod reply;
pub mod server;
pub mod wire;

#[cfg(test)]
mod tests;

pub use server::{Port, Reply, Server, Source};

/// Why the DHCP server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings contradict each other (pool outside the subnet, duplicate MAC...).
    #[error("DHCP settings: {0}")]
    Settings(String),
    /// The lease file cannot be read or written.
    #[error("lease file {}: {source}", path.display())]
    LeaseFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Everything the DHCP server needs, derived from `[server]`, `[dhcp]` and `[[client]]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This server's address on the boot network: option 54, siaddr, option 66.
    pub server: Ipv4Addr,
    /// Bind to this interface (SO_BINDTODEVICE) when set.
    pub interface: Option<String>,
    /// The subnet clients are on (option 1 from its prefix, option 28 its broadcast address).
    pub network: Ipv4Addr,
    /// Prefix length of `network`.
    pub prefix: u8,
    /// Option 3.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: Option<String>,
    /// Option 51 (also how long a lease is kept).
    pub lease_time: Duration,
    /// Inclusive range for machines without an entry; `None`: unknown MACs get no answer.
    pub pool: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Where leases persist across restarts; `None`: in memory only.
    pub lease_file: Option<PathBuf>,
    /// Full server or proxyDHCP.
    pub mode: Mode,
    /// One per `[[client]]`.
    pub hosts: Vec<Host>,
    /// Boot files for pool clients (machines without an entry).
    pub default_boot: Boot,
    /// UDP port to listen on (67; tests may choose another).
    pub port: u16,
}

/// Full DHCP server or proxyDHCP (answers PXE clients only, hands out no addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Hands out addresses.
    #[default]
    Full,
    /// Another DHCP server hands out addresses; this one only adds the boot information.
    Proxy,
}

/// One reserved machine.
#[derive(Debug, Clone)]
pub struct Host {
    /// The client's MAC (chaddr).
    pub mac: [u8; 6],
    /// Its reserved address.
    pub ip: Ipv4Addr,
    /// Option 12.
    pub hostname: String,
    /// Which boot file it gets.
    pub boot: Boot,
    /// Its iSCSI root (option 17, 203, 175.190-193), when it has one.
    pub iscsi: Option<IscsiBoot>,
}

/// Boot file names, relative to the TFTP root (options 67 and the BOOTP file field).
#[derive(Debug, Clone, Default)]
pub struct Boot {
    /// Option 93 absent or 0 (x86 BIOS): e.g. "pxelinux.0".
    pub bios: Option<String>,
    /// Option 93 = 7 or 9 (x64 UEFI, raw IANA values): an EFI loader.
    pub efi_x64: Option<String>,
    /// iPXE clients (option 77 "iPXE" or option 175 present) get this instead, when set.
    pub ipxe: Option<String>,
}

/// The iSCSI root of a client, as DHCP delivers it.
#[derive(Debug, Clone)]
pub struct IscsiBoot {
    /// RFC 4173 root path for option 17: `iscsi:10.0.0.2::3260:0:iqn....`.
    pub root_path: String,
    /// Option 203: the client's initiator name.
    pub initiator: String,
    /// 175.190/191.
    pub chap: Option<Credentials>,
    /// 175.192/193.
    pub mutual_chap: Option<Credentials>,
}
