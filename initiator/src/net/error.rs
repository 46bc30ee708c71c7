//! [`NetError`]: one variant per cause, each message naming the interface and the cause
//! (never a secret), and the exit code `main` maps it to.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::link::RtnlError;
use super::socket;
use crate::cmdline::Mac;

/// Why the network phase failed. Messages name the interface and the cause, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// `/sys/class/net` cannot be read.
    #[error("cannot list network interfaces in {path}: {source}")]
    Sysfs {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No interface has the `BOOTIF` / iBFT MAC.
    #[error("no interface with MAC {mac} (have: {have}) after {secs} s")]
    NoSuchMac {
        /// The wanted MAC.
        mac: Mac,
        /// What there is.
        have: String,
        /// How long we waited.
        secs: u32,
    },
    /// No interface has the name.
    #[error("no interface named {name} (from {from}; have: {have}) after {secs} s")]
    NoSuchName {
        /// The wanted name.
        name: String,
        /// The parameter it came from.
        from: &'static str,
        /// What there is.
        have: String,
        /// How long we waited.
        secs: u32,
    },
    /// No physical interface at all.
    #[error("no physical network interface (have: {have}) after {secs} s")]
    NoInterface {
        /// What there is.
        have: String,
        /// How long we waited.
        secs: u32,
    },
    /// The interface exists but has no MAC (not Ethernet).
    #[error("{ifname}: no Ethernet hardware address")]
    NoMac {
        /// The interface.
        ifname: String,
    },
    /// No carrier within the link timeout.
    #[error("{ifname}: no carrier after {secs} s (cable, switch port or link partner down?)")]
    NoCarrier {
        /// The interface(s).
        ifname: String,
        /// How long we waited.
        secs: u32,
    },
    /// An rtnetlink request failed.
    #[error("{ifname}: netlink: {source}")]
    Netlink {
        /// The interface.
        ifname: String,
        /// What failed.
        source: RtnlError,
    },
    /// The DHCP socket failed.
    #[error("{ifname}: DHCP socket: {source}")]
    Socket {
        /// The interface.
        ifname: String,
        /// What failed.
        source: socket::SocketError,
    },
    /// Nobody offered.
    #[error("{ifname}: no DHCP offer after {secs} s (sent {discovers} DISCOVERs)")]
    NoOffer {
        /// The interface.
        ifname: String,
        /// The DHCP timeout.
        secs: u32,
        /// DISCOVERs sent.
        discovers: u32,
    },
    /// A server offered but never acknowledged.
    #[error(
        "{ifname}: DHCP offer(s) but no ACK after {secs} s (sent {requests} REQUESTs for \
         {offers} offer(s))"
    )]
    NoAck {
        /// The interface.
        ifname: String,
        /// The DHCP timeout.
        secs: u32,
        /// REQUESTs sent.
        requests: u32,
        /// OFFERs taken.
        offers: u32,
    },
    /// The last answer was a NAK.
    #[error("{ifname}: DHCP server {server} sent NAK ({naks} in {secs} s)")]
    Nak {
        /// The interface.
        ifname: String,
        /// The server.
        server: Ipv4Addr,
        /// NAKs received.
        naks: u32,
        /// The DHCP timeout.
        secs: u32,
    },
    /// An addressing method this agent does not implement.
    #[error("ip=: {0} is not supported yet (use dhcp, a static IPv4 address, or off)")]
    Unsupported(&'static str),
}

impl NetError {
    /// The exit code (see `main.rs`): 10 for interface and carrier problems (netlink
    /// included), 11 for DHCP, 2 for an unsupported `ip=` (a boot parameter problem).
    pub fn exit_code(&self) -> u8 {
        match self {
            NetError::Sysfs { .. }
            | NetError::NoSuchMac { .. }
            | NetError::NoSuchName { .. }
            | NetError::NoInterface { .. }
            | NetError::NoMac { .. }
            | NetError::NoCarrier { .. }
            | NetError::Netlink { .. } => crate::exit::NO_CARRIER,
            NetError::Socket { .. }
            | NetError::NoOffer { .. }
            | NetError::NoAck { .. }
            | NetError::Nak { .. } => crate::exit::NO_DHCP,
            NetError::Unsupported(_) => crate::exit::BAD_CONFIG,
        }
    }
}
