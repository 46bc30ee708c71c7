//! The boot: plan, network, login, kernel attach, block device, in that order, each phase
//! with its own failure message and exit code.
//!
//! Kernel modules load on a thread while the network comes up. Logins go to each portal in
//! turn; a round that reaches no target waits (250 ms, doubling to 2 s) and tries again until
//! the budget (`pxeroot.timeout`, default 120 s, counted from when the network is up) or the
//! per-portal attempt limit (`rd.iscsi.login_retry_max`) runs out. An authentication failure
//! ends the boot at once: retrying a wrong secret only locks accounts. A login that succeeds
//! is handed to the kernel; if that fails, the half-built kernel session is removed before
//! anything else happens.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use pxeroot_proto::root_path::{format_lun, Server};
use pxeroot_proto::Isid;

use crate::config::{self, DhcpInfo, Inputs};
use crate::kernel::{self, attach, KernelError};
use crate::net::{self, NetUp};
use crate::plan::{Auth, Plan};
use crate::session::{self, AttemptError, LoginSpec};
use crate::{exit, Gathered};

/// Where the agent leaves its results for the initramfs scripts.
pub const RUN_DIR: &str = "/run/pxeroot";

/// The ISID of the boot session: open-iscsi's OUI-format prefix 00:02:3D with qualifier 1,
/// fixed so that a machine that reboots without logging out reinstates its old session on the
/// target (RFC 7143 §6.3.5) instead of leaving it behind.
pub const BOOT_ISID: Isid = Isid([0x00, 0x02, 0x3d, 0x00, 0x00, 0x01]);

/// First pause between login rounds; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest pause between login rounds.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often a failure that keeps repeating is printed again.
const REPEAT_EVERY: Duration = Duration::from_secs(5);
/// Longest wait for one TCP connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one whole login exchange.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the LUN's block device once the session runs.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(15);

/// Console output: every line prefixed and stamped with the time since the agent started.
#[derive(Debug)]
pub struct Console {
    start: Instant,
    /// Lines printed (kept for tests).
    pub lines: Vec<String>,
    quiet: bool,
}

impl Console {
    /// A console that prints to stderr.
    pub fn new(start: Instant) -> Self {
        Console {
            start,
            lines: Vec::new(),
            quiet: false,
        }
    }

    /// Prints the kernel's uptime (`/proc/uptime`) at the agent's start, derived from now.
    fn say_start_uptime(&mut self) {
        let uptime: Option<f64> = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok());
        if let Some(up) = uptime {
            let at_start = up - self.start.elapsed().as_secs_f64();
            self.say(&format!("started at kernel uptime {at_start:.3} s"));
        }
    }

    /// Prints one line.
    pub fn say(&mut self, msg: &str) {
        let t = self.start.elapsed().as_secs_f64();
        let line = format!("pxeroot-initiator: [{t:7.3}] {msg}");
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        self.lines.push(line);
    }
}

/// Why the boot failed: the message for the console and the exit code.
#[derive(Debug, Clone)]
pub struct BootFailure {
    /// The exit code (see main.rs).
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl BootFailure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        BootFailure {
            code,
            message: message.into(),
        }
    }
}

fn portal_addrs(plan: &Plan) -> Result<Vec<SocketAddr>, BootFailure> {
    let mut v = Vec::new();
    for p in &plan.portals {
        let ip = match &p.address {
            Server::Ipv4(a) => IpAddr::V4(*a),
            Server::Ipv6(a) => IpAddr::V6(*a),
            Server::Name(n) => {
                return Err(BootFailure::new(
                    exit::BAD_CONFIG,
                    format!(
                        "target portal {n}: host names are not resolved in the initramfs; \
                         give the target's IP address"
                    ),
                ))
            }
        };
        v.push(SocketAddr::new(ip, p.port));
    }
    Ok(v)
}

