//! The thin tokio adapter: UDP sockets on `0.0.0.0:port` (and 4011 in proxy mode) with
//! SO_BROADCAST and SO_REUSEADDR, bound to the configured interface with SO_BINDTODEVICE, feeding
//! [`Server::handle`] one datagram at a time.
//!
//! One task, no locks: the handler is fast (microseconds) and the lease file is small, so a
//! second task would only add ordering questions. A datagram that cannot be received or a
//! reply that cannot be sent is logged and the loop goes on: one bad client never stops the
//! server for the others.
//!
//! Group commit: after a datagram is received, those already queued (up to [`BATCH`]) are
//! handled too, their lease changes are appended to the lease file with one fsync, and only
//! then are their replies sent: an ACK never precedes its lease on disk, and a burst costs one
//! fsync instead of one per client.
//!
//! CANCEL-SAFETY: `serve` is cancelled only between datagrams (the `select!` arms are
//! `recv_from` and `changed`, both cancel-safe); replies are persisted and sent to completion
//! before the next `select!`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::SystemTime;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{info, warn};

use super::server::{Port, Source, PXE_PORT};
use super::{Mode, Server};

/// Largest datagram read: an Ethernet jumbo frame's worth; longer ones are cut and then fail
/// to parse, which is what they deserve.
const RECV_BUF: usize = 9000;
/// At most this many datagrams share one lease-file write (group commit).
const BATCH: usize = 64;

/// A UDP socket ready for DHCP on `port`.
fn bind(port: u16, interface: Option<&str>) -> std::io::Result<UdpSocket> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::setsockopt(&fd, sockopt::Broadcast, &true)?;
    if let Some(dev) = interface {
        socket::setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(dev))?;
    }
    let addr = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    socket::bind(fd.as_raw_fd(), &addr)?;
    UdpSocket::from_std(std::net::UdpSocket::from(fd))
}

impl Server {
    /// Serve until `stop` becomes true (or its sender is dropped).
    ///
    /// # Errors
    /// When a socket cannot be set up (port in use, no such interface, no permission);
    /// errors after that are logged, not returned.
    pub async fn serve(mut self, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
        let interface = self.settings.interface.clone();
        let port = self.settings.port;
        let main = bind(port, interface.as_deref())?;
        let pxe = match self.settings.mode {
            Mode::Proxy => Some(bind(PXE_PORT, interface.as_deref())?),
            Mode::Full => None,
        };
        info!(
            port,
            pxe_port = pxe.as_ref().map(|_| PXE_PORT),
            interface = interface.as_deref().unwrap_or("any"),
            server = %self.settings.server,
            mode = ?self.settings.mode,
            "DHCP server listening on 0.0.0.0:{port}"
        );
        let mut buf = vec![0u8; RECV_BUF];
        let mut pxe_buf = vec![0u8; RECV_BUF];
        loop {
            if *stop.borrow() {
                break;
            }
            let mut replies = Vec::new();
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
                r = main.recv_from(&mut buf) => match r {
                    Ok((len, from)) => replies.extend(self.handle_one(buf.get(..len), from, Port::Dhcp)),
                    Err(e) => warn!(error = %e, "DHCP receive failed"),
                },
                r = recv_opt(pxe.as_ref(), &mut pxe_buf) => match r {
                    Ok((len, from)) => replies.extend(self.handle_one(pxe_buf.get(..len), from, Port::PxeBoot)),
                    Err(e) => warn!(error = %e, "PXE boot-server receive failed"),
                },
            }
            // Group commit: handle what is already queued too, write the lease changes of all
            // of them with one fsync, then send their replies.
            for _ in 1..BATCH {
                match main.try_recv_from(&mut buf) {
                    Ok((len, from)) => {
                        replies.extend(self.handle_one(buf.get(..len), from, Port::Dhcp));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        warn!(error = %e, "DHCP receive failed");
                        break;
                    }
                }
            }
            if let Err(e) = self.persist() {
                warn!(error = %e, "cannot write the lease file; the change is only in memory");
            }
            for (port, reply) in replies {
                let socket = match port {
                    Port::PxeBoot => pxe.as_ref().unwrap_or(&main),
                    Port::Dhcp => &main,
                };
                if let Err(e) = socket.send_to(&reply.bytes, reply.destination).await {
                    warn!(error = %e, to = %reply.destination, "cannot send a DHCP reply");
                }
            }
        }
        if let Err(e) = self.persist() {
            warn!(error = %e, "cannot write the lease file at shutdown");
        }
        info!("DHCP server stopped");
        Ok(())
    }
}

impl Server {
    /// Handle one received datagram; the reply with the socket it goes out of.
    fn handle_one(
        &mut self,
        data: Option<&[u8]>,
        from: SocketAddr,
        port: Port,
    ) -> Option<(Port, super::Reply)> {
        let SocketAddr::V4(addr) = from else {
            return None;
        };
        let source = Source { addr, port };
        self.handle(data.unwrap_or_default(), source, SystemTime::now())
            .map(|r| (port, r))
    }
}

/// `recv_from` on the optional second socket; pending forever when there is none.
async fn recv_opt(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
