//! pxeroot-initiator: the initramfs agent (see DEVELOPERS.md and issue 4).
//!
//! # Commands
//! * `pxeroot-initiator` (or `pxeroot-initiator boot [--cmdline STRING] [--no-files]`): the
//!   boot. Reads the configuration (below), brings up the boot NIC (BOOTIF's MAC, else `ip=`'s
//!   device, else the first with carrier) with DHCP or `ip=`'s static values, loads iscsi_tcp,
//!   sd_mod and crc32c if missing, logs in to each portal in turn until the budget runs out,
//!   hands the session to the kernel and waits for the LUN's block device. On success it writes
//!   the device path to `/run/pxeroot/root-device` and the session's description (no secrets)
//!   to `/run/pxeroot/session.env` (folder mode 0700), `/run/net-IFACE.conf` and
//!   `/run/initramfs/open-iscsi.interface`, and exits 0. Every step prints one line on stderr
//!   (the console), stamped with the seconds since the agent started.
//! * `pxeroot-initiator plan [--cmdline STRING] [--no-files]`: resolve the boot configuration
//!   (kernel command line, default `/proc/cmdline`; `/etc/iscsi.initramfs`,
//!   `/etc/initiatorname.iscsi` and `/sys/firmware/ibft` if present) and print the plan as JSON
//!   with secrets redacted. It reads, and touches nothing: a dry run for a live system.
//! * `pxeroot-initiator probe --portal IP[:PORT] --target IQN [--lun N] [--initiator IQN]
//!   [--chap USER [--secret-file PATH] [--mutual-user U [--mutual-secret-file PATH]]]
//!   [--timeout SECS] [--json]`: log in from userspace with the boot agent's login, look at
//!   one LUN (REPORT LUNS, INQUIRY, READ CAPACITY, TEST UNIT READY), log out and print what
//!   was found; never touches the kernel. Secrets come from the files or from
//!   `$PXEROOT_CHAP_SECRET` / `$PXEROOT_CHAP_MUTUAL_SECRET`, never from arguments.
//!
//! # Limits
//! `pxeroot.timeout=SECONDS` (default 120): budget for reaching and logging in to the target,
//! counted from when the network is up; `rd.iscsi.login_retry_max=N` (or
//! `node.session.initial_login_retry_max` in `rd.iscsi.param`) caps the rounds over all portals.
//! Rounds are 250 ms apart at first, doubling to 2 s. An authentication failure is final.
//! `pxeroot.dhcp_timeout` (30 s) and `pxeroot.link_timeout` (10 s) bound the network phase.
//!
//! # Exit codes
//! Each failing phase has its own code so that the console and the initramfs script can tell
//! them apart.
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

mod boot;
mod cmdline;
mod config;
mod events;
mod kernel;
mod net;
mod plan;
mod probe;
mod session;

use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::ExitCode;

use argh::FromArgs;

/// Exit codes (see the module docs).
#[allow(dead_code)] // Some codes are produced only through the phases' own errors.
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

/// pxeroot's initramfs iSCSI boot agent. With no command it boots (see `boot`).
#[derive(Debug, FromArgs)]
struct Cli {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

/// A command-line usage problem, or a request for help (`--help`), with its text.
#[derive(Debug)]
struct UsageError {
    text: String,
    help: bool,
}

impl UsageError {
    /// Whether this is an error (printed on stderr) rather than help (stdout).
    fn use_stderr(&self) -> bool {
        !self.help
    }

    fn print(&self) {
        if self.help {
            println!("{}", self.text);
        } else {
            eprintln!("{}", self.text);
        }
    }
}

impl Cli {
    /// Parses `argv` (program name first), then checks what argh cannot express.
    fn try_parse_from<'a>(argv: impl IntoIterator<Item = &'a str>) -> Result<Cli, UsageError> {
        let argv: Vec<&str> = argv.into_iter().collect();
        // The program name is fixed so that help reads the same from any path.
        let rest = argv.get(1..).unwrap_or(&[]);
        let cli = Cli::from_args(&["pxeroot-initiator"], rest).map_err(|e| UsageError {
            text: e.output,
            help: e.status.is_ok(),
        })?;
        if let Some(Command::Probe(a)) = &cli.command {
            a.validate()
                .map_err(|text| UsageError { text, help: false })?;
        }
        Ok(cli)
    }
}

#[derive(Debug, FromArgs)]
#[argh(subcommand)]
enum Command {
    Boot(BootArgs),
    Plan(PlanArgs),
    Probe(probe::ProbeArgs),
    NetUp(net::cli::NetUpArgs),
}

/// Boot: bring up the network, log in, attach the root LUN (the default with no command).
#[derive(Debug, FromArgs)]
#[argh(subcommand, name = "boot")]
struct BootArgs {
    /// use this kernel command line instead of /proc/cmdline
    #[argh(option)]
    cmdline: Option<String>,
    /// do not read /etc/iscsi.initramfs, /etc/initiatorname.iscsi or the iBFT
    #[argh(switch)]
    no_files: bool,
}

