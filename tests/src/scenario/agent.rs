//! The agent chain: pxeroot-initiator as the guest's whole iSCSI boot path.
//!
//! Every agent boot uses one initramfs (built once, cached under `build/lab/initrd-cache`):
//! busybox, the static agent at `/bin/pxeroot-initiator`, virtio networking loaded by `/init`
//! (as udev would), and iscsi_tcp and sd_mod with their dependencies in a module tree under
//! `/lib/modules/<release>/` for the agent to load itself. What differs between boots is only
//! the kernel command line (the parameters under test) and the host side (which target, which
//! CHAP, when the target comes up, what dnsmasq hands out).
//!
//! The guest's `/init` mounts a tmpfs on /run, stamps `agent-start`, runs the agent with no
//! arguments (so it reads /proc/cmdline), prints `PXRT-AGENT-EXIT <code>`, stamps `agent-done`
//! (or `agent-failed` and powers off), then checks that /run/pxeroot/root-device names a block
//! device, mounts it and prints the marker. An agent still running 15 s after its start gets
//! each thread's wchan, current syscall and kernel stack printed (`PXRT-STUCK` lines), so that a
//! hang shows where it hangs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{
    auth_name, boot_slot, Report, Rig, Server, GUEST_MAC, INITIATOR_IQN, SERVER_IP, TARGET_IQN,
};
use crate::initramfs::Builder;
use crate::paths::{lab_dir, workspace_root};
use crate::peers::{self, Chap};
use crate::process::describe;
use crate::Lab;

/// How every agent error line on the console starts.
pub const ERROR_PREFIX: &str = "pxeroot-initiator: ";

/// Where `tools/test` builds the static agent, relative to the workspace.
pub const AGENT_BUILD_PATH: &str = "build/x86_64-unknown-linux-gnu/agent/pxeroot-initiator";

/// The command that builds it.
pub const AGENT_BUILD_COMMAND: &str = "tools/build-agent";

/// The boot steps a successful agent chain stamps, in order.
pub const AGENT_STEPS: &[&str] = &[
    "initramfs-start",
    "modules-loaded",
    "agent-start",
    "agent-done",
    "root-device-ready",
    "root-mounted",
    "marker-read",
];

/// Modules `/init` loads itself (the NIC driver, as udev would).
pub const NIC_MODULES: &[&str] = &["virtio_pci", "virtio_net"];
/// Modules the agent loads from the module tree (initramfs-tools modprobes the same ones
/// before iscsistart).
pub const AGENT_MODULES: &[&str] = &["iscsi_tcp", "sd_mod"];

/// The CHAP the lab's targets require of the initiator.
pub fn client_chap() -> Chap {
    Chap {
        user: "client".into(),
        secret: "client-secret-1".into(),
    }
}

/// The CHAP with which the lab's targets authenticate themselves (mutual CHAP).
pub fn target_chap() -> Chap {
    Chap {
        user: "target".into(),
        secret: "target-secret-1".into(),
    }
}

/// The secret a wrong-password boot offers.
pub const WRONG_SECRET: &str = "wrong-secret-99";

/// Authentication between the agent and the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Auth {
    /// None.
    #[default]
    None,
    /// The target requires CHAP ([`client_chap`]).
    Chap,
    /// CHAP both ways ([`client_chap`], [`target_chap`]).
    Mutual,
}

impl Auth {
    /// The target's (incoming, outgoing) credentials.
    pub fn credentials(self) -> (Option<Chap>, Option<Chap>) {
        match self {
            Auth::None => (None, None),
            Auth::Chap => (Some(client_chap()), None),
            Auth::Mutual => (Some(client_chap()), Some(target_chap())),
        }
    }
}

