//! The four rtnetlink requests the agent makes (link up, MTU, address, default route), encoded
//! here and sent on a blocking NETLINK_ROUTE socket, each waiting for the kernel's ack.
//!
//! Why not the rtnetlink crate: it needs tokio and netlink-packet-route, which together add
//! 1.1 MB to the static agent (measured: 2.89 MB with them, against issue 4's 2 MiB cap), for
//! four fixed messages. The layouts are the kernel's UAPI (`linux/rtnetlink.h`,
//! `linux/if_link.h`, `linux/if_addr.h`): `nlmsghdr`, then `ifinfomsg` / `ifaddrmsg` /
//! `rtmsg`, then `rtattr`s padded to 4 bytes, all in native byte order.
//!
//! Addresses and routes are added with `NLM_F_REPLACE`, so that running twice (a retry, or an
//! address the firmware already set) does not fail with EEXIST; nothing else on the interface
//! is flushed.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

const NLMSG_ERROR: u16 = 2;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 0x1;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_DHCP: u8 = 16;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// A NETLINK_ROUTE socket.
#[derive(Debug)]
pub struct Rtnl {
    fd: OwnedFd,
    seq: std::cell::Cell<u32>,
}

/// A failed request: what was asked and the kernel's answer.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {detail}")]
pub struct RtnlError {
    /// The request (`set link up`, `add address 10.0.0.5/24`, ...).
    pub op: String,
    /// The error.
    pub detail: String,
}

/// One request under construction: header fields, the family header, the attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    kind: u16,
    flags: u16,
    body: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16, family_header: &[u8]) -> Self {
        Message {
            kind,
            flags: flags | NLM_F_REQUEST | NLM_F_ACK,
            body: family_header.to_vec(),
        }
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Self {
        let len = 4 + data.len();
        self.body
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.body.extend_from_slice(&kind.to_ne_bytes());
        self.body.extend_from_slice(data);
        self.body.resize((self.body.len() + 3) & !3, 0);
        self
    }

    fn encode(&self, seq: u32) -> Vec<u8> {
        let len = 16 + self.body.len();
        let mut m = Vec::with_capacity(len);
        m.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
        m.extend_from_slice(&self.kind.to_ne_bytes());
        m.extend_from_slice(&self.flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&self.body);
        m
    }
}

/// `ifinfomsg`: family, pad, type, index, flags, change.
fn ifinfomsg(ifindex: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut h = vec![0u8; 4];
    h.extend_from_slice(&ifindex.to_ne_bytes());
    h.extend_from_slice(&flags.to_ne_bytes());
    h.extend_from_slice(&change.to_ne_bytes());
    h
}

fn link_up(ifindex: u32) -> Message {
    Message::new(RTM_SETLINK, 0, &ifinfomsg(ifindex, IFF_UP, IFF_UP))
}

fn link_mtu(ifindex: u32, mtu: u16) -> Message {
    Message::new(RTM_SETLINK, 0, &ifinfomsg(ifindex, 0, 0))
        .attr(IFLA_MTU, &u32::from(mtu).to_ne_bytes())
}

fn broadcast(address: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let host_bits = 32u32.saturating_sub(u32::from(prefix_len.min(32)));
    let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
    Ipv4Addr::from(u32::from(address) | !mask)
}

fn new_address(ifindex: u32, address: Ipv4Addr, prefix_len: u8) -> Message {
    // ifaddrmsg: family, prefixlen, flags, scope, index.
    let mut h = vec![AF_INET, prefix_len, 0, RT_SCOPE_UNIVERSE];
    h.extend_from_slice(&ifindex.to_ne_bytes());
    let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &h)
        .attr(IFA_LOCAL, &address.octets())
        .attr(IFA_ADDRESS, &address.octets());
    if prefix_len < 31 {
        m = m.attr(IFA_BROADCAST, &broadcast(address, prefix_len).octets());
    }
    m
}

fn default_route(ifindex: u32, gateway: Ipv4Addr) -> Message {
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32).
    let mut h = vec![
        AF_INET,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_DHCP,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ];
    h.extend_from_slice(&0u32.to_ne_bytes());
    Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &h)
        .attr(RTA_GATEWAY, &gateway.octets())
        .attr(RTA_OIF, &ifindex.to_ne_bytes())
}