/// Print the resolved boot plan as JSON (secrets redacted); changes nothing.
#[derive(Debug, FromArgs)]
#[argh(subcommand, name = "plan")]
struct PlanArgs {
    /// use this kernel command line instead of /proc/cmdline
    #[argh(option)]
    cmdline: Option<String>,
    /// do not read /etc/iscsi.initramfs, /etc/initiatorname.iscsi or the iBFT
    #[argh(switch)]
    no_files: bool,
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

/// Everything the boot configuration is made from, read once.
#[derive(Debug)]
pub struct Gathered {
    /// The parsed kernel command line.
    pub boot: cmdline::BootArgs,
    /// `/etc/iscsi.initramfs`.
    pub iscsi_initramfs: Option<String>,
    /// `/etc/initiatorname.iscsi`.
    pub initiatorname: Option<String>,
    /// The iBFT.
    pub ibft: Option<config::Ibft>,
    /// Why the iBFT could not be read, if it could not.
    pub ibft_error: Option<String>,
}

impl Gathered {
    /// The inputs of [`config::resolve`], before any DHCP lease.
    pub fn inputs(&self) -> config::Inputs<'_> {
        config::Inputs {
            cmdline: &self.boot,
            iscsi_initramfs: self.iscsi_initramfs.as_deref(),
            initiatorname: self.initiatorname.as_deref(),
            ibft: self.ibft.as_ref(),
            dhcp: None,
        }
    }
}

/// Reads the command line (or `cmdline_arg`) and, unless `no_files`, the initramfs files and
/// the iBFT.
fn gather(cmdline_arg: Option<String>, no_files: bool) -> Result<Gathered, Outcome> {
    let text = match cmdline_arg {
        Some(s) => s,
        None => match std::fs::read_to_string("/proc/cmdline") {
            Ok(s) => s,
            Err(e) => return Err(Outcome::fail(exit::INTERNAL, format!("/proc/cmdline: {e}"))),
        },
    };
    let boot = cmdline::parse(&text).map_err(|e| Outcome::fail(exit::BAD_CONFIG, e))?;
    if no_files {
        return Ok(Gathered {
            boot,
            iscsi_initramfs: None,
            initiatorname: None,
            ibft: None,
            ibft_error: None,
        });
    }
    let iscsi_initramfs = read_optional(config::files::ISCSI_INITRAMFS)
        .map_err(|e| Outcome::fail(exit::INTERNAL, e))?;
    let initiatorname = read_optional(config::files::INITIATORNAME)
        .map_err(|e| Outcome::fail(exit::INTERNAL, e))?;
    // An unreadable iBFT (no CAP_SYS_ADMIN) only matters if the plan asks for it.
    let (ibft, ibft_error) = match config::ibft::read_dir(Path::new(config::ibft::SYSFS_IBFT)) {
        Ok(t) => (t, None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Gathered {
        boot,
        iscsi_initramfs,
        initiatorname,
        ibft,
        ibft_error,
    })
}

/// `plan`: resolve and print, touching nothing.
fn plan(cmdline_arg: Option<String>, no_files: bool) -> Outcome {
    let g = match gather(cmdline_arg, no_files) {
        Ok(g) => g,
        Err(out) => return out,
    };
    let plan = match config::resolve(&g.inputs()) {
        Ok(p) => p,
        Err(e) => {
            let mut out = Outcome::fail(e.exit_code(), &e);
            if let (config::PlanError::NoIbft(_), Some(ie)) = (&e, &g.ibft_error) {
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

/// The boot agent: network, login, attach; prints each phase on the console.
fn boot(cmdline_arg: Option<String>, no_files: bool) -> u8 {
    let start = std::time::Instant::now();
    let mut console = boot::Console::new(start);
    let g = match gather(cmdline_arg, no_files) {
        Ok(g) => g,
        Err(out) => {
            for line in &out.stderr {
                eprintln!("{line}");
            }
            return out.code;
        }
    };
    match boot::run(&g, &mut console) {
        Ok(_) => exit::OK,
        Err(f) => {
            if f.code == exit::NOT_CONFIGURED {
                console.say(&format!("nothing to do: {}", f.message));
            } else {
                console.say(&format!("FAILED: {}", f.message));
                if let Some(ie) = &g.ibft_error {
                    console.say(ie);
                }
            }
            f.code
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(args.iter().map(String::as_str)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            e.print();
            return ExitCode::from(code);
        }
    };
    if cli.version {
        println!("pxeroot-initiator {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Some(Command::Plan(PlanArgs { cmdline, no_files })) => {
            let out = plan(cmdline, no_files);
            print(&out);
            ExitCode::from(out.code)
        }
        Some(Command::Probe(args)) => {
            let env = |name: &str| std::env::var_os(name).map(std::ffi::OsString::into_vec);
            let out = probe::run(&args, &env);
            print(&out);
            ExitCode::from(out.code)
        }
        Some(Command::NetUp(args)) => match gather(args.cmdline.clone(), true) {
            Ok(g) => ExitCode::from(net::cli::run(&args, &g)),
            Err(out) => {
                print(&out);
                ExitCode::from(out.code)
            }
        },
        Some(Command::Boot(BootArgs { cmdline, no_files })) => {
            ExitCode::from(boot(cmdline, no_files))
        }
        None => ExitCode::from(boot(None, false)),
    }
}

fn print(out: &Outcome) {
    for line in &out.stderr {
        eprintln!("{line}");
    }
    if !out.stdout.is_empty() {
        println!("{}", out.stdout);
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
            Some(Command::Plan(PlanArgs { cmdline: Some(ref c), no_files: false })) if c == "a b"
        ));
        let e = Cli::try_parse_from(["pxeroot-initiator", "plan", "--bogus"]).unwrap_err();
        assert!(e.use_stderr());
        let e = Cli::try_parse_from(["pxeroot-initiator", "--help"]).unwrap_err();
        assert!(!e.use_stderr());
    }
}