/// How the boot parameters name the root disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Params {
    /// Debian initramfs-tools: `BOOTIF= ip=dhcp iscsi_initiator= iscsi_target_name=
    /// iscsi_target_ip= iscsi_target_port=` and `iscsi_[in_]username/password=`.
    #[default]
    Debian,
    /// `ip=dhcp rd.iscsi.initiator= root=iscsi:[auth@]ip::port:lun:target`.
    RootIscsi,
    /// `ip=dhcp rd.iscsi.initiator= netroot=iscsi:[auth@]ip::port:lun:target` (dracut).
    Netroot,
    /// `netroot=dhcp` alone: the root path comes from DHCP option 17 (RFC 4173) and the
    /// initiator name from option 203.
    NetrootDhcp,
}

impl Params {
    fn name(self) -> &'static str {
        match self {
            Params::Debian => "Debian iscsi_* + BOOTIF + ip=dhcp",
            Params::RootIscsi => "root=iscsi:",
            Params::Netroot => "netroot=iscsi:",
            Params::NetrootDhcp => "netroot=dhcp (DHCP option 17)",
        }
    }
}

/// How to run the agent chain.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Which target serves the disk.
    pub server: Server,
    /// Authentication.
    pub auth: Auth,
    /// Which parameter style names the root.
    pub params: Params,
    /// Run dnsmasq (with the guest's reservation) in the namespace.
    pub dhcp: bool,
    /// Appended to the kernel command line (e.g. `pxeroot.timeout=10`).
    pub extra_cmdline: String,
    /// Start the target this long after QEMU (the host's clock), instead of before it.
    pub target_delay: Option<Duration>,
    /// Never start the target.
    pub target_down: bool,
    /// The agent offers [`WRONG_SECRET`] instead of the target's CHAP secret.
    pub wrong_secret: bool,
    /// QEMU's hard limit.
    pub guest_timeout: Duration,
}

impl Default for AgentOptions {
    fn default() -> AgentOptions {
        AgentOptions {
            server: Server::Pxeroot,
            auth: Auth::None,
            params: Params::Debian,
            dhcp: true,
            extra_cmdline: String::new(),
            target_delay: None,
            target_down: false,
            wrong_secret: false,
            guest_timeout: Duration::from_secs(100),
        }
    }
}

impl AgentOptions {
    /// The credentials the agent offers: the target's, or a wrong secret.
    fn agent_credentials(&self) -> (Option<Chap>, Option<Chap>) {
        let (chap, mutual) = self.auth.credentials();
        let chap = chap.map(|c| {
            if self.wrong_secret {
                Chap {
                    secret: WRONG_SECRET.into(),
                    ..c
                }
            } else {
                c
            }
        });
        (chap, mutual)
    }

    fn title(&self) -> String {
        let (chap, mutual) = self.auth.credentials();
        let mut t = format!(
            "pxeroot-initiator -> {} ({}{}), {}",
            self.server.name(),
            auth_name(chap.is_some(), mutual.is_some()),
            if self.wrong_secret {
                ", wrong secret"
            } else {
                ""
            },
            self.params.name()
        );
        if let Some(d) = self.target_delay {
            t.push_str(&format!(", target up after {} s", d.as_secs()));
        }
        if self.target_down {
            t.push_str(", target down");
        }
        if !self.extra_cmdline.is_empty() {
            t.push_str(&format!(", {}", self.extra_cmdline));
        }
        t
    }
}

