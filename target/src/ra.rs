//! Empty IPv6 router advertisements for the clients' boot firmware.
//!
//! iPXE configures IPv4 (DHCP) and IPv6 (router solicitations) side by side and boots only when
//! both have finished: on an IPv4-only boot network it sends router solicitations for about 13 s
//! before giving up on IPv6. The first solicited router advertisement ends that wait; when it has
//! neither the "managed" nor the "other configuration" flag, iPXE needs nothing more.
//!
//! So this answers a router solicitation that comes from a `[[client]]` MAC (its source
//! link-layer address option) with a unicast advertisement to that client alone: router lifetime
//! 0 (this server is no default router), no flags, no prefix, no option. It configures nothing on
//! any host; other machines' solicitations are not answered.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, info, warn};

/// ICMPv6 type of a router solicitation (RFC 4861 §4.1).
pub const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a router advertisement (RFC 4861 §4.2).
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// NDP option: source link-layer address.
const OPT_SOURCE_LL: u8 = 1;
/// All-routers link-local multicast group, where solicitations go.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// All-nodes link-local multicast group.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The source link-layer address (an Ethernet MAC) of a router solicitation, if `packet` (the
/// ICMPv6 message, from its type byte) is one that carries it.
pub fn solicitation_mac(packet: &[u8]) -> Option<[u8; 6]> {
    if packet.first() != Some(&ROUTER_SOLICITATION) || packet.get(1) != Some(&0) {
        return None;
    }
    // Type, code, checksum, 4 reserved bytes, then options of (type, length in 8-byte units).
    let mut options = packet.get(8..)?;
    while let [kind, units, ..] = *options {
        let len = usize::from(units) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if kind == OPT_SOURCE_LL && len == 8 {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(options.get(2..8)?);
            return Some(mac);
        }
        options = options.get(len..)?;
    }
    None
}

/// The advertisement: hop limit unspecified, no flags, router lifetime 0, reachable time and
/// retransmission timer unspecified, no options. The kernel fills in the checksum.
pub fn empty_advertisement() -> [u8; 16] {
    let mut ra = [0u8; 16];
    ra[0] = ROUTER_ADVERTISEMENT;
    ra
}

/// The interface that holds `address`, for a server configured without `interface`.
pub fn interface_with(address: std::net::Ipv4Addr) -> Option<String> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        let sin = ifa.address.as_ref()?.as_sockaddr_in()?;
        (sin.ip() == address).then_some(ifa.interface_name)
    })
}

/// The interface index of `name`.
fn if_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(io::Error::from)
}

/// Answers router solicitations from these MACs on `interface` until `stop` turns true.
///
/// # Errors
/// When the socket cannot be set up (no IPv6, no CAP_NET_RAW): the caller logs it and boots go
/// on without it (iPXE then waits for IPv6 as it would anyway).
pub async fn serve(
    interface: &str,
    clients: HashSet<[u8; 6]>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> io::Result<()> {
    let index = if_index(interface)?;
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(interface.as_bytes()))?;
    // RFC 4861 §6.1.2: receivers drop an advertisement whose hop limit is not 255.
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_hops_v6(255)?;
    socket.set_multicast_if_v6(index)?;
    socket.join_multicast_v6(&ALL_ROUTERS, index)?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
    info!(
        interface,
        clients = clients.len(),
        "IPv6 router solicitations from clients answered (empty advertisement: iPXE stops waiting for IPv6)"
    );
    let mut buf = [0u8; 1500];
    loop {
        let (len, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => r?,
            _ = stop.changed() => return Ok(()),
        };
        let Some(mac) = buf.get(..len).and_then(solicitation_mac) else {
            continue;
        };
        let mac_text = crate::dhcp::leases::format_mac(&mac);
        if !clients.contains(&mac) {
            debug!(mac = %mac_text, "router solicitation from a machine without [[client]]: not answered");
            continue;
        }
        let SocketAddr::V6(from) = from else { continue };
        let to = if from.ip().is_unspecified() {
            ALL_NODES
        } else {
            *from.ip()
        };
        let dest = SocketAddrV6::new(to, 0, 0, index);
        match socket.send_to(&empty_advertisement(), dest).await {
            Ok(_) => {
                info!(mac = %mac_text, to = %to, "IPv6 router advertisement sent (empty: no router, no prefix)")
            }
            Err(e) => {
                warn!(mac = %mac_text, error = %e, "cannot send the IPv6 router advertisement")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solicitation(options: &[u8]) -> Vec<u8> {
        let mut p = vec![ROUTER_SOLICITATION, 0, 0x12, 0x34, 0, 0, 0, 0];
        p.extend_from_slice(options);
        p
    }

    #[test]
    fn the_mac_comes_from_the_source_link_layer_option() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let mut opt = vec![OPT_SOURCE_LL, 1];
        opt.extend_from_slice(&mac);
        assert_eq!(solicitation_mac(&solicitation(&opt)), Some(mac));
        // After another option.
        let mut two = vec![99, 1, 0, 0, 0, 0, 0, 0];
        two.extend_from_slice(&opt);
        assert_eq!(solicitation_mac(&solicitation(&two)), Some(mac));
    }

    #[test]
    fn malformed_or_foreign_messages_give_nothing() {
        assert_eq!(solicitation_mac(&[]), None);
        assert_eq!(solicitation_mac(&solicitation(&[])), None);
        // Zero-length option (RFC 4861 says discard), and one running past the end.
        assert_eq!(
            solicitation_mac(&solicitation(&[1, 0, 1, 2, 3, 4, 5, 6])),
            None
        );
        assert_eq!(
            solicitation_mac(&solicitation(&[1, 2, 1, 2, 3, 4, 5, 6])),
            None
        );
        let mut ra = solicitation(&[1, 1, 1, 2, 3, 4, 5, 6]);
        ra[0] = ROUTER_ADVERTISEMENT;
        assert_eq!(solicitation_mac(&ra), None);
        let mut code = solicitation(&[1, 1, 1, 2, 3, 4, 5, 6]);
        code[1] = 1;
        assert_eq!(solicitation_mac(&code), None);
    }

    #[test]
    fn the_advertisement_announces_nothing() {
        let ra = empty_advertisement();
        assert_eq!(ra[0], ROUTER_ADVERTISEMENT);
        assert!(ra[1..].iter().all(|b| *b == 0), "{ra:?}");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_safe(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = solicitation_mac(&bytes);
        }
    }
}