/// Runs the whole boot.
///
/// # Errors
/// [`BootFailure`] with the phase's exit code and message.
pub fn run(g: &Gathered, console: &mut Console) -> Result<attach::Attached, BootFailure> {
    let inputs = g.inputs();
    let plan =
        config::resolve(&inputs).map_err(|e| BootFailure::new(e.exit_code(), e.to_string()))?;
    for w in &plan.warnings {
        console.say(&format!("warning: {w}"));
    }
    if plan.debug {
        console.say_start_uptime();
    }

    // Modules load from here on, while the link comes up, DHCP runs and the login runs: they
    // are the longest step on a slow CPU, and only the attach needs them.
    let mut modules = ModuleLoad::start();
    if matches!(plan.auth, Auth::MutualChap { .. }) {
        session::warm_up_random();
    }

    let up = net::bring_up(&plan, &mut |l| console.say(l))
        .map_err(|e| BootFailure::new(e.exit_code(), e.to_string()))?;
    match net::write_run_files(&up, Path::new("/run")) {
        Ok(_) => {}
        Err(e) => console.say(&format!(
            "warning: cannot write /run/net-{}.conf: {e}",
            up.ifname
        )),
    }

    let plan = if plan.pending.is_empty() && up.dhcp.is_none() {
        plan
    } else {
        let empty = DhcpInfo::default();
        let inputs = Inputs {
            dhcp: Some(up.dhcp.as_ref().unwrap_or(&empty)),
            ..inputs
        };
        config::resolve(&inputs).map_err(|e| BootFailure::new(e.exit_code(), e.to_string()))?
    };
    let initiator_name = plan
        .initiator_name
        .clone()
        .unwrap_or_else(|| config::default_initiator_name(&up.mac));
    let Some(target_name) = plan.target_name.clone() else {
        return Err(BootFailure::new(
            exit::BAD_CONFIG,
            "no target name: neither the command line nor DHCP option 17 named one",
        ));
    };
    let portals = portal_addrs(&plan)?;
    if portals.is_empty() {
        return Err(BootFailure::new(
            exit::BAD_CONFIG,
            "no target address: neither the command line nor DHCP option 17 named one",
        ));
    }

    let spec = LoginSpec {
        initiator_name: &initiator_name,
        target_name: &target_name,
        auth: &plan.auth,
        isid: BOOT_ISID,
        params: session::default_params(),
        connect_timeout: CONNECT_TIMEOUT,
        login_timeout: LOGIN_TIMEOUT,
        bind_device: Some(&up.ifname),
    };
    let budget = Duration::from_secs(u64::from(plan.retry.budget_secs));
    let deadline = Instant::now() + budget;
    let max_attempts = plan.retry.max_attempts_per_portal;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    let mut last_error: Option<AttemptError> = None;
    // Repeated failures are printed when they change, else every REPEAT_EVERY.
    let mut last_printed: Option<(String, Instant)> = None;
    let mut repeats = 0u32;
    loop {
        attempts += 1;
        for &portal in &portals {
            if Instant::now() >= deadline {
                break;
            }
            match session::connect_and_login(portal, &spec, deadline) {
                Ok(li) => {
                    let algo = li.chap.map(|a| format!(", CHAP {a:?}")).unwrap_or_default();
                    console.say(&format!(
                        "logged in to {target_name} at {portal} in {:.3} s{algo}",
                        li.elapsed.as_secs_f64()
                    ));
                    let handle = modules.wait(console)?;
                    return attach_and_finish(
                        li,
                        &plan,
                        &up,
                        &spec,
                        (handle, &mut modules),
                        portal,
                        console,
                    );
                }
                Err(e) => {
                    let msg = e.to_string();
                    let now = Instant::now();
                    let same = last_printed.as_ref().is_some_and(|(m, _)| *m == msg);
                    let due = last_printed
                        .as_ref()
                        .is_none_or(|(_, at)| now - *at >= REPEAT_EVERY);
                    if same && !due {
                        repeats += 1;
                    } else {
                        let line = if same {
                            let left = deadline.saturating_duration_since(now).as_secs();
                            format!(
                                "{msg} (still, after {} more attempts; {left} s left)",
                                repeats + 1
                            )
                        } else {
                            msg.clone()
                        };
                        console.say(&line);
                        last_printed = Some((msg, now));
                        repeats = 0;
                    }
                    if e.is_auth() || !e.retryable() {
                        return Err(BootFailure::new(e.exit_code(), e.to_string()));
                    }
                    last_error = Some(e);
                }
            }
        }
        // A module that cannot load ends the boot now, not after the login budget.
        modules.check(console)?;
        let now = Instant::now();
        let out_of_attempts = max_attempts.is_some_and(|m| attempts >= m);
        if now >= deadline || out_of_attempts {
            let why = last_error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "no attempt was made".to_owned());
            let limit = if out_of_attempts {
                format!("{attempts} attempts per portal (rd.iscsi.login_retry_max)")
            } else {
                format!("{} s (pxeroot.timeout)", budget.as_secs())
            };
            let code = last_error
                .as_ref()
                .map_or(exit::CONNECT, AttemptError::exit_code);
            return Err(BootFailure::new(
                code,
                format!("giving up after {limit}; last error: {why}"),
            ));
        }
        std::thread::sleep(backoff.min(deadline - now));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The kernel modules, loading on a thread of their own while the network comes up and the
/// login runs (the login is userspace TCP; only the attach needs iscsi_tcp). The thread loads
/// iscsi_tcp first and reports the transport, then sd_mod while the session is set up and
/// scanned.
pub struct ModuleLoad {
    transport: std::sync::mpsc::Receiver<TransportLoaded>,
    thread: Option<std::thread::JoinHandle<DiskLoaded>>,
    done: Option<Result<u64, BootFailure>>,
}

/// The transport's handle (or why not), the modules loaded, how long it took.
type TransportLoaded = (Result<u64, KernelError>, Vec<String>, Duration);
/// sd_mod's result and the modules loaded.
type DiskLoaded = (Result<(), KernelError>, Vec<String>);

const LOADER_DIED: &str = "the module loader thread failed";

impl ModuleLoad {
    /// Starts loading.
    pub fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut loaded = Vec::new();
            let r = kernel::prepare(&mut |l| loaded.push(l.to_owned()));
            let failed = r.is_err();
            let _ = tx.send((r, loaded, t0.elapsed()));
            if failed {
                return (Ok(()), Vec::new());
            }
            let mut loaded = Vec::new();
            let r = kernel::prepare_disk(&mut |l| loaded.push(l.to_owned()));
            (r, loaded)
        });
        ModuleLoad {
            transport: rx,
            thread: Some(thread),
            done: None,
        }
    }

    fn record(&mut self, got: TransportLoaded, console: &mut Console) {
        let (r, loaded, took) = got;
        if !loaded.is_empty() {
            console.say(&format!(
                "iSCSI modules ready in {:.3} s: {}",
                took.as_secs_f64(),
                loaded.join(", ")
            ));
        }
        self.done = Some(r.map_err(|e| BootFailure::new(e.exit_code(), e.to_string())));
    }

    /// Fails if loading already finished with an error; never waits.
    fn check(&mut self, console: &mut Console) -> Result<(), BootFailure> {
        if self.done.is_none() {
            if let Ok(got) = self.transport.try_recv() {
                self.record(got, console);
            }
        }
        match &self.done {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// Waits for iscsi_tcp; returns the tcp transport's handle.
    fn wait(&mut self, console: &mut Console) -> Result<u64, BootFailure> {
        if self.done.is_none() {
            match self.transport.recv() {
                Ok(got) => self.record(got, console),
                Err(_) => self.done = Some(Err(BootFailure::new(exit::KERNEL, LOADER_DIED))),
            }
        }
        match &self.done {
            Some(Ok(h)) => Ok(*h),
            Some(Err(e)) => Err(e.clone()),
            None => Err(BootFailure::new(exit::KERNEL, LOADER_DIED)),
        }
    }

    /// Waits for sd_mod; adds what it loaded to `loaded`.
    fn wait_disk(&mut self, loaded: &mut Vec<String>) -> Result<(), KernelError> {
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        match t.join() {
            Ok((r, mut names)) => {
                loaded.append(&mut names);
                r
            }
            Err(_) => Err(KernelError::Module {
                name: "sd_mod".into(),
                cause: LOADER_DIED.into(),
            }),
        }
    }
}

fn attach_and_finish(
    li: session::LoggedIn,
    plan: &Plan,
    up: &NetUp,
    spec: &LoginSpec<'_>,
    (handle, modules): (u64, &mut ModuleLoad),
    portal: SocketAddr,
    console: &mut Console,
) -> Result<attach::Attached, BootFailure> {
    let (chap, chap_in) = match &plan.auth {
        Auth::None => (None, None),
        Auth::Chap { user, secret } => (Some((user.as_str(), secret)), None),
        Auth::MutualChap {
            user,
            secret,
            target_user,
            target_secret,
        } => (
            Some((user.as_str(), secret)),
            Some((target_user.as_str(), target_secret)),
        ),
    };
    let aspec = attach::AttachSpec {
        handle,
        target_name: spec.target_name,
        portal: (portal.ip(), portal.port()),
        initiator_name: spec.initiator_name,
        isid: spec.isid,
        iface_name: plan.iface_name.as_deref().unwrap_or("default"),
        chap,
        chap_in,
        outcome: &li.outcome,
        lun: plan.lun,
        device_timeout: DEVICE_TIMEOUT,
    };
    let session::LoggedIn { stream, .. } = li;
    let mut disk_modules = Vec::new();
    let result = attach::attach(
        stream,
        &aspec,
        &mut || modules.wait_disk(&mut disk_modules),
        &mut |l| console.say(l),
    );
    if !disk_modules.is_empty() {
        console.say(&format!("disk driver loaded: {}", disk_modules.join(", ")));
    }
    let attached = result.map_err(|e| {
        let msg = match &e {
            KernelError::LunMissing { .. } => e.to_string(),
            _ => format!("handing the session to the kernel failed: {e}"),
        };
        BootFailure::new(e.exit_code(), msg)
    })?;
    console.say(&format!(
        "root disk {} is LUN {} of {} at {portal} (SCSI {})",
        attached.device.display(),
        format_lun(&plan.lun),
        spec.target_name,
        attached.scsi_address
    ));
    if plan.debug {
        if let Ok(ru) = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            console.say(&format!(
                "cpu used: {:.3} s user, {:.3} s system (module loading included)",
                secs(ru.user_time()),
                secs(ru.system_time())
            ));
        }
    }
    if let Err(e) = write_results(Path::new(RUN_DIR), &attached, spec, portal, up) {
        console.say(&format!("warning: cannot write {RUN_DIR}: {e}"));
    }
    Ok(attached)
}

