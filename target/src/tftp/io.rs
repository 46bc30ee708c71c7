//! The byte-moving parts of a transfer thread: reading the content ([`Content`]) and waiting
//! for the next ACK ([`Spin`]).
//!
//! Measured with `tools/bench tftp` (loopback, 64 MiB, server and client on different CPUs):
//! - Each DATA packet is built in place in one buffer allocated once per transfer: the payload
//!   is read from the file (or copied from memory) straight behind its header, with no
//!   zero-filling or second copy per block, and sent at once.
//! - A window goes out as one `sendto` per packet. Sending it in one system call with UDP GSO
//!   (UDP_SEGMENT) was tried and measured slower with atftp at windowsize 16 (0.37 s against
//!   0.30 s for 64 MiB, median of 4, same run): a burst makes the client process the whole
//!   window before it can answer, while packet by packet its receiving overlaps the sending.
//!   sendmmsg(2) would burst the same way.
//! - [`Spin`] polls for the ACK briefly before sleeping (see its docs).

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, MsgFlags, SockaddrStorage};

use super::Source;

/// Bytes of file read ahead per read.
pub(super) const CHUNK: usize = 256 * 1024;
/// Blocks at least this large are read from the file straight into the packet; smaller ones
/// come from a [`CHUNK`]-sized read-ahead buffer (one read per many blocks).
const DIRECT: usize = 16 * 1024;

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank during the transfer",
    )
}

/// What a transfer reads from.
#[derive(Debug)]
pub(super) enum Content {
    /// A file, with its read-ahead buffer holding the bytes from `start`.
    File {
        file: File,
        size: u64,
        ahead: Vec<u8>,
        start: u64,
    },
    /// Bytes in memory.
    Bytes(std::sync::Arc<[u8]>),
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl Content {
    pub(super) fn new(source: Source) -> io::Result<Content> {
        Ok(match source {
            Source::File(file) => Content::File {
                size: file.metadata()?.len(),
                file,
                ahead: Vec::new(),
                start: 0,
            },
            Source::Bytes(b) => Content::Bytes(b),
        })
    }

    pub(super) fn size(&self) -> u64 {
        match self {
            Content::File { size, .. } => *size,
            Content::Bytes(b) => b.len() as u64,
        }
    }

    /// Fill `out` with the bytes at `offset`.
    ///
    /// # Errors
    /// A read error, or [`io::ErrorKind::UnexpectedEof`] when the file has become shorter.
    pub(super) fn read_into(&mut self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let len = out.len();
        match self {
            Content::Bytes(b) => {
                let from = usize::try_from(offset).map_err(|_| shrank())?;
                out.copy_from_slice(b.get(from..from + len).ok_or_else(shrank)?);
            }
            Content::File { file, .. } if len >= DIRECT => {
                if read_exact_at(file, out, offset)? < len {
                    return Err(shrank());
                }
            }
            Content::File {
                file, ahead, start, ..
            } => {
                let end = offset + len as u64;
                if offset < *start || end > *start + ahead.len() as u64 {
                    ahead.resize(CHUNK.max(len), 0);
                    let got = read_exact_at(file, ahead, offset)?;
                    ahead.truncate(got);
                    *start = offset;
                }
                let from = usize::try_from(offset - *start).map_err(|_| shrank())?;
                out.copy_from_slice(ahead.get(from..from + len).ok_or_else(shrank)?);
            }
        }
        Ok(())
    }
}

/// Busy-polling for the next ACK before sleeping in `recvfrom`.
///
/// In lock-step every block waits one round trip, and most of a loopback or LAN round trip is
/// the wake-up of a sleeping thread (in a VM, an idle vCPU's HLT exit). Polling the socket for
/// [`SPIN`] first takes the server's half of that cost away when the client answers fast (the
/// kernel's SO_BUSY_POLL does the same for NAPI devices, not for loopback or veth). It is
/// adaptive and bounded: only while at most [`SPIN_TRANSFERS`] transfers run, and after a spin
/// that came back empty (a slow client or a long path) it is skipped for the next
/// [`SPIN_COOLDOWN`] waits, so a slow client costs almost no CPU.
#[derive(Debug, Default)]
pub(super) struct Spin {
    cooldown: u32,
}

/// How long to poll for an ACK before sleeping.
const SPIN: Duration = Duration::from_micros(100);
/// Spin only while at most this many transfers are in flight.
const SPIN_TRANSFERS: usize = 2;
/// Waits without spinning after an empty spin.
const SPIN_COOLDOWN: u32 = 64;

impl Spin {
    /// A datagram that arrived within [`SPIN`], if spinning is on and one did.
    ///
    /// # Errors
    /// When the socket fails.
    pub(super) fn recv(
        &mut self,
        socket: &std::net::UdpSocket,
        buf: &mut [u8],
        in_flight: usize,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        if in_flight > SPIN_TRANSFERS {
            return Ok(None);
        }
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return Ok(None);
        }
        let until = Instant::now() + SPIN;
        loop {
            let mut iov = [io::IoSliceMut::new(buf)];
            let got = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                None,
                MsgFlags::MSG_DONTWAIT,
            );
            match got {
                Ok(msg) => {
                    if let Some(from) = msg.address.as_ref().and_then(socket_addr) {
                        return Ok(Some((msg.bytes, from)));
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= until {
                self.cooldown = SPIN_COOLDOWN;
                return Ok(None);
            }
            std::hint::spin_loop();
        }
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}
