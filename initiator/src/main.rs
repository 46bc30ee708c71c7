//! pxeroot-initiator: the initramfs agent (see DEVELOPERS.md and issue 4).
//!
//! # Commands
//! * `pxeroot-initiator plan [--cmdline STRING] [--no-files]`: resolve the boot configuration
//!   (kernel command line, default `/proc/cmdline`; `/etc/iscsi.initramfs`,
//!   `/etc/initiatorname.iscsi` and `/sys/firmware/ibft` if present) and print the plan as JSON
//!   with secrets redacted. It reads, and touches nothing: a dry run for a live system.
//!
//! # Exit codes
//! Each failing phase has its own code so that the console and the initramfs script can tell
//! them apart. Codes 10-19 belong to the boot phases that are not built yet.
//!
//! | code | meaning |
//! |---|---|
//! | 0  | success |
//! | 1  | internal error (could not read /proc/cmdline, a file, the iBFT; JSON failure) |
//! | 2  | bad boot parameters or configuration files (the message names the parameter) |
//! | 3  | no iSCSI root configured: nothing to do (the initramfs continues without iSCSI) |
//! | 10 | no network interface with carrier, or the chosen one does not exist |
//! | 11 | no DHCP lease within the budget |
//! | 12 | TCP connection to every portal refused or timed out |
//! | 13 | login rejected by the target (other than authentication) |
//! | 14 | authentication failed (CHAP), not retried |
//! | 15 | the LUN did not appear as a block device |
//! | 16 | kernel interface failure (module loading, NETLINK_ISCSI) |
//! | 64 | command-line usage error |
//! | 70 | the boot agent itself is not built yet |

mod cmdline;
mod config;
mod kernel;
mod plan;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes (see the module docs).
#[allow(dead_code)] // The boot phases that use codes 10-16 are not built yet.
mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Internal error.
    pub const INTERNAL: u8 = 1;
    /// Bad boot parameters or configuration files.
    pub const BAD_CONFIG: u8 = 2;
    /// No iSCSI root configured.
    pub const NOT_CONFIGURED: u8 = 3;
    /// No interface with carrier.
    pub const NO_CARRIER: u8 = 10;
    /// No DHCP lease.
    pub const NO_DHCP: u8 = 11;
    /// TCP connect failed on every portal.
    pub const CONNECT: u8 = 12;
    /// Login rejected.
    pub const LOGIN: u8 = 13;
    /// Authentication failed.
    pub const AUTH: u8 = 14;
    /// LUN missing.
    pub const LUN_MISSING: u8 = 15;
    /// Kernel interface failure.
    pub const KERNEL: u8 = 16;
    /// Usage error.
    pub const USAGE: u8 = 64;
}

#[derive(Debug, Parser)]
#[command(name = "pxeroot-initiator", version, about = "pxeroot's initramfs iSCSI boot agent")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the resolved boot plan as JSON (secrets redacted); changes nothing.
    Plan {
        /// Use this kernel command line instead of /proc/cmdline.
        #[arg(long)]
        cmdline: Option<String>,
        /// Do not read /etc/iscsi.initramfs, /etc/initiatorname.iscsi or the iBFT.
        #[arg(long)]
        no_files: bool,
    },
}

fn read_optional(path: &str) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

fn plan(cmdline_arg: Option<String>, no_files: bool) -> u8 {
    let text = match cmdline_arg {
        Some(s) => s,
        None => match std::fs::read_to_string("/proc/cmdline") {
            Ok(s) => s,
            Err(e) => {
                eprintln!("pxeroot-initiator: /proc/cmdline: {e}");
                return exit::INTERNAL;
            }
        },
    };
    let boot = match cmdline::parse(&text) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("pxeroot-initiator: {e}");
            return exit::BAD_CONFIG;
        }
    };
    let (iscsi_initramfs, initiatorname, ibft) = if no_files {
        (None, None, None)
    } else {
        let files = read_optional(config::files::ISCSI_INITRAMFS)
            .and_then(|a| Ok((a, read_optional(config::files::INITIATORNAME)?)));
        let (a, n) = match files {
            Ok(f) => f,
            Err(e) => {
                eprintln!("pxeroot-initiator: {e}");
                return exit::INTERNAL;
            }
        };
        let ibft = match config::ibft::read_dir(Path::new(config::ibft::SYSFS_IBFT)) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("pxeroot-initiator: {e}");
                return exit::INTERNAL;
            }
        };
        (a, n, ibft)
    };
    let inputs = config::Inputs {
        cmdline: &boot,
        iscsi_initramfs: iscsi_initramfs.as_deref(),
        initiatorname: initiatorname.as_deref(),
        ibft: ibft.as_ref(),
        dhcp: None,
    };
    let plan = match config::resolve(&inputs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pxeroot-initiator: {e}");
            return if e.is_not_configured() {
                exit::NOT_CONFIGURED
            } else {
                exit::BAD_CONFIG
            };
        }
    };
    for w in &plan.warnings {
        eprintln!("pxeroot-initiator: warning: {w}");
    }
    match plan.to_json() {
        Ok(json) => {
            println!("{json}");
            exit::OK
        }
        Err(e) => {
            eprintln!("pxeroot-initiator: {e}");
            exit::INTERNAL
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Some(Command::Plan { cmdline, no_files }) => ExitCode::from(plan(cmdline, no_files)),
        None => {
            eprintln!("pxeroot-initiator: the boot agent is not built yet (issue 4); try `plan`");
            ExitCode::from(kernel::EXIT_NOT_BUILT)
        }
    }
}
