//! The NETLINK_ISCSI socket: one request, one unicast reply.
//!
//! The socket is bound with no multicast groups, so only the kernel's replies to our own requests
//! arrive (the asynchronous events of group 1 belong to a resident daemon, which this agent is
//! not). The kernel answers with `nlmsg_type` equal to the request's type and sequence 0, so a
//! reply is matched by type.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, getsockname, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags,
    NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

use super::uevent::{decode, Incoming, Reply, Request};
use super::KernelError;

/// How long one request may wait for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open NETLINK_ISCSI socket.
#[derive(Debug)]
pub struct IscsiNetlink {
    fd: OwnedFd,
    port_id: u32,
    seq: u32,
}

impl IscsiNetlink {
    /// Opens and binds the socket (this autoloads scsi_transport_iscsi).
    ///
    /// # Errors
    /// [`KernelError::Netlink`] naming the failing call.
    pub fn open() -> Result<Self, KernelError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkISCSI,
        )
        .map_err(|e| KernelError::socket("socket(NETLINK_ISCSI)", e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| KernelError::socket("bind(NETLINK_ISCSI)", e))?;
        let tv = TimeVal::new(i64::try_from(REPLY_TIMEOUT.as_secs()).unwrap_or(10), 0);
        setsockopt(&fd, sockopt::ReceiveTimeout, &tv)
            .map_err(|e| KernelError::socket("setsockopt(SO_RCVTIMEO)", e))?;
        let addr: NetlinkAddr = getsockname(fd.as_raw_fd())
            .map_err(|e| KernelError::socket("getsockname(NETLINK_ISCSI)", e))?;
        Ok(IscsiNetlink {
            fd,
            port_id: addr.pid(),
            seq: 0,
        })
    }

    /// Sends one request and waits for its reply.
    ///
    /// # Errors
    /// [`KernelError::Request`] with the kernel's errno, or a socket error.
    pub fn call(&mut self, req: &Request) -> Result<Reply, KernelError> {
        self.seq = self.seq.wrapping_add(1);
        let msg = req.encode(self.seq, self.port_id);
        loop {
            match send(self.fd.as_raw_fd(), &msg, MsgFlags::empty()) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(KernelError::request(req.op, e as i32)),
            }
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Err(KernelError::NoReply(req.op.name())),
                Err(e) => return Err(KernelError::socket("recv(NETLINK_ISCSI)", e)),
            };
            let msgs = decode(&buf[..n]).map_err(|e| KernelError::Garbled(e.to_string()))?;
            for m in msgs {
                match m {
                    Incoming::Reply {
                        msg_type, result, ..
                    } if msg_type == req.op as u16 => {
                        return result.map_err(|errno| KernelError::request(req.op, errno));
                    }
                    Incoming::Ack { errno, .. } if errno != 0 => {
                        return Err(KernelError::request(req.op, errno));
                    }
                    _ => {}
                }
            }
        }
    }
}
