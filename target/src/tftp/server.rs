//! The TFTP I/O adapter: the listen socket on tokio, and one thread with one new UDP socket per
//! transfer; the cap on concurrent transfers, file reading, and the log lines.
//!
//! All protocol decisions are in [`super::packet`], [`super::options`] and
//! [`super::transfer`]; this file moves bytes and time. Each transfer socket is bound to the
//! listen address's IP on an ephemeral port (its TID) and, like the listen socket, to the
//! interface when one is configured. It stays unconnected so that a datagram from another TID
//! can be answered with error 5 (RFC 1350 §4) before being dropped.
//!
//! Why a thread per transfer and not a task: lock-step TFTP is bound by the round trip, and on
//! the runtime every block cost an epoll wake-up, a task switch and a timer on top of the two
//! system calls (`tools/bench tftp`, blksize 1468, one run: 11.6 MB/s against tftpd-hpa's
//! 13.5). A blocking socket with a receive timeout needs only `recvfrom` and `sendto` per
//! block (and `io::Spin` takes most of the wake-up away). Threads are
//! bounded by `max_transfers`; they are not taken from tokio's blocking pool, which the iSCSI
//! side needs for disk I/O.
//!
//! CANCEL-SAFETY: when `stop` turns true, [`Bound::serve`] raises a flag that every transfer
//! checks at least every `POLL` (200 ms), and returns once all slots are free (or after
//! `DRAIN`, 2 s).

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
};
use tokio::net::UdpSocket;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use super::io::{Content, Spin, ZeroCopy};
use super::options::{negotiate, Limits};
use super::packet::{data_header, error_packet, ErrorCode, Mode, Packet, PacketError, Request};
use super::transfer::{Outcome, Params, ReadTransfer, Transmit};
use super::{OpenError, Resolver, Settings};
use crate::throttle::Throttle;

/// Largest datagram accepted on either socket (requests rarely exceed 512 bytes).
const RECV_BUF: usize = 65536;
/// Longest a transfer thread blocks before it looks at the stop flag and its timer.
const POLL: Duration = Duration::from_millis(200);
/// How long `serve` waits for transfers to end after `stop`.
const DRAIN: Duration = Duration::from_secs(2);

/// The TFTP server (read-only).
#[derive(Debug)]
pub struct Server {
    settings: Settings,
    resolver: Arc<dyn Resolver>,
}

/// A server whose listen socket is bound.
#[derive(Debug)]
pub struct Bound {
    shared: Arc<Shared>,
    socket: UdpSocket,
    local: SocketAddr,
    /// Log lines about refused or malformed requests: a flood is summarised, not echoed.
    throttle: Mutex<Throttle>,
}

/// Lock-step transfers with blocks this large read the next block ahead.
const PREFETCH: usize = 16 * 1024;

/// At most [`LOG_BURST`] lines per kind of bad request in each [`LOG_INTERVAL`] seconds.
const LOG_INTERVAL: u64 = 10;
const LOG_BURST: u64 = 20;

#[derive(Debug)]
struct Shared {
    settings: Settings,
    resolver: Arc<dyn Resolver>,
    slots: Arc<Semaphore>,
    /// Clients with a transfer in flight: a retransmitted RRQ must not start a second one.
    active: Mutex<HashSet<SocketAddr>>,
    /// Raised when the server stops; transfers end.
    stopping: AtomicBool,
}

impl Server {
    /// A server with these settings and files.
    pub fn new(settings: Settings, resolver: Arc<dyn Resolver>) -> Server {
        Server { settings, resolver }
    }

    /// Bind the listen socket (and the interface, when set). Must run inside a tokio runtime.
    ///
    /// # Errors
    /// When the socket cannot be created or bound.
    pub fn bind(self) -> io::Result<Bound> {
        let mut settings = self.settings;
        // Semaphore::new panics above MAX_PERMITS; no machine runs that many transfers anyway.
        settings.max_transfers = settings.max_transfers.min(Semaphore::MAX_PERMITS);
        let std_socket = udp_socket(settings.listen, settings.interface.as_deref())?;
        let socket = UdpSocket::from_std(std_socket)?;
        let local = socket.local_addr()?;
        let slots = Arc::new(Semaphore::new(settings.max_transfers));
        Ok(Bound {
            throttle: Mutex::new(Throttle::new(LOG_INTERVAL, LOG_BURST)),
            shared: Arc::new(Shared {
                settings,
                resolver: self.resolver,
                slots,
                active: Mutex::new(HashSet::new()),
                stopping: AtomicBool::new(false),
            }),
            socket,
            local,
        })
    }

