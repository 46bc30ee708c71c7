//! The thin I/O driver around [`super::dhcp::Client`]: one UDP socket on 0.0.0.0:68 bound to
//! the interface (`SO_BINDTODEVICE`) with `SO_BROADCAST`, sending to 255.255.255.255:67.
//!
//! This works on an interface without an address: Linux routes a limited broadcast out of the
//! bound device with source 0.0.0.0, and delivers broadcast replies (the client sets the
//! BROADCAST flag) to a socket bound to the wildcard address on that device. The netns test
//! (`tests/net_lab.rs`) exercises exactly that against dnsmasq, so no AF_PACKET socket is
//! needed.
//!
//! One difference from a raw socket: if another interface of the machine already has an
//! address, the kernel uses it as the source of the broadcast instead of 0.0.0.0. DHCP
//! servers answer by the BROADCAST flag and `chaddr`, not by the source, so this does not
//! matter on a boot network; it only shows when client and server share one network
//! namespace, where the server's kernel drops a packet whose source is its own address
//! (hence the lab's two namespaces).

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
};

use super::dhcp::{Bound, Client, Entropy, Poll, Stats, CLIENT_PORT, SERVER_PORT};

/// A failed socket call.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct SocketError {
    /// The call (`bind 0.0.0.0:68`, `send DISCOVER`, ...).
    pub op: &'static str,
    /// The system's answer.
    pub source: io::Error,
}

fn err(op: &'static str) -> impl FnOnce(nix::Error) -> SocketError {
    move |e| SocketError {
        op,
        source: io::Error::from(e),
    }
}

/// The DHCP client socket of one interface.
#[derive(Debug)]
pub struct DhcpSocket {
    sock: UdpSocket,
}

impl DhcpSocket {
    /// Opens 0.0.0.0:68 on `ifname`.
    ///
    /// # Errors
    /// [`SocketError`] naming the call that failed (EADDRINUSE if another DHCP client runs,
    /// EPERM without CAP_NET_RAW for `SO_BINDTODEVICE`).
    pub fn open(ifname: &str) -> Result<Self, SocketError> {
        let fd: OwnedFd = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(err("socket(AF_INET, SOCK_DGRAM)"))?;
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(err("SO_REUSEADDR"))?;
        setsockopt(&fd, sockopt::Broadcast, &true).map_err(err("SO_BROADCAST"))?;
        setsockopt(&fd, sockopt::BindToDevice, &OsString::from(ifname))
            .map_err(err("SO_BINDTODEVICE"))?;
        let any = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT));
        bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &any).map_err(err("bind 0.0.0.0:68"))?;
        Ok(DhcpSocket {
            sock: UdpSocket::from(fd),
        })
    }

    /// Broadcasts one datagram to the servers.
    ///
    /// # Errors
    /// The system's answer.
    pub fn send(&self, datagram: &[u8]) -> io::Result<()> {
        let to = SocketAddr::from((Ipv4Addr::BROADCAST, SERVER_PORT));
        self.sock.send_to(datagram, to).map(|_| ())
    }

    /// Waits for one datagram until `until`; `Ok(None)` on timeout.
    ///
    /// # Errors
    /// The system's answer, other than a timeout or an interrupted call.
    pub fn recv(&self, buf: &mut [u8], until: Instant) -> io::Result<Option<usize>> {
        let left = until.saturating_duration_since(Instant::now());
        // A zero timeout means "block forever" to the kernel.
        let left = left.max(Duration::from_millis(1));
        self.sock.set_read_timeout(Some(left))?;
        match self.sock.recv_from(buf) {
            Ok((n, _)) => Ok(Some(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// How the exchange ended without a lease.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A socket call failed.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The deadline passed.
    #[error("timed out")]
    TimedOut(Stats),
}

/// Runs `client` over `sock` until it is bound or gives up. `log` gets a line per NAK and,
/// with `debug`, one per other accepted or ignored datagram.
///
/// # Errors
/// [`RunError`].
pub fn run<E: Entropy>(
    client: &mut Client<E>,
    sock: &DhcpSocket,
    log: &mut dyn FnMut(&str),
    debug: bool,
) -> Result<Bound, RunError> {
    let mut buf = vec![0u8; 4096];
    loop {
        match client.poll(Instant::now()) {
            Poll::Transmit(packet) => sock.send(&packet).map_err(|source| SocketError {
                op: "send to 255.255.255.255:67",
                source,
            })?,
            Poll::Bound(b) => return Ok(*b),
            Poll::TimedOut(stats) => return Err(RunError::TimedOut(stats)),
            Poll::Wait(until) => {
                let got = sock.recv(&mut buf, until).map_err(|source| SocketError {
                    op: "receive on 0.0.0.0:68",
                    source,
                })?;
                let Some(n) = got else { continue };
                let datagram = buf.get(..n).unwrap_or_default();
                match client.handle(Instant::now(), datagram) {
                    Ok(super::dhcp::Received::Nak { server, message }) => log(&format!(
                        "DHCP server {server} sent NAK{}; starting over",
                        message.map(|m| format!(" ({m})")).unwrap_or_default()
                    )),
                    Ok(r) if debug => log(&format!("DHCP {r:?}")),
                    Err(why) if debug => log(&format!("ignored a datagram: {why}")),
                    Ok(_) | Err(_) => {}
                }
            }
        }
    }
}
