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
mod net;
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
#[command(
    name = "pxeroot-initiator",
    version,
    about = "pxeroot's initramfs iSCSI boot agent"
)]
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
    /// Debug: run only the network phase and print the result as JSON.
    #[command(hide = true)]
    NetUp(net::cli::NetUpArgs),
}

fn read_optional(path: &str) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// What a command prints and returns; kept apart from the printing so that tests see it.
#[derive(Debug, Default)]
struct Outcome {
    code: u8,
    stdout: String,
    stderr: Vec<String>,
}

impl Outcome {
    fn fail(code: u8, msg: impl std::fmt::Display) -> Self {
        Outcome {
            code,
            stdout: String::new(),
            stderr: vec![format!("pxeroot-initiator: {msg}")],
        }
    }
}

/// `plan`: resolve and print, touching nothing.
fn plan(cmdline_arg: Option<String>, no_files: bool) -> Outcome {
    let text = match cmdline_arg {
        Some(s) => s,
        None => match std::fs::read_to_string("/proc/cmdline") {
            Ok(s) => s,
            Err(e) => return Outcome::fail(exit::INTERNAL, format!("/proc/cmdline: {e}")),
        },
    };
    let boot = match cmdline::parse(&text) {
        Ok(b) => b,
        Err(e) => return Outcome::fail(exit::BAD_CONFIG, e),
    };
    let mut ibft_error = None;
    let (iscsi_initramfs, initiatorname, ibft) = if no_files {
        (None, None, None)
    } else {
        let files = read_optional(config::files::ISCSI_INITRAMFS)
            .and_then(|a| Ok((a, read_optional(config::files::INITIATORNAME)?)));
        let (a, n) = match files {
            Ok(f) => f,
            Err(e) => return Outcome::fail(exit::INTERNAL, e),
        };
        // An unreadable iBFT (no CAP_SYS_ADMIN) only matters if the plan asks for it.
        let ibft = match config::ibft::read_dir(Path::new(config::ibft::SYSFS_IBFT)) {
            Ok(t) => t,
            Err(e) => {
                ibft_error = Some(e);
                None
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
            let code = if e.is_not_configured() {
                exit::NOT_CONFIGURED
            } else {
                exit::BAD_CONFIG
            };
            let mut out = Outcome::fail(code, &e);
            if let (config::PlanError::NoIbft(_), Some(ie)) = (&e, &ibft_error) {
                out.stderr.push(format!("pxeroot-initiator: {ie}"));
            }
            return out;
        }
    };
    let stderr = plan
        .warnings
        .iter()
        .map(|w| format!("pxeroot-initiator: warning: {w}"))
        .collect();
    match plan.to_json() {
        Ok(json) => Outcome {
            code: exit::OK,
            stdout: json,
            stderr,
        },
        Err(e) => Outcome::fail(exit::INTERNAL, e),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Some(Command::Plan { cmdline, no_files }) => {
            let out = plan(cmdline, no_files);
            for line in &out.stderr {
                eprintln!("{line}");
            }
            if !out.stdout.is_empty() {
                println!("{}", out.stdout);
            }
            ExitCode::from(out.code)
        }
        Some(Command::NetUp(args)) => ExitCode::from(net::cli::run(args)),
        None => {
            eprintln!("pxeroot-initiator: the boot agent is not built yet (issue 4); try `plan`");
            ExitCode::from(kernel::EXIT_NOT_BUILT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "S3cr3tPassw0rd";

    fn run(line: &str) -> Outcome {
        plan(Some(line.to_owned()), true)
    }

    #[test]
    fn plan_prints_json_with_secrets_redacted() {
        let out = run(&format!(
            "BOOT_IMAGE=/vmlinuz ro BOOTIF=01-52-54-00-12-34-56 \
             root=iscsi:alice:{SECRET}@192.0.2.1::3260:1:iqn.2026-11.org.example:disk1"
        ));
        assert_eq!(out.code, exit::OK);
        assert!(
            out.stdout.contains("\"secret\": \"<redacted>\""),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("iqn.2026-11.org.example:disk1"));
        assert!(!out.stdout.contains(SECRET));
        assert!(out.stderr.iter().all(|l| !l.contains(SECRET)));
        assert!(out.stderr.iter().any(|l| l.contains("warning")));
    }

    #[test]
    fn plan_exit_codes() {
        let out = run(&format!("root=iscsi:u:{SECRET}@192.0.2.1::http::iqn.x"));
        assert_eq!(out.code, exit::BAD_CONFIG);
        assert!(
            out.stderr[0].contains("bad boot parameter root"),
            "{:?}",
            out.stderr
        );
        assert!(!out.stderr[0].contains(SECRET));
        assert!(out.stdout.is_empty());
        let out = run("iscsi_target_name=iqn.x:y ip=192.0.2.9:::24::eth0:none");
        assert_eq!(out.code, exit::BAD_CONFIG);
        assert_eq!(run("quiet splash").code, exit::NOT_CONFIGURED);
        assert_eq!(run("netroot=dhcp").code, exit::OK);
    }

    #[test]
    fn command_line_usage() {
        let cli = Cli::try_parse_from(["pxeroot-initiator", "plan", "--cmdline", "a b"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Plan { cmdline: Some(ref c), no_files: false }) if c == "a b"
        ));
        let e = Cli::try_parse_from(["pxeroot-initiator", "plan", "--bogus"]).unwrap_err();
        assert!(e.use_stderr());
        let e = Cli::try_parse_from(["pxeroot-initiator", "--help"]).unwrap_err();
        assert!(!e.use_stderr());
    }
}