    /// Bind and serve until `stop` turns true.
    ///
    /// # Errors
    /// When the listen socket cannot be bound or fails.
    pub async fn serve(self, stop: watch::Receiver<bool>) -> io::Result<()> {
        self.bind()?.serve(stop).await
    }
}

/// A non-blocking UDP socket bound to `addr`, and to `interface` first when given.
fn udp_socket(addr: SocketAddr, interface: Option<&str>) -> io::Result<std::net::UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd: OwnedFd = socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    if let Some(dev) = interface {
        setsockopt(&fd, sockopt::BindToDevice, &OsString::from(dev))?;
    }
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(std::net::UdpSocket::from(fd))
}

async fn wait_stop(stop: &mut watch::Receiver<bool>) {
    // A dropped sender means nobody can stop us any more: stop too.
    let _ = stop.wait_for(|s| *s).await;
}

impl Bound {
    /// The bound listen address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serve requests until `stop` turns true; transfers in flight then end.
    ///
    /// # Errors
    /// Never at present (receive errors are logged and the loop goes on); the type leaves room.
    pub async fn serve(self, mut stop: watch::Receiver<bool>) -> io::Result<()> {
        info!(
            max_transfers = self.shared.settings.max_transfers,
            "TFTP server listening on {}", self.local
        );
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            tokio::select! {
                _ = wait_stop(&mut stop) => break,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, peer)) => {
                        let data = buf.get(..n).unwrap_or_default();
                        self.on_datagram(data, peer).await;
                    }
                    Err(e) => warn!(error = %e, "TFTP receive failed"),
                },
            }
        }
        self.shared.stopping.store(true, Ordering::Relaxed);
        let max = self.shared.settings.max_transfers;
        let until = tokio::time::Instant::now() + DRAIN;
        while self.shared.slots.available_permits() < max && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = max.saturating_sub(self.shared.slots.available_permits());
        info!("TFTP server stopped ({left} transfers still ending)");
        Ok(())
    }

    /// Whether a line about a bad request of `kind` may be logged now, and how many were not.
    fn may_log(&self, kind: &'static str) -> Option<u64> {
        let now = crate::dhcp::server::unix(std::time::SystemTime::now());
        self.throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(kind, now)
    }

    async fn reply(&self, peer: SocketAddr, code: ErrorCode, message: &str) {
        if let Err(e) = self
            .socket
            .send_to(&error_packet(code, message), peer)
            .await
        {
            debug!(%peer, error = %e, "cannot send a TFTP error");
        }
    }

    async fn on_datagram(&self, data: &[u8], peer: SocketAddr) {
        match Packet::parse(data) {
            Ok(Packet::Rrq(req)) => self.on_read_request(req, peer).await,
            Ok(Packet::Wrq(req)) => {
                if let Some(suppressed) = self.may_log("write") {
                    warn!(%peer, file = %req.filename, suppressed, "TFTP write request refused: this server is read-only");
                }
                self.reply(peer, ErrorCode::ACCESS_VIOLATION, "access violation")
                    .await;
            }
            Ok(other) => {
                debug!(%peer, packet = ?other, "TFTP packet for no transfer on the server port; ignored");
            }
            Err(PacketError::UnknownOpcode(op)) => {
                if let Some(suppressed) = self.may_log("opcode") {
                    warn!(%peer, opcode = op, suppressed, "TFTP unknown opcode {op}; answered with error 4");
                }
                self.reply(peer, ErrorCode::ILLEGAL_OPERATION, "illegal operation")
                    .await;
            }
            Err(e) => {
                if let Some(suppressed) = self.may_log("malformed") {
                    warn!(%peer, error = %e, suppressed, "TFTP malformed request; answered with error 4");
                }
                self.reply(peer, ErrorCode::ILLEGAL_OPERATION, "malformed request")
                    .await;
            }
        }
    }

    async fn on_read_request(&self, req: Request, peer: SocketAddr) {
        match req.mode {
            Mode::Octet | Mode::Netascii => {}
            _ => {
                if let Some(suppressed) = self.may_log("mode") {
                    warn!(%peer, file = %req.filename, mode = req.mode.as_str(), suppressed, "TFTP transfer mode refused");
                }
                self.reply(peer, ErrorCode::ILLEGAL_OPERATION, "unsupported mode")
                    .await;
                return;
            }
        }
        let shared = &self.shared;
        if shared
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&peer)
        {
            debug!(%peer, file = %req.filename, "retransmitted RRQ for a transfer in flight; ignored");
            return;
        }
        let Ok(permit) = Arc::clone(&shared.slots).try_acquire_owned() else {
            if let Some(suppressed) = self.may_log("busy") {
                warn!(%peer, file = %req.filename, max = shared.settings.max_transfers, suppressed,
                    "TFTP too many transfers; request refused");
            }
            self.reply(peer, ErrorCode::NOT_DEFINED, "too many transfers")
                .await;
            return;
        };
        shared
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer);
        let slot = Slot {
            shared: Arc::clone(shared),
            peer,
            _permit: permit,
        };
        let local_ip = self.local.ip();
        let file = req.filename.clone();
        let spawned = std::thread::Builder::new()
            .name("tftp-transfer".into())
            .spawn(move || {
                let file = req.filename.clone();
                if let Err(e) = transfer(&slot, local_ip, req) {
                    warn!(peer = %slot.peer, %file, error = %e, "TFTP transfer failed");
                }
            });
        if let Err(e) = spawned {
            // The closure, and with it the slot, is dropped: the slot is free again.
            warn!(%peer, %file, error = %e, "TFTP cannot start a transfer thread");
            self.reply(peer, ErrorCode::NOT_DEFINED, "server busy")
                .await;
        }
    }
}

