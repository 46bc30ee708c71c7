//! Waiting for the kernel to announce a change instead of polling sysfs in a loop.
//!
//! The boot waits twice: for the NIC's carrier, and for the root LUN's block device. Polling
//! sysfs every few milliseconds costs CPU that, on a slow machine (QEMU TCG in the lab), the
//! module loader and the network stack need. [`Events`] is a netlink socket subscribed to the
//! kernel's announcements (link changes on NETLINK_ROUTE, device uevents on
//! NETLINK_KOBJECT_UEVENT): the caller checks sysfs, and if the thing is not there yet, waits
//! on the socket until the kernel says something changed or a fallback interval passes. The
//! messages themselves are only a wake-up and are discarded.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recv, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

/// Which announcements to wake on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// rtnetlink's link group (`RTMGRP_LINK`): interfaces appearing, carrier changes.
    Link,
    /// Kernel uevents: devices added, drivers bound.
    Uevent,
}

/// A subscription; if the socket cannot be opened, waits degrade to plain sleeps.
#[derive(Debug)]
pub struct Events {
    fd: Option<OwnedFd>,
}

impl Events {
    /// Subscribes. Never fails: without the socket, [`Events::wait`] sleeps instead.
    pub fn open(kind: Kind) -> Self {
        let (proto, groups) = match kind {
            Kind::Link => (SockProtocol::NetlinkRoute, 1),
            Kind::Uevent => (SockProtocol::NetlinkKObjectUEvent, 1),
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            proto,
        )
        .ok()
        .filter(|fd| bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).is_ok());
        Events { fd }
    }

    /// Waits until the kernel announces something or `fallback` passes, then drains what
    /// arrived.
    pub fn wait(&self, fallback: Duration) {
        let Some(fd) = &self.fd else {
            std::thread::sleep(fallback);
            return;
        };
        let ms = u16::try_from(fallback.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(ms)).is_err() {
            std::thread::sleep(fallback);
            return;
        }
        let mut buf = [0u8; 8192];
        while recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).is_ok_and(|n| n > 0) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wait_returns_after_the_fallback_when_nothing_happens() {
        for kind in [Kind::Link, Kind::Uevent] {
            let e = Events::open(kind);
            let t0 = Instant::now();
            e.wait(Duration::from_millis(30));
            // Something may happen on a busy host; the wait never exceeds the fallback by much.
            assert!(t0.elapsed() < Duration::from_millis(500));
        }
    }
}