/// The agent binary under test: `$PXEROOT_INITIATOR`, else [`AGENT_BUILD_PATH`], brought up
/// to date with the sources by [`AGENT_BUILD_COMMAND`] once per test process (a lab test must
/// not boot an agent older than the code it tests; when nothing changed this takes 0.2 s). It
/// must be statically linked (it runs in an initramfs without a C library).
///
/// # Errors
/// When it cannot be built, is missing or is dynamically linked; the message says why.
pub fn agent_binary() -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    let path = match std::env::var_os("PXEROOT_INITIATOR") {
        Some(p) => PathBuf::from(p),
        None => {
            BUILT
                .get_or_init(|| {
                    let mut cmd =
                        std::process::Command::new(workspace_root().join(AGENT_BUILD_COMMAND));
                    match cmd.output() {
                        Ok(out) if out.status.success() => Ok(()),
                        Ok(out) => Err(format!(
                            "`{}` failed ({}): {}",
                            describe(&cmd),
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        )),
                        Err(e) => Err(format!("cannot run `{}`: {e}", describe(&cmd))),
                    }
                })
                .clone()
                .map_err(anyhow::Error::msg)?;
            workspace_root().join(AGENT_BUILD_PATH)
        }
    };
    if !path.is_file() {
        bail!(
            "the agent {} is missing: build it with `{AGENT_BUILD_COMMAND}` (tools/test does)",
            path.display()
        );
    }
    let mut ldd = std::process::Command::new("ldd");
    ldd.arg(&path);
    let out = ldd
        .output()
        .with_context(|| format!("cannot run `{}`", describe(&ldd)))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("=>") || text.contains("ld-linux") {
        bail!(
            "the agent {} is dynamically linked (ldd: {}); build it with `{AGENT_BUILD_COMMAND}`",
            path.display(),
            text.trim().replace('\n', "; ")
        );
    }
    Ok(path)
}

/// The `/init` steps of an agent boot (see the module docs).
pub fn agent_script() -> String {
    [
        "mount -t tmpfs -o mode=0755 tmpfs /run || fail 'mount /run'\n\
         ( sleep 15; for p in $(pidof pxeroot-initiator); do for t in /proc/$p/task/*; do \
             echo \"PXRT-STUCK $t $(cat $t/comm) wchan=$(cat $t/wchan) syscall=$(cat $t/syscall)\"; \
             sed 's/^/PXRT-STUCK   /' $t/stack; done; done ) &\n\
         watchdog=$!\n\
         echo \"PXRT-CMDLINE $(cat /proc/cmdline)\"\n\
         stamp agent-start\n\
         /bin/pxeroot-initiator\n\
         rc=$?\n\
         kill $watchdog 2>/dev/null\n\
         echo \"PXRT-AGENT-EXIT $rc\"\n\
         if [ $rc -ne 0 ]; then\n\
           echo PXRT-SESSIONS $(ls /sys/class/iscsi_session 2>/dev/null) .\n\
           stamp agent-failed; fail \"pxeroot-initiator exited $rc\"\n\
         fi\n\
         stamp agent-done\n\
         dev=$(cat /run/pxeroot/root-device) || fail 'no /run/pxeroot/root-device'\n\
         [ -b \"$dev\" ] || fail \"root device $dev is not a block device\"\n\
         echo \"PXRT-ROOTDEV $dev\"\n\
         stamp root-device-ready\n\
         echo \"PXRT-ADDR $(ip -4 addr show dev eth0 | grep inet)\"\n\
         [ -f /run/net-eth0.conf ] && sed 's/^/PXRT-NETCONF /' /run/net-eth0.conf\n",
        &peers::guest_mount_device_and_print("\"$dev\"", "marker"),
    ]
    .concat()
}

/// The agent initramfs (one per agent binary and kernel, cached under `build/lab`).
///
/// # Errors
/// When the agent is missing ([`agent_binary`]) or the initramfs cannot be built.
pub fn agent_initrd(lab: &Lab) -> Result<PathBuf> {
    let agent = agent_binary()?;
    let bytes =
        std::fs::read(&agent).with_context(|| format!("cannot read {}", agent.display()))?;
    Builder::new(&lab.kernel)
        .modules(NIC_MODULES)
        .module_tree(AGENT_MODULES)
        .file("/bin/pxeroot-initiator", bytes, 0o755)
        .script(&agent_script())
        .build_cached(&lab_dir().join("initrd-cache"))
}

/// `user:secret[:user_in:secret_in]@` for root paths, empty without CHAP.
fn root_path_auth(chap: Option<&Chap>, mutual: Option<&Chap>) -> String {
    match (chap, mutual) {
        (Some(c), Some(m)) => format!("{}:{}:{}:{}@", c.user, c.secret, m.user, m.secret),
        (Some(c), None) => format!("{}:{}@", c.user, c.secret),
        _ => String::new(),
    }
}