/// A transfer's slot: its permit and its entry in the active set, both released on drop.
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.peer);
    }
}

fn open_error(e: &OpenError, peer: SocketAddr, file: &str) -> (ErrorCode, String) {
    match e {
        OpenError::NotFound => {
            info!(%peer, %file, "TFTP file not found");
            (ErrorCode::FILE_NOT_FOUND, "file not found".into())
        }
        OpenError::Denied(reason) => {
            warn!(%peer, %file, "TFTP read refused: {reason}");
            (ErrorCode::ACCESS_VIOLATION, "access violation".into())
        }
        OpenError::Io(err) => {
            warn!(%peer, %file, error = %err, "TFTP cannot open the file");
            (ErrorCode::NOT_DEFINED, err.to_string())
        }
    }
}

/// One read transfer from its own socket, on its own thread.
fn transfer(slot: &Slot, local_ip: IpAddr, req: Request) -> io::Result<()> {
    let settings = &slot.shared.settings;
    let peer = slot.peer;
    let socket = udp_socket(SocketAddr::new(local_ip, 0), settings.interface.as_deref())?;
    socket.set_nonblocking(false)?;
    let opened = slot
        .shared
        .resolver
        .open(&req.filename, peer)
        .and_then(|s| Content::new(s).map_err(OpenError::Io));
    let mut content = match opened {
        Ok(c) => c,
        Err(e) => {
            let (code, message) = open_error(&e, peer, &req.filename);
            socket.send_to(&error_packet(code, &message), peer)?;
            return Ok(());
        }
    };
    let size = content.size();
    let limits = Limits {
        max_blksize: settings.max_blksize,
        max_window: settings.max_window,
    };
    let negotiated = negotiate(&req.options, limits, size);
    if req.mode == Mode::Netascii {
        debug!(%peer, file = %req.filename, "netascii request served as octet");
    }
    let params = Params {
        size,
        blksize: negotiated.blksize,
        window: negotiated.window,
        timeout: negotiated.timeout.unwrap_or(settings.timeout),
        retries: settings.retries,
        oack: !negotiated.oack.is_empty(),
    };
    // The receive timeout bounds how late a retransmission or a stop can be noticed.
    socket.set_read_timeout(Some(params.timeout.min(POLL).max(Duration::from_millis(1))))?;
    let oack = Packet::Oack {
        options: negotiated.oack,
    }
    .to_vec();
    debug!(%peer, file = %req.filename, ?params, "TFTP transfer starts");
    let started = Instant::now();
    let mut fsm = ReadTransfer::new(params);
    // One DATA packet, built in place and sent at once: in a window the client starts on the
    // first block while the next ones are read.
    let mut packet = vec![0u8; usize::from(params.blksize) + 4];
    let mut rbuf = vec![0u8; RECV_BUF];
    let mut spin = Spin::default();
    let mut zero_copy = ZeroCopy::new();
    // The block already read into `packet` (offset, length), and where the last block sent ended.
    let mut ready: Option<(u64, usize)> = None;
    let mut sent_end: u64 = 0;
    loop {
        if slot.shared.stopping.load(Ordering::Relaxed) {
            debug!(%peer, file = %req.filename, "TFTP transfer stopped with the server");
            return Ok(());
        }
        let now = Instant::now();
        while let Some(tx) = fsm.poll_transmit(now) {
            match tx {
                Transmit::Oack => socket.send_to(&oack, peer)?,
                Transmit::Data { block, offset, len } if ready == Some((offset, len)) => {
                    // Read while the client was busy with the previous block: the ACK is
                    // answered with one send.
                    ready = None;
                    let Some(room) = packet.get_mut(..4 + len) else {
                        return Err(io::Error::other("block larger than blksize"));
                    };
                    room[..4].copy_from_slice(&data_header(block));
                    sent_end = offset + len as u64;
                    socket.send_to(room, peer)?
                }
                Transmit::Data { block, offset, len } if zero_copy.wants(&content, len) => {
                    // The fallback path may use the packet buffer: what was read ahead is gone.
                    ready = None;
                    sent_end = offset + len as u64;
                    let Some(scratch) = packet.get_mut(4..4 + len) else {
                        return Err(io::Error::other("block larger than blksize"));
                    };
                    let header = data_header(block);
                    zero_copy.send(&socket, peer, header, &mut content, offset, scratch)?;
                    len + 4
                }
                Transmit::Data { block, offset, len } => {
                    let Some(room) = packet.get_mut(..4 + len) else {
                        return Err(io::Error::other("block larger than blksize"));
                    };
                    let (header, payload) = room.split_at_mut(4);
                    header.copy_from_slice(&data_header(block));
                    ready = None;
                    sent_end = offset + len as u64;
                    if let Err(e) = content.read_into(offset, payload) {
                        let packet = error_packet(ErrorCode::NOT_DEFINED, "read error");
                        socket.send_to(&packet, peer)?;
                        return Err(e);
                    }
                    socket.send_to(room, peer)?
                }
                Transmit::Error { code, message } => {
                    socket.send_to(&error_packet(code, &message), peer)?
                }
            };
        }
        if let Some(outcome) = fsm.outcome() {
            report(outcome, peer, &req.filename, &params, &fsm, started);
            return Ok(());
        }
        // Lock-step with large blocks: read the next block now, while the client takes this
        // one, so that its ACK costs one send instead of a read and a send.
        if params.window == 1 && ready.is_none() && usize::from(params.blksize) >= PREFETCH {
            if let Content::File { size, .. } = &content {
                let len = usize::try_from(size.saturating_sub(sent_end))
                    .unwrap_or(usize::MAX)
                    .min(usize::from(params.blksize));
                if len > 0 {
                    if let Some(payload) = packet.get_mut(4..4 + len) {
                        if content.read_into(sent_end, payload).is_ok() {
                            ready = Some((sent_end, len));
                        }
                    }
                }
            }
        }
        let in_flight = settings
            .max_transfers
            .saturating_sub(slot.shared.slots.available_permits());
        if let Some((n, from)) = spin.recv(&socket, &mut rbuf, in_flight)? {
            handle(
                &socket,
                &mut fsm,
                peer,
                rbuf.get(..n).unwrap_or_default(),
                from,
            );
            continue;
        }
        match socket.recv_from(&mut rbuf) {
            Ok((n, from)) => handle(
                &socket,
                &mut fsm,
                peer,
                rbuf.get(..n).unwrap_or_default(),
                from,
            ),
            // The receive timeout: the loop checks the timer and the stop flag.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn handle(
    socket: &std::net::UdpSocket,
    fsm: &mut ReadTransfer,
    peer: SocketAddr,
    data: &[u8],
    from: SocketAddr,
) {
    if from != peer {
        debug!(%peer, %from, "TFTP packet from another TID; answered with error 5");
        let packet = error_packet(ErrorCode::UNKNOWN_TID, "unknown transfer ID");
        let _ = socket.send_to(&packet, from);
        return;
    }
    match Packet::parse(data) {
        Ok(p) => fsm.handle(&p),
        Err(e) => debug!(%peer, error = %e, "malformed TFTP packet in a transfer; ignored"),
    }
}

fn report(
    outcome: &Outcome,
    peer: SocketAddr,
    file: &str,
    params: &Params,
    fsm: &ReadTransfer,
    started: Instant,
) {
    let ms = started.elapsed().as_millis();
    let stats = fsm.stats();
    match outcome {
        Outcome::Completed => info!(
            %peer, %file, bytes = params.size, blksize = params.blksize, window = params.window,
            ms, resent = stats.resent, "TFTP sent {file}"
        ),
        Outcome::TimedOut => warn!(
            %peer, %file, timeouts = stats.timeouts,
            "TFTP transfer abandoned: the client stopped answering"
        ),
        Outcome::ClientError { code, message } => info!(
            %peer, %file, %code, %message, "TFTP transfer ended by the client"
        ),
        Outcome::Illegal(what) => warn!(%peer, %file, "TFTP transfer ended: {what}"),
    }
}

#[cfg(test)]
mod tests;
