//! The DHCP server (RFC 2131/2132, PXE per RFC 4578, iPXE's encapsulated options): reservations
//! from `[[client]]`, an optional pool, persisted leases, the PXE and iPXE boot options, and a
//! proxyDHCP mode. The config layer builds [`Settings`] and `main` runs [`Server::serve`].
//!
//! Layout (style guide §6.1, dora's split): [`wire`] reads requests, [`reply`] writes replies
//! with dhcproto, [`leases`] is the pool's table and its journal file, [`server`] decides
//! (sans-IO: [`Server::handle`] takes bytes and a time and returns bytes and a destination, so
//! unit tests and the fuzzer drive it without sockets), and `io` is the tokio loop around it.
//!
//! Behaviour in short:
//! - A machine with an entry always gets its reserved address; any other machine gets one
//!   from the pool (its previous address, else the one it asks for if never used, else the
//!   first never-used one, else the one whose lease ended longest ago), or no answer at all
//!   when there is no pool. Offers hold their address for 60 s, so a DISCOVER flood only
//!   takes free addresses and never a leased one; a declined address rests for 10 minutes.
//! - Boot file: iPXE (user class "iPXE" or option 175 present) gets `Boot::ipxe` when set;
//!   otherwise option 93 as a raw number: absent or 0 → `bios`, 7 or 9 → `efi_x64`, any other
//!   → none. PXE clients (option 60 "PXEClient...") also get 60 and 43 (discovery control 8),
//!   and their option 97 back.
//! - iSCSI: option 17 (root path) and 203 (initiator name) to a machine with an entry that has
//!   `iscsi`; option 175 (176 = 1 no-ProxyDHCP-wait to iPXE in full mode, 190-193 CHAP) only
//!   to clients that ask for 175 or are iPXE. Secrets are never logged.
//! - proxyDHCP: only PXE clients are answered, with boot information and no address; a
//!   machine without an entry gets `Settings::default_boot` when a file fits its
//!   architecture, otherwise nothing. Port 4011 answers the PXE boot-server REQUEST.
//! - Relayed requests (giaddr) are answered to the relay when giaddr is in the subnet,
//!   ignored with a log line otherwise. Bad datagrams are dropped with a log line,
//!   rate-limited per kind of problem.

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
