//! The pxeroot lab: everything pxeroot promises is proven here, by booting a real Debian kernel
//! in QEMU on a private network against real servers.
//!
//! - [`netns`]: network namespaces with tap or veth links, removed by RAII guards, and removal of
//!   what a crashed earlier run left behind ([`netns::cleanup_leftovers`]).
//! - [`qemu`]: a QEMU runner (TCG, serial console captured to a file and readable line by line
//!   while the guest runs, hard timeout, killed on drop, direct kernel or PXE boot).
//! - [`initramfs`]: an initramfs builder (busybox, kernel modules in dependency order from
//!   modules.dep, extra binaries with their shared libraries, a generated `/init`).
//! - [`image`]: ext4 disk images from a directory tree.
//! - [`peers`]: the real peers: tgtd, dnsmasq, and the guest-side iscsistart and udhcpc steps.
//! - [`timeline`]: the boot timeline stamped by the guest from /proc/uptime.
//! - [`scenario`]: complete chains used by the tests and by `tools/demo`.
//!
//! Every lab entry point starts with [`Lab::require`], which names any missing precondition
//! (root, /dev/net/tun, a tool, the kernel cache) so that a lab test fails with its reason
//! instead of passing silently.

pub mod bench;
pub mod conformance;
pub mod image;
pub mod initramfs;
pub mod lab;
pub mod netns;
pub mod paths;
pub mod peers;
pub mod process;
pub mod qemu;
pub mod scenario;
pub mod timeline;

pub use lab::Lab;
