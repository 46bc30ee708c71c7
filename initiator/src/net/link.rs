//! The four rtnetlink requests the network phase makes (link up, MTU, address, default
//! route), sent on a blocking `NETLINK_ROUTE` socket and acknowledged one at a time.
//!
//! # Why not the rtnetlink crate
//! The first version used rtnetlink on a current-thread tokio runtime. It works, but the
//! crate parses every reply into netlink-packet-route's complete message model (all link
//! kinds, qdiscs, rules, ...), which added about 1.7 MB to a static binary that must stay
//! under 2 MiB in total. These requests are four fixed layouts from the kernel UAPI
//! (`linux/rtnetlink.h`, `linux/if_link.h`, `linux/if_addr.h`), and the only reply needed is
//! `NLMSG_ERROR` (the ACK), so they are encoded here ([`Request`]), golden-tested, and sent
//! through nix's safe socket calls. Nothing here is `unsafe`.
//!
//! Addresses and routes are created with `NLM_F_CREATE | NLM_F_REPLACE`, so running twice (a
//! retry, or an address the firmware already set) does not fail with EEXIST; nothing else on
//! the interface is flushed. A route learnt from DHCP is marked `proto dhcp`, so that the
//! booted system's network manager can tell it apart (systemd-networkd's
//! `KeepConfiguration=dhcp`); one from `ip=` is `proto boot`, like the kernel's own ipconfig.
//! The socket has a 5 s receive timeout, so a kernel that never answers cannot hang the boot.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

// linux/netlink.h
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_HDRLEN: usize = 16;
// linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTPROT_DHCP: u8 = 16;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
// linux/if_link.h, linux/if.h
const IFLA_MTU: u16 = 4;
const IFF_UP: u32 = 0x1;
// linux/if_addr.h
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
// linux/socket.h
const AF_INET: u8 = 2;
const AF_UNSPEC: u8 = 0;

/// One request, encoded without its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `ip link set dev X up`.
    LinkUp {
        /// Interface index.
        ifindex: u32,
    },
    /// `ip link set dev X mtu N`.
    Mtu {
        /// Interface index.
        ifindex: u32,
        /// The MTU.
        mtu: u16,
    },
    /// `ip addr replace A/P broadcast B dev X`.
    Address {
        /// Interface index.
        ifindex: u32,
        /// The address.
        address: Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
    },
    /// `ip route replace default via G dev X proto boot|dhcp`.
    DefaultRoute {
        /// Interface index.
        ifindex: u32,
        /// The gateway.
        gateway: Ipv4Addr,
        /// Learnt from DHCP (`proto dhcp`) rather than configured (`proto boot`).
        dhcp: bool,
    },
}

fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    // Payloads here are at most 4 bytes.
    let len = (4 + payload.len()) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

impl Request {
    /// What it does, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Request::LinkUp { .. } => "set link up".into(),
            Request::Mtu { mtu, .. } => format!("set MTU {mtu}"),
            Request::Address {
                address,
                prefix_len,
                ..
            } => format!("add address {address}/{prefix_len}"),
            Request::DefaultRoute { gateway, .. } => format!("add default route via {gateway}"),
        }
    }

    /// The netlink message with sequence number `seq` (native byte order, as netlink is).
    pub fn encode(&self, seq: u32) -> Vec<u8> {
        let mut body = Vec::with_capacity(32);
        let (kind, flags) = match *self {
            Request::LinkUp { ifindex } | Request::Mtu { ifindex, .. } => {
                let up = matches!(self, Request::LinkUp { .. });
                // struct ifinfomsg
                body.push(AF_UNSPEC); // ifi_family
                body.push(0); // pad
                body.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
                body.extend_from_slice(&ifindex.to_ne_bytes()); // ifi_index
                let f = if up { IFF_UP } else { 0 };
                body.extend_from_slice(&f.to_ne_bytes()); // ifi_flags
                body.extend_from_slice(&f.to_ne_bytes()); // ifi_change
                if let Request::Mtu { mtu, .. } = self {
                    attr(&mut body, IFLA_MTU, &u32::from(*mtu).to_ne_bytes());
                }
                (RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK)
            }
            Request::Address {
                ifindex,
                address,
                prefix_len,
            } => {
                // struct ifaddrmsg
                body.push(AF_INET); // ifa_family
                body.push(prefix_len); // ifa_prefixlen
                body.push(0); // ifa_flags
                body.push(RT_SCOPE_UNIVERSE); // ifa_scope
                body.extend_from_slice(&ifindex.to_ne_bytes()); // ifa_index
                attr(&mut body, IFA_LOCAL, &address.octets());
                attr(&mut body, IFA_ADDRESS, &address.octets());
                if prefix_len < 31 {
                    let brd = super::dhcp::broadcast_of(address, prefix_len);
                    attr(&mut body, IFA_BROADCAST, &brd.octets());
                }
                (
                    RTM_NEWADDR,
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                )
            }
            Request::DefaultRoute {
                ifindex,
                gateway,
                dhcp,
            } => {
                let protocol = if dhcp { RTPROT_DHCP } else { RTPROT_BOOT };
                // struct rtmsg
                body.extend_from_slice(&[
                    AF_INET,           // rtm_family
                    0,                 // rtm_dst_len: default route
                    0,                 // rtm_src_len
                    0,                 // rtm_tos
                    RT_TABLE_MAIN,     // rtm_table
                    protocol,          // rtm_protocol
                    RT_SCOPE_UNIVERSE, // rtm_scope
                    RTN_UNICAST,       // rtm_type
                ]);
                body.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
                attr(&mut body, RTA_GATEWAY, &gateway.octets());
                attr(&mut body, RTA_OIF, &ifindex.to_ne_bytes());
                (
                    RTM_NEWROUTE,
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                )
            }
        };
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        // struct nlmsghdr; messages here are far below 4 GiB.
        msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it in
        msg.extend(body);
        msg
    }
}