/// `/run/pxeroot/root-device` (the device path) and `/run/pxeroot/session.env` (shell
/// variables describing the session; no secrets). The folder is root-only.
fn write_results(
    dir: &Path,
    a: &attach::Attached,
    spec: &LoginSpec<'_>,
    portal: SocketAddr,
    up: &NetUp,
) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    std::fs::write(dir.join("root-device"), format!("{}\n", a.device.display()))?;
    let env = format!(
        "PXEROOT_DEVICE='{}'\nPXEROOT_SID={}\nPXEROOT_HOST={}\nPXEROOT_SCSI='{}'\n\
         PXEROOT_TARGET='{}'\nPXEROOT_PORTAL_IP='{}'\nPXEROOT_PORTAL_PORT={}\n\
         PXEROOT_INITIATOR='{}'\nPXEROOT_IFACE='{}'\n",
        a.device.display(),
        a.sid,
        a.host_no,
        a.scsi_address,
        shell_safe(spec.target_name),
        portal.ip(),
        portal.port(),
        shell_safe(spec.initiator_name),
        shell_safe(&up.ifname),
    );
    std::fs::write(dir.join("session.env"), env)
}

/// Drops characters that could break out of a single-quoted shell string.
fn shell_safe(s: &str) -> String {
    s.chars().filter(|c| *c != '\'' && *c != '\n').collect()
}