/// The RFC 4173 root path of the lab's target for `opts`.
fn root_path(opts: &AgentOptions) -> String {
    let (chap, mutual) = opts.agent_credentials();
    format!(
        "iscsi:{}{SERVER_IP}::3260:{:x}:{TARGET_IQN}",
        root_path_auth(chap.as_ref(), mutual.as_ref()),
        opts.server.lun()
    )
}

/// The boot parameters under test (without `console=` and the like), secrets included.
pub fn agent_cmdline(opts: &AgentOptions) -> String {
    let (chap, mutual) = opts.agent_credentials();
    let mut args = match opts.params {
        Params::Debian => {
            let mut a = vec![
                format!("BOOTIF=01-{}", GUEST_MAC.replace(':', "-")),
                "ip=dhcp".to_string(),
                format!("iscsi_initiator={INITIATOR_IQN}"),
                format!("iscsi_target_name={TARGET_IQN}"),
                format!("iscsi_target_ip={SERVER_IP}"),
                "iscsi_target_port=3260".to_string(),
            ];
            if opts.server.lun() != 0 {
                // Debian's parameters have no LUN: iscsistart attaches every LUN.
                a.push(format!("pxeroot.lun={}", opts.server.lun()));
            }
            if let Some(c) = &chap {
                a.push(format!("iscsi_username={}", c.user));
                a.push(format!("iscsi_password={}", c.secret));
            }
            if let Some(m) = &mutual {
                a.push(format!("iscsi_in_username={}", m.user));
                a.push(format!("iscsi_in_password={}", m.secret));
            }
            a
        }
        Params::RootIscsi => vec![
            "ip=dhcp".to_string(),
            format!("rd.iscsi.initiator={INITIATOR_IQN}"),
            format!("root={}", root_path(opts)),
        ],
        Params::Netroot => vec![
            "ip=dhcp".to_string(),
            format!("rd.iscsi.initiator={INITIATOR_IQN}"),
            format!("netroot={}", root_path(opts)),
        ],
        Params::NetrootDhcp => vec!["netroot=dhcp".to_string()],
    };
    if !opts.extra_cmdline.is_empty() {
        args.push(opts.extra_cmdline.clone());
    }
    args.join(" ")
}

/// dnsmasq arguments for `opts`: the root path (option 17) and the initiator name (option
/// 203, sent even when not asked for) for `netroot=dhcp`. Unquoted: dnsmasq keeps quotes of a
/// command-line value as part of the option (neither value has a comma or looks like hex).
fn dhcp_options(opts: &AgentOptions) -> Vec<String> {
    match opts.params {
        Params::NetrootDhcp => vec![
            format!("--dhcp-option=17,{}", root_path(opts)),
            format!("--dhcp-option-force=203,{INITIATOR_IQN}"),
        ],
        _ => Vec::new(),
    }
}

/// Boot a guest whose iSCSI root is attached by pxeroot-initiator; returns what it printed.
/// A failing agent is not an error here (tests assert on the report): only a broken lab is.
///
/// # Errors
/// When the lab fails (namespace, peers, image, QEMU) or the agent binary is missing.
pub fn agent_chain(lab: &Lab, opts: &AgentOptions) -> Result<Report> {
    let initrd = agent_initrd(lab)?;
    let _slot = boot_slot();
    let mut rig = Rig::new()?;
    let (chap, mutual) = opts.auth.credentials();
    if opts.dhcp {
        rig.dhcp(&dhcp_options(opts))?;
    }
    if !opts.target_down && opts.target_delay.is_none() {
        rig.serve(opts.server, chap.as_ref(), mutual.as_ref())?;
    }
    let append = format!("console=ttyS0 quiet panic=-1 {}", agent_cmdline(opts));
    let qemu = rig.spawn(lab, "agent", &initrd, &append, opts.guest_timeout)?;
    let started = Instant::now();
    let mut target_started = None;
    if let (Some(delay), false) = (opts.target_delay, opts.target_down) {
        std::thread::sleep(delay);
        rig.serve(opts.server, chap.as_ref(), mutual.as_ref())?;
        target_started = Some(started.elapsed());
    }
    // The guest powers off at the end of its script or at its first failure; one that does
    // not (a hung agent) is killed and reported as such, with what it printed until then.
    let hung = qemu.wait_exit(opts.guest_timeout).is_err();
    let mut report = rig.report(qemu.lines(), &opts.title(), AGENT_STEPS);
    report.target_started = target_started;
    if hung && report.failure.is_none() {
        report.failure = Some(format!(
            "the guest did not power off within {} s (killed); the agent was still running",
            opts.guest_timeout.as_secs()
        ));
    }
    Ok(report)
}

