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
//! - Blocks of 16 KiB and more go with [`ZeroCopy`]: header corked, payload by sendfile(2)
//!   from the page cache (blksize 65464, curl, 5 alternating runs each: 0.35 s against 0.38 s
//!   median for 64 MiB; within this machine's noise, but two copies of 64 KiB fewer per block).
//!   In lock-step the transfer loop (server.rs) reads the next such block ahead instead, while
//!   the client handles the current one, and answers the ACK with one send: at blksize 65464
//!   that put pxeroot ahead of tftpd-hpa in three runs out of three (480.6/470.8, 494.9/466.1,
//!   521.6/491.8 MB/s), where sendfile alone tied it (551.8/456.3, then 401.0/429.2).
//! - [`Spin`] polls for the ACK briefly before sleeping (see its docs).

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::sendfile::sendfile64;
use nix::sys::socket::{recvmsg, sendto, MsgFlags, SockaddrStorage};
use tracing::debug;

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

/// Sends DATA packets of large blocks without copying the payload through user space: the
/// header goes out corked (MSG_MORE) and sendfile(2) appends the block's pages from the page
/// cache to the same datagram, which leaves when the block is complete. Where the kernel or
/// the device cannot (no scatter-gather), the payload is read and sent by copy instead, for
/// the rest of the transfer.
#[derive(Debug)]
pub(super) struct ZeroCopy {
    on: bool,
}

impl ZeroCopy {
    pub(super) fn new() -> ZeroCopy {
        ZeroCopy { on: true }
    }

    /// Whether a block of `len` bytes of `content` goes by [`Self::send`].
    pub(super) fn wants(&self, content: &Content, len: usize) -> bool {
        self.on && len >= DIRECT && matches!(content, Content::File { .. })
    }

    /// Send `header` then `len` bytes of the file at `offset` as one datagram; `scratch` (at
    /// least `len` bytes) is used when the zero-copy path is refused.
    ///
    /// # Errors
    /// When the socket or the file fails, or the file has become shorter.
    pub(super) fn send(
        &mut self,
        socket: &std::net::UdpSocket,
        peer: SocketAddr,
        header: [u8; 4],
        content: &mut Content,
        offset: u64,
        scratch: &mut [u8],
    ) -> io::Result<()> {
        let Content::File { file, .. } = content else {
            return Err(io::Error::other("zero-copy send of in-memory content"));
        };
        let len = scratch.len();
        let addr = SockaddrStorage::from(peer);
        // MSG_MORE: nix 0.29 has no name for it.
        let more = MsgFlags::from_bits_retain(nix::libc::MSG_MORE);
        sendto(socket.as_raw_fd(), &header, &addr, more)?;
        let mut off = i64::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
        let mut sent = 0;
        while sent < len {
            match sendfile64(socket, &*file, Some(&mut off), len - sent) {
                Ok(0) => {
                    // Push out what is corked, then stop: the file shrank.
                    sendto(socket.as_raw_fd(), &[], &addr, MsgFlags::empty())?;
                    return Err(shrank());
                }
                Ok(n) => sent += n,
                Err(Errno::EINTR) => {}
                Err(e @ (Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOSYS)) if sent == 0 => {
                    debug!(error = %e, "sendfile to UDP refused; copying blocks instead");
                    self.on = false;
                    // The header is still corked: the copied payload completes its datagram.
                    if read_exact_at(file, scratch, offset)? < len {
                        sendto(socket.as_raw_fd(), &[], &addr, MsgFlags::empty())?;
                        return Err(shrank());
                    }
                    sendto(socket.as_raw_fd(), scratch, &addr, MsgFlags::empty())?;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (std::net::UdpSocket, std::net::UdpSocket, SocketAddr) {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = rx.local_addr().unwrap();
        (rx, tx, peer)
    }

    fn temp_file(tag: &str, data: &[u8]) -> (std::path::PathBuf, File) {
        let path =
            std::env::temp_dir().join(format!("pxeroot-tftp-io-{tag}-{}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        let file = File::open(&path).unwrap();
        (path, file)
    }

    #[test]
    fn zero_copy_block_is_one_datagram_with_its_header() {
        let (rx, tx, peer) = pair();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (path, file) = temp_file("zc", &data);
        let mut content = Content::new(Source::File(file)).unwrap();
        let mut zc = ZeroCopy::new();
        assert!(zc.wants(&content, 40_000));
        let mut scratch = vec![0u8; 40_000];
        for (block, offset) in [(1u16, 0u64), (2, 40_000)] {
            zc.send(
                &tx,
                peer,
                [0, 3, 0, block as u8],
                &mut content,
                offset,
                &mut scratch,
            )
            .unwrap();
        }
        assert!(zc.on, "this kernel takes sendfile to UDP");
        let mut buf = vec![0u8; 70_000];
        for (block, offset) in [(1u8, 0usize), (2, 40_000)] {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(n, 40_004);
            assert_eq!(&buf[..4], &[0, 3, 0, block]);
            assert!(buf[4..n] == data[offset..offset + 40_000]);
        }
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn corked_header_and_copied_payload_are_one_datagram() {
        // The fallback of ZeroCopy::send relies on this.
        let (rx, tx, peer) = pair();
        let addr = SockaddrStorage::from(peer);
        let more = MsgFlags::from_bits_retain(nix::libc::MSG_MORE);
        sendto(tx.as_raw_fd(), &[0, 3, 0, 9], &addr, more).unwrap();
        sendto(tx.as_raw_fd(), &[7; 30_000], &addr, MsgFlags::empty()).unwrap();
        let mut buf = vec![0u8; 70_000];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(n, 30_004);
        assert_eq!(&buf[..4], &[0, 3, 0, 9]);
        assert!(buf[4..n].iter().all(|b| *b == 7));
    }

    #[test]
    fn small_blocks_come_from_the_read_ahead() {
        let data: Vec<u8> = (0..(CHUNK as u32 + 5000))
            .map(|i| (i % 253) as u8)
            .collect();
        let (path, file) = temp_file("ra", &data);
        let mut content = Content::new(Source::File(file)).unwrap();
        assert!(!ZeroCopy::new().wants(&content, 1468));
        let mut out = vec![0u8; 1468];
        for offset in [0u64, 1468, CHUNK as u64 - 100, CHUNK as u64 + 3532] {
            content.read_into(offset, &mut out).unwrap();
            let o = offset as usize;
            assert!(out == data[o..o + 1468], "offset {offset}");
        }
        // Past the end: the file "shrank".
        let err = content
            .read_into(data.len() as u64 - 10, &mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_file(path).unwrap();
    }
}