/// Looks through a received datagram for the ACK of `seq`: `Some(Ok)` for success,
/// `Some(Err(errno))` for a refusal, `None` if it is not there.
pub fn find_ack(datagram: &[u8], seq: u32) -> Option<Result<(), Errno>> {
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let u32_at = |b: &[u8], i: usize| {
            b.get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_ne_bytes)
        };
        let len = usize::try_from(u32_at(rest, 0)?).ok()?;
        let kind = u16::from_ne_bytes(rest.get(4..6)?.try_into().ok()?);
        let msg_seq = u32_at(rest, 8)?;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return None;
        }
        if kind == NLMSG_ERROR && msg_seq == seq {
            // struct nlmsgerr: int error, then the request's header.
            let error = i32::from_ne_bytes(rest.get(16..20)?.try_into().ok()?);
            return Some(if error == 0 {
                Ok(())
            } else {
                Err(Errno::from_raw(error.saturating_neg()))
            });
        }
        let aligned = (len + 3) & !3;
        rest = rest.get(aligned..).unwrap_or_default();
    }
    None
}

/// A blocking `NETLINK_ROUTE` socket.
#[derive(Debug)]
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
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

impl Rtnl {
    /// Opens the socket.
    ///
    /// # Errors
    /// [`RtnlError`] if the socket cannot be created or bound.
    pub fn new() -> Result<Self, RtnlError> {
        let fail = |op: &str| {
            let op = op.to_owned();
            move |e: Errno| RtnlError {
                op,
                detail: e.to_string(),
            }
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(fail("open a NETLINK_ROUTE socket"))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(fail("bind the netlink socket"))?;
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(5, 0))
            .map_err(fail("set SO_RCVTIMEO on the netlink socket"))?;
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Sends `req` and waits for the kernel's ACK.
    ///
    /// # Errors
    /// [`RtnlError`] naming the request and the kernel's errno.
    pub fn request(&mut self, req: &Request) -> Result<(), RtnlError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let fail = |e: Errno| RtnlError {
            op: req.describe(),
            detail: e.to_string(),
        };
        let msg = req.encode(seq);
        sendto(
            self.fd.as_raw_fd(),
            &msg,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(fail)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    return Err(RtnlError {
                        op: req.describe(),
                        detail: "no answer from the kernel within 5 s".into(),
                    })
                }
                Err(e) => return Err(fail(e)),
            };
            if let Some(result) = find_ack(buf.get(..n).unwrap_or_default(), seq) {
                return result.map_err(fail);
            }
        }
    }

    /// Sets the link administratively up.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer.
    pub fn set_up(&mut self, ifindex: u32) -> Result<(), RtnlError> {
        self.request(&Request::LinkUp { ifindex })
    }

    /// Sets the MTU.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer (EINVAL beyond the driver's range).
    pub fn set_mtu(&mut self, ifindex: u32, mtu: u16) -> Result<(), RtnlError> {
        self.request(&Request::Mtu { ifindex, mtu })
    }

    /// Adds `address/prefix_len` with its broadcast address.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer.
    pub fn add_address(
        &mut self,
        ifindex: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), RtnlError> {
        self.request(&Request::Address {
            ifindex,
            address,
            prefix_len,
        })
    }

    /// Adds the default route via `gateway` out of `ifindex`; `dhcp` marks it `proto dhcp`.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer (ENETUNREACH if the gateway is off-link).
    pub fn add_default_route(
        &mut self,
        ifindex: u32,
        gateway: Ipv4Addr,
        dhcp: bool,
    ) -> Result<(), RtnlError> {
        self.request(&Request::DefaultRoute {
            ifindex,
            gateway,
            dhcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne32(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    fn hdr(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut h = ne32(len).to_vec();
        h.extend(kind.to_ne_bytes());
        h.extend(flags.to_ne_bytes());
        h.extend(ne32(seq));
        h.extend(ne32(0));
        h
    }

    fn rta(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        a.extend(kind.to_ne_bytes());
        a.extend(payload);
        a
    }

    #[test]
    fn link_up_golden() {
        let mut want = hdr(32, 16, 0x5, 7); // RTM_NEWLINK, REQUEST|ACK
        want.extend([0, 0, 0, 0]); // family, pad, type
        want.extend(ne32(3)); // ifindex
        want.extend(ne32(1)); // flags IFF_UP
        want.extend(ne32(1)); // change IFF_UP
        assert_eq!(Request::LinkUp { ifindex: 3 }.encode(7), want);
    }

    #[test]
    fn mtu_golden() {
        let mut want = hdr(40, 16, 0x5, 1);
        want.extend([0, 0, 0, 0]);
        want.extend(ne32(3));
        want.extend(ne32(0)); // flags untouched
        want.extend(ne32(0)); // change nothing
        want.extend(rta(4, &ne32(1400))); // IFLA_MTU
        assert_eq!(
            Request::Mtu {
                ifindex: 3,
                mtu: 1400
            }
            .encode(1),
            want
        );
    }

    #[test]
    fn address_golden() {
        let mut want = hdr(48, 20, 0x505, 2); // RTM_NEWADDR, REQUEST|ACK|REPLACE|CREATE
        want.extend([2, 24, 0, 0]); // AF_INET, /24, flags, scope universe
        want.extend(ne32(3));
        want.extend(rta(2, &[10, 0, 0, 5])); // IFA_LOCAL
        want.extend(rta(1, &[10, 0, 0, 5])); // IFA_ADDRESS
        want.extend(rta(4, &[10, 0, 0, 255])); // IFA_BROADCAST
        let req = Request::Address {
            ifindex: 3,
            address: Ipv4Addr::new(10, 0, 0, 5),
            prefix_len: 24,
        };
        assert_eq!(req.encode(2), want);
        // /31 and /32 have no broadcast address.
        let p2p = Request::Address {
            ifindex: 3,
            address: Ipv4Addr::new(10, 0, 0, 5),
            prefix_len: 31,
        };
        assert_eq!(p2p.encode(2).len(), 40);
    }

    #[test]
    fn default_route_golden() {
        let mut want = hdr(44, 24, 0x505, 9); // RTM_NEWROUTE
        want.extend([2, 0, 0, 0, 254, 16, 0, 1]); // AF_INET, default, main, dhcp, universe, unicast
        want.extend(ne32(0)); // rtm_flags
        want.extend(rta(5, &[10, 0, 0, 1])); // RTA_GATEWAY
        want.extend(rta(4, &ne32(3))); // RTA_OIF
        let req = Request::DefaultRoute {
            ifindex: 3,
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            dhcp: true,
        };
        assert_eq!(req.encode(9), want);
        let boot = Request::DefaultRoute {
            ifindex: 3,
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            dhcp: false,
        };
        want[NLMSG_HDRLEN + 5] = 3; // proto boot
        assert_eq!(boot.encode(9), want);
        assert_eq!(req.describe(), "add default route via 10.0.0.1");
    }

    fn ack(seq: u32, error: i32) -> Vec<u8> {
        let mut m = hdr(36, 2, 0, seq);
        m.extend(error.to_ne_bytes());
        m.extend(hdr(32, 16, 5, seq));
        m
    }

    #[test]
    fn acks_are_matched_by_sequence() {
        assert_eq!(find_ack(&ack(4, 0), 4), Some(Ok(())));
        assert_eq!(find_ack(&ack(4, -17), 4), Some(Err(Errno::EEXIST)));
        assert_eq!(find_ack(&ack(3, 0), 4), None);
        let mut two = ack(3, -1);
        two.extend(ack(4, -22));
        assert_eq!(find_ack(&two, 4), Some(Err(Errno::EINVAL)));
        // Truncated or nonsense input never panics.
        let a = ack(4, 0);
        for n in 0..a.len() {
            let _ = find_ack(&a[..n], 4);
        }
        let mut bad = ack(4, 0);
        bad[0..4].copy_from_slice(&ne32(3));
        assert_eq!(find_ack(&bad, 4), None);
        bad[0..4].copy_from_slice(&ne32(u32::MAX));
        assert_eq!(find_ack(&bad, 4), None);
    }
}