impl Report {
    /// Seconds (guest clock) from `agent-start` to the agent's exit (`agent-done` or
    /// `agent-failed`).
    pub fn agent_seconds(&self) -> Option<f64> {
        let start = self.timeline.step("agent-start")?;
        let end = self
            .timeline
            .step("agent-done")
            .or_else(|| self.timeline.step("agent-failed"))?;
        Some(end.uptime - start.uptime)
    }

    /// Whether the agent failed with exit code `code`, never reading the disk.
    ///
    /// # Errors
    /// What happened instead, with the agent's messages and the timeline.
    pub fn agent_failed_with(&self, code: i32) -> Result<(), String> {
        if self.marker_seen.is_some() {
            return Err(format!("the guest read the disk\n{}", self.timeline));
        }
        if self.agent_exit != Some(code) {
            return Err(format!(
                "expected pxeroot-initiator to exit {code}, it exited {:?}; it printed {:?}\n{}",
                self.agent_exit, self.agent_errors, self.timeline
            ));
        }
        Ok(())
    }

    /// The console from the agent's start on (host seconds since QEMU started, then the
    /// line), followed by the end of the host-side logs: what a failed agent test prints.
    pub fn agent_console(&self) -> String {
        let from = self
            .console
            .iter()
            .position(|l| l.text.contains("agent-start"))
            .unwrap_or(0);
        let mut s: String = self.console[from..]
            .iter()
            .map(|l| format!("{:>7.2}  {}\n", l.at.as_secs_f64(), l.text))
            .collect();
        s.push_str(&self.host_logs);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_parameters_carry_bootif_lun_and_both_secrets() {
        let opts = AgentOptions {
            server: Server::Tgtd,
            auth: Auth::Mutual,
            ..Default::default()
        };
        assert_eq!(
            agent_cmdline(&opts),
            "BOOTIF=01-52-54-00-12-34-56 ip=dhcp \
             iscsi_initiator=iqn.2013-02.org.example.client:default \
             iscsi_target_name=iqn.2013-02.org.example.target:client iscsi_target_ip=10.0.0.2 \
             iscsi_target_port=3260 pxeroot.lun=1 iscsi_username=client \
             iscsi_password=client-secret-1 iscsi_in_username=target \
             iscsi_in_password=target-secret-1"
        );
    }

    #[test]
    fn root_paths_follow_rfc_4173_with_dracut_auth() {
        let opts = AgentOptions {
            params: Params::Netroot,
            auth: Auth::Chap,
            wrong_secret: true,
            extra_cmdline: "pxeroot.timeout=10".into(),
            ..Default::default()
        };
        assert_eq!(
            agent_cmdline(&opts),
            "ip=dhcp rd.iscsi.initiator=iqn.2013-02.org.example.client:default \
             netroot=iscsi:client:wrong-secret-99@10.0.0.2::3260:0:\
             iqn.2013-02.org.example.target:client pxeroot.timeout=10"
        );
        let dhcp = AgentOptions {
            params: Params::NetrootDhcp,
            server: Server::Tgtd,
            ..Default::default()
        };
        assert_eq!(agent_cmdline(&dhcp), "netroot=dhcp");
        assert_eq!(
            dhcp_options(&dhcp),
            [
                "--dhcp-option=17,iscsi:10.0.0.2::3260:1:iqn.2013-02.org.example.target:client",
                "--dhcp-option-force=203,iqn.2013-02.org.example.client:default"
            ]
        );
    }
}
