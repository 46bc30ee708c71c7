//! The kernel interface: NETLINK_ISCSI, the sysfs scan and wait, and module loading.
//!
//! DEVELOPERS.md reserves this folder for `unsafe` code; everything here is written with nix's
//! safe wrappers, so it has none.
//!
//! The attach ([`attach::attach`]) takes a TCP socket on which the login already ran in
//! userspace (`crate::session`) and hands it to iscsi_tcp: CREATE_SESSION, CREATE_CONN,
//! BIND_CONN with the socket's descriptor, SET_PARAM (the descriptive values that let iscsid in
//! the booted system adopt the session, then the negotiated ones with EXP_STATSN), START_CONN,
//! then a scan of the new SCSI host and a wait for the LUN's block device. Any failure tears the
//! half-built session down again, so that a retry never meets "session exists".

pub mod attach;
pub mod modules;
pub mod netlink;
pub mod uevent;

use std::path::Path;

use uevent::Op;

/// Where iscsi_tcp publishes its transport handle.
pub const TCP_TRANSPORT: &str = "/sys/class/iscsi_transport/tcp";

/// Why the kernel side failed. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// A module could not be loaded.
    #[error("cannot load kernel module {name}: {cause}")]
    Module {
        /// The module.
        name: String,
        /// Why.
        cause: String,
    },
    /// iscsi_tcp is loaded but its transport is not registered.
    #[error("iscsi_tcp transport missing: {0}")]
    NoTransport(String),
    /// A socket call on NETLINK_ISCSI failed.
    #[error("{call}: {errno}")]
    Socket {
        /// The call.
        call: &'static str,
        /// Its errno's description.
        errno: String,
    },
    /// The kernel refused a request.
    #[error("kernel refused {op}: {desc} (errno {errno})")]
    Request {
        /// The request.
        op: &'static str,
        /// The errno.
        errno: i32,
        /// Its description.
        desc: String,
    },
    /// No reply within the timeout.
    #[error("kernel did not answer {0} within 10 s")]
    NoReply(&'static str),
    /// A reply could not be decoded.
    #[error("garbled NETLINK_ISCSI reply: {0}")]
    Garbled(String),
    /// The scan did not produce the LUN.
    #[error("LUN {lun} not present on target {target} ({found})")]
    LunMissing {
        /// The LUN as Linux numbers it.
        lun: u64,
        /// The target name.
        target: String,
        /// What the scan found.
        found: String,
    },
    /// The LUN appeared but its block device did not.
    #[error("{0}")]
    NoBlockDevice(String),
    /// A sysfs file could not be read or written.
    #[error("{path}: {cause}")]
    Sysfs {
        /// The file.
        path: String,
        /// Why.
        cause: String,
    },
}

impl KernelError {
    fn socket(call: &'static str, e: nix::errno::Errno) -> Self {
        KernelError::Socket {
            call,
            errno: e.desc().to_owned(),
        }
    }

    fn request(op: Op, errno: i32) -> Self {
        KernelError::Request {
            op: op.name(),
            errno,
            desc: nix::errno::Errno::from_raw(errno).desc().to_owned(),
        }
    }

    fn sysfs(path: &Path, e: impl std::fmt::Display) -> Self {
        KernelError::Sysfs {
            path: path.display().to_string(),
            cause: e.to_string(),
        }
    }

    /// The agent's exit code for this failure: 15 for a missing LUN, 16 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            KernelError::LunMissing { .. } | KernelError::NoBlockDevice(_) => 15,
            _ => 16,
        }
    }
}

/// Whether the kernel's crypto API offers crc32c (built in or loaded): modules.builtin first,
/// as generating /proc/crypto costs the kernel more than reading a small file.
fn have_crc32c() -> bool {
    modules::any_builtin(&["crc32c_generic", "crc32c_intel"])
        || std::fs::read_to_string("/proc/crypto").is_ok_and(|t| {
            t.lines().any(|l| {
                l.split_once(':')
                    .is_some_and(|(k, v)| k.trim() == "name" && v.trim() == "crc32c")
            })
        })
}

/// Loads sd_mod, the SCSI disk driver, when missing. It binds to disks found before it loads
/// as well, so the boot loads it while the session is set up and scanned.
///
/// # Errors
/// [`KernelError::Module`].
pub fn prepare_disk(log: &mut dyn FnMut(&str)) -> Result<(), KernelError> {
    modules::ensure(&["sd_mod"], log)
}

/// Loads iscsi_tcp (with its dependencies) and crc32c when missing, and returns the tcp
/// transport's handle.
///
/// # Errors
/// [`KernelError::Module`] or [`KernelError::NoTransport`].
pub fn prepare(log: &mut dyn FnMut(&str)) -> Result<u64, KernelError> {
    if !Path::new(TCP_TRANSPORT).exists() {
        modules::ensure(&["iscsi_tcp"], log)?;
    }
    if !have_crc32c() {
        let loaded = modules::ensure(&["crc32c_intel"], log)
            .or_else(|_| modules::ensure(&["crc32c_generic"], log));
        if let Err(e) = loaded {
            if !have_crc32c() {
                return Err(e);
            }
        }
    }
    let path = Path::new(TCP_TRANSPORT).join("handle");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| KernelError::NoTransport(format!("{}: {e}", path.display())))?;
    text.trim()
        .parse::<u64>()
        .map_err(|e| KernelError::NoTransport(format!("{}: {e}", path.display())))
}