/// The errno of the `NLMSG_ERROR` answering `seq` in a received datagram (0 = ack), if any.
fn ack_of(datagram: &[u8], seq: u32) -> Option<i32> {
    let mut rest = datagram;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let mseq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if kind == NLMSG_ERROR && mseq == seq && len >= 20 {
            return Some(i32::from_ne_bytes([rest[16], rest[17], rest[18], rest[19]]));
        }
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

impl Rtnl {
    /// Opens the netlink socket.
    ///
    /// # Errors
    /// [`RtnlError`] if the socket cannot be created.
    pub fn new() -> Result<Self, RtnlError> {
        let fail = |op: &str, e: Errno| RtnlError {
            op: op.into(),
            detail: e.desc().to_owned(),
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| fail("open the rtnetlink socket", e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| fail("bind the rtnetlink socket", e))?;
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(5, 0))
            .map_err(|e| fail("set the rtnetlink timeout", e))?;
        Ok(Rtnl {
            fd,
            seq: std::cell::Cell::new(0),
        })
    }

    fn run(&self, op: impl FnOnce() -> String, msg: &Message) -> Result<(), RtnlError> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let fail = |detail: String| RtnlError { op: op(), detail };
        let bytes = msg.encode(seq);
        loop {
            match send(self.fd.as_raw_fd(), &bytes, MsgFlags::empty()) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(fail(e.desc().to_owned())),
            }
        }
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Err(fail("no answer from the kernel in 5 s".into())),
                Err(e) => return Err(fail(e.desc().to_owned())),
            };
            match ack_of(&buf[..n], seq) {
                Some(0) => return Ok(()),
                Some(e) => return Err(fail(Errno::from_raw(e.saturating_neg()).desc().to_owned())),
                None => {}
            }
        }
    }

    /// Sets the link administratively up.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer.
    pub fn set_up(&self, ifindex: u32) -> Result<(), RtnlError> {
        self.run(|| "set link up".into(), &link_up(ifindex))
    }

    /// Sets the MTU.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer (EINVAL beyond the driver's range).
    pub fn set_mtu(&self, ifindex: u32, mtu: u16) -> Result<(), RtnlError> {
        self.run(|| format!("set MTU {mtu}"), &link_mtu(ifindex, mtu))
    }

    /// Adds `address/prefix_len` with its broadcast address.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer.
    pub fn add_address(
        &self,
        ifindex: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), RtnlError> {
        self.run(
            || format!("add address {address}/{prefix_len}"),
            &new_address(ifindex, address, prefix_len),
        )
    }

    /// Adds the default route via `gateway` out of `ifindex`.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer (ENETUNREACH if the gateway is off-link).
    pub fn add_default_route(&self, ifindex: u32, gateway: Ipv4Addr) -> Result<(), RtnlError> {
        self.run(
            || format!("add default route via {gateway}"),
            &default_route(ifindex, gateway),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn link_up_is_setlink_with_iff_up_in_flags_and_change() {
        let m = link_up(3).encode(7);
        assert_eq!(m.len(), 32);
        assert_eq!(u32_at(&m, 0), 32);
        assert_eq!(u16_at(&m, 4), RTM_SETLINK);
        assert_eq!(u16_at(&m, 6), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32_at(&m, 8), 7);
        assert_eq!(u32_at(&m, 20), 3);
        assert_eq!(u32_at(&m, 24), IFF_UP);
        assert_eq!(u32_at(&m, 28), IFF_UP);
    }

    #[test]
    fn mtu_rides_in_ifla_mtu() {
        let m = link_mtu(2, 9000).encode(1);
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 24), 0);
        assert_eq!(u16_at(&m, 32), 8);
        assert_eq!(u16_at(&m, 34), IFLA_MTU);
        assert_eq!(u32_at(&m, 36), 9000);
    }

    #[test]
    fn address_has_local_address_and_broadcast() {
        let m = new_address(2, Ipv4Addr::new(10, 0, 0, 5), 24).encode(1);
        assert_eq!(u16_at(&m, 4), RTM_NEWADDR);
        assert_eq!(
            u16_at(&m, 6),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
        );
        assert_eq!(&m[16..20], &[AF_INET, 24, 0, 0]);
        assert_eq!(u32_at(&m, 20), 2);
        assert_eq!((u16_at(&m, 24), u16_at(&m, 26)), (8, IFA_LOCAL));
        assert_eq!(&m[28..32], &[10, 0, 0, 5]);
        assert_eq!((u16_at(&m, 32), u16_at(&m, 34)), (8, IFA_ADDRESS));
        assert_eq!((u16_at(&m, 40), u16_at(&m, 42)), (8, IFA_BROADCAST));
        assert_eq!(&m[44..48], &[10, 0, 0, 255]);
        assert_eq!(m.len(), 48);
        // A /31 or /32 has no broadcast address.
        assert_eq!(
            new_address(2, Ipv4Addr::new(10, 0, 0, 5), 32)
                .encode(1)
                .len(),
            40
        );
        assert_eq!(
            broadcast(Ipv4Addr::new(192, 168, 1, 9), 0),
            Ipv4Addr::BROADCAST
        );
        assert_eq!(
            broadcast(Ipv4Addr::new(192, 168, 1, 9), 30),
            Ipv4Addr::new(192, 168, 1, 11)
        );
    }

    #[test]
    fn route_is_main_table_unicast_via_gateway_out_of_the_interface() {
        let m = default_route(4, Ipv4Addr::new(10, 0, 0, 1)).encode(1);
        assert_eq!(u16_at(&m, 4), RTM_NEWROUTE);
        assert_eq!(
            &m[16..24],
            &[AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_DHCP, 0, RTN_UNICAST]
        );
        assert_eq!((u16_at(&m, 28), u16_at(&m, 30)), (8, RTA_GATEWAY));
        assert_eq!(&m[32..36], &[10, 0, 0, 1]);
        assert_eq!((u16_at(&m, 36), u16_at(&m, 38)), (8, RTA_OIF));
        assert_eq!(u32_at(&m, 40), 4);
    }

    #[test]
    fn acks_are_matched_by_sequence() {
        let mut ack = Vec::new();
        ack.extend_from_slice(&36u32.to_ne_bytes());
        ack.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack.extend_from_slice(&0u16.to_ne_bytes());
        ack.extend_from_slice(&9u32.to_ne_bytes());
        ack.extend_from_slice(&0u32.to_ne_bytes());
        ack.extend_from_slice(&(-17i32).to_ne_bytes());
        ack.extend_from_slice(&[0; 16]);
        assert_eq!(ack_of(&ack, 9), Some(-17));
        assert_eq!(ack_of(&ack, 8), None);
        assert_eq!(ack_of(&ack[..10], 9), None);
        assert_eq!(ack_of(&[], 9), None);
    }
}
