//! Lab preconditions. A lab test calls [`Lab::require`] first: when something is missing it
//! fails with the reason (never a silent pass), and the first call in a process removes what a
//! killed earlier run left behind.

use std::sync::Mutex;

use anyhow::{bail, Result};

use crate::netns;
use crate::paths::Kernel;
use crate::process::have_tool;

/// The host tools the lab drives. `tools/setup` installs every one of them.
pub const TOOLS: &[&str] = &[
    "ip",
    "qemu-system-x86_64",
    "tgtd",
    "tgtadm",
    "dnsmasq",
    "iscsistart",
    "mkfs.ext4",
    "cpio",
    "ldd",
    "/bin/busybox",
];

/// A checked lab: root, /dev/net/tun, the tools and the kernel cache are present.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The Debian kernel the guests boot.
    pub kernel: Kernel,
}

impl Lab {
    /// Check every precondition and clean leftovers of killed runs (once per process).
    ///
    /// # Errors
    /// Names each missing precondition and how to get it.
    pub fn require() -> Result<Lab> {
        let mut missing = Vec::new();
        if !nix::unistd::geteuid().is_root() {
            missing.push("root (network namespaces, tap devices and tgtd need it)".to_string());
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            missing.push("/dev/net/tun".to_string());
        }
        for tool in TOOLS {
            if !have_tool(tool) {
                missing.push(format!("the tool `{tool}`"));
            }
        }
        let kernel = Kernel::locate();
        if let Err(e) = &kernel {
            missing.push(format!("{e:#}"));
        }
        match kernel {
            Ok(kernel) if missing.is_empty() => {
                clean_once()?;
                Ok(Lab { kernel })
            }
            _ => bail!(
                "the lab is not available here; missing: {}. Run tools/setup as root (tools/test does).",
                missing.join("; ")
            ),
        }
    }
}

fn clean_once() -> Result<()> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*done {
        let removed = netns::cleanup_leftovers()?;
        for name in removed {
            eprintln!("lab: removed leftovers of a killed run: {name}");
        }
        *done = true;
    }
    Ok(())
}
