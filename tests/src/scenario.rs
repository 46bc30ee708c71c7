//! Complete lab chains, shared by the end-to-end tests and `tools/demo`.
//!
//! The reference chain is the stock stack pxeroot replaces, run for real: a guest that gets its
//! address (static, or from dnsmasq with busybox udhcpc), logs in to tgtd with open-iscsi's
//! iscsistart (optionally with CHAP), mounts the ext4 image served as LUN 1 and prints a marker
//! file whose content is random per run, so that only a real read of the disk can print it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::image::ext4_with_files;
use crate::initramfs::{self, Builder};
use crate::netns::Netns;
use crate::peers::{self, Chap, DhcpConfig, Dnsmasq, PxerootTarget, Tgtd};
use crate::qemu::{Boot, Line, Qemu, Spec};
use crate::timeline::Timeline;
use crate::Lab;

mod agent;
mod debian;
mod pxe;
pub use agent::{
    agent_binary, agent_chain, agent_cmdline, agent_initrd, client_chap, target_chap, AgentOptions,
    Auth, Params, AGENT_MODULES, AGENT_STEPS, NIC_MODULES,
};
pub use debian::{
    debian_chain, DebianOptions, DebianReport, Flavour, Layout, RunFile, Start, DEBIAN_FAILURES,
};
pub use pxe::{
    pxe_chain, pxeroot_netboot_config, Loader, PxeOptions, PxeReport, Stack, BASE_APPEND,
    CLIENT_TARGET,
};

/// The initiator name every lab guest uses (also the example in README).
pub const INITIATOR_IQN: &str = "iqn.2013-02.org.example.client:default";
/// The target name every lab target uses.
pub const TARGET_IQN: &str = "iqn.2013-02.org.example.target:client";
/// The host side of the lab link.
pub const SERVER_IP: &str = "10.0.0.2";
/// The guest's address (static, or reserved in DHCP).
pub const GUEST_IP: &str = "10.0.0.5";
/// The guest NIC's MAC.
pub const GUEST_MAC: &str = "52:54:00:12:34:56";
/// The kernel modules a guest needs for virtio networking, iSCSI and a SCSI disk.
pub const GUEST_MODULES: &[&str] = &["virtio_pci", "virtio_net", "iscsi_tcp", "sd_mod"];
/// iscsistart settings that ask for CRC32C header and data digests.
pub const DIGEST_PARAMS: &[&str] = &[
    "node.conn[0].iscsi.HeaderDigest=CRC32C",
    "node.conn[0].iscsi.DataDigest=CRC32C",
];
/// Console lines that end a boot as failed.
pub const FAILURES: &[&str] = &[initramfs::FAIL, "Kernel panic"];

/// The iSCSI target a chain boots from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Server {
    /// tgtd, the reference (LUN 1).
    #[default]
    Tgtd,
    /// pxeroot-target (LUN 0).
    Pxeroot,
}

impl Server {
    /// The LUN that holds the disk (tgtd keeps LUN 0 for its controller).
    pub fn lun(self) -> u32 {
        match self {
            Server::Tgtd => 1,
            Server::Pxeroot => 0,
        }
    }

    /// The server's name in titles and tables.
    pub fn name(self) -> &'static str {
        match self {
            Server::Tgtd => "tgtd",
            Server::Pxeroot => "pxeroot-target",
        }
    }
}

/// How to run the reference chain.
#[derive(Debug, Clone, Default)]
pub struct RefOptions {
    /// Which target serves the disk.
    pub server: Server,
    /// CHAP the target requires and the initiator offers.
    pub chap: Option<Chap>,
    /// The secret the initiator uses, when it should differ from the target's (a wrong secret).
    pub initiator_chap: Option<Chap>,
    /// Mutual CHAP: the target authenticates itself with this.
    pub mutual: Option<Chap>,
    /// Get the address from dnsmasq with udhcpc instead of a static one.
    pub dhcp: bool,
    /// Ask for CRC32C header and data digests (iscsistart node settings).
    pub digests: bool,
}

/// What a boot showed.
#[derive(Debug)]
pub struct Report {
    /// The marker the disk holds.
    pub marker_expected: String,
    /// The marker the guest printed, if it got that far.
    pub marker_seen: Option<String>,
    /// The udhcpc report line, when DHCP ran.
    pub dhcp_bound: Option<String>,
    /// The first failure line the guest printed, if any.
    pub failure: Option<String>,
    /// The boot timeline.
    pub timeline: Timeline,
    /// The whole console.
    pub console: Vec<Line>,
    /// pxeroot-target's log, when it served.
    pub server_log: String,
    /// The steps a successful boot of this chain stamps, in order ([`Report::booted`]).
    pub steps: &'static [&'static str],
    /// pxeroot-initiator's exit code, when the chain ran it.
    pub agent_exit: Option<i32>,
    /// Every `pxeroot-initiator: ...` line the agent printed on the console (its progress
    /// and its errors).
    pub agent_errors: Vec<String>,
    /// The guest's IPv4 address on eth0 after the agent ran (`ip addr` line), when it got one.
    pub guest_address: Option<String>,
    /// The root block device the agent reported (/run/pxeroot/root-device).
    pub root_device: Option<String>,
    /// When the host started the target, since QEMU started (a late target).
    pub target_started: Option<Duration>,
    /// The lines of /run/net-eth0.conf after the agent ran (empty when it is missing).
    pub net_conf: Vec<String>,
    /// The guest's /proc/cmdline, when its script printed it (agent boots do).
    pub cmdline: Option<String>,
    /// The end of each host-side log (dnsmasq, tgtd, pxeroot-target) when the boot ended.
    pub host_logs: String,
}

/// The boot steps every successful chain stamps, in order.
pub const BOOT_STEPS: &[&str] = &[
    "initramfs-start",
    "modules-loaded",
    "link-up",
    "network-configured",
    "session-operational",
    "root-device-ready",
    "root-mounted",
    "marker-read",
];

impl Report {
    /// Whether the guest booted: no failure, the disk's marker printed, every step in order.
    ///
    /// # Errors
    /// What is wrong, with the timeline.
    pub fn booted(&self) -> Result<(), String> {
        if let Some(f) = &self.failure {
            return Err(format!(
                "the guest reported a failure: {f}\n{}",
                self.timeline
            ));
        }
        if self.marker_seen.as_deref() != Some(self.marker_expected.as_str()) {
            return Err(format!(
                "marker: expected {:?}, the guest printed {:?}\n{}",
                self.marker_expected, self.marker_seen, self.timeline
            ));
        }
        let steps: Vec<&str> = self
            .timeline
            .steps
            .iter()
            .map(|s| s.label.as_str())
            .collect();
        let mut at = 0;
        for want in self.steps {
            match steps[at..].iter().position(|s| s == want) {
                Some(pos) => at += pos + 1,
                None => return Err(format!("step {want} missing or out of order in {steps:?}")),
            }
        }
        Ok(())
    }
}

impl Report {
    /// Whether the login was refused: iscsistart failed and the disk's marker was never read.
    ///
    /// # Errors
    /// What happened instead.
    pub fn refused_at_login(&self) -> Result<(), String> {
        if self.marker_seen.is_some() {
            return Err(format!("the guest read the disk\n{}", self.timeline));
        }
        match &self.failure {
            Some(f) if f.contains("PXRT-FAIL iscsistart login") => Ok(()),
            other => Err(format!(
                "expected a failed iscsistart login, got {other:?}\n{}",
                self.timeline
            )),
        }
    }
}

/// A random-enough marker for this run.
pub fn fresh_marker() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("pxeroot-marker-{}-{nanos:09}", std::process::id())
}

/// Hold this while a guest runs: a process boots one guest at a time, whatever the test
/// harness's thread count (TCG guests on a 2-core machine slow each other down enough to
/// break timing assertions).
pub fn boot_slot() -> MutexGuard<'static, ()> {
    static SLOT: Mutex<()> = Mutex::new(());
    SLOT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One lab network for a chain: a namespace whose `tap0` is 10.0.0.2/24 and an ext4 image
/// holding a fresh marker; the iSCSI target and dnsmasq start when asked (so that a test can
/// start the target late, or never). Dropping it stops everything and removes the namespace.
#[derive(Debug)]
pub struct Rig {
    tgtd: Option<Tgtd>,
    pxeroot: Option<PxerootTarget>,
    dnsmasq: Option<Dnsmasq>,
    /// The disk image the target serves.
    pub image: PathBuf,
    /// The marker the image holds.
    pub marker: String,
    /// The namespace (declared last: dropped after the daemons).
    pub ns: Netns,
}

impl Rig {
    /// A namespace with `tap0` and a 16 MiB image with a fresh marker.
    ///
    /// # Errors
    /// When the namespace or the image cannot be made.
    pub fn new() -> Result<Rig> {
        let ns = Netns::create()?;
        ns.add_tap("tap0", &format!("{SERVER_IP}/24"))?;
        let marker = fresh_marker();
        let image = ns.run_dir().join("disk.img");
        ext4_with_files(ns.run_dir(), &image, 16, &[("marker", marker.as_bytes())])?;
        Ok(Rig {
            tgtd: None,
            pxeroot: None,
            dnsmasq: None,
            image,
            marker,
            ns,
        })
    }

    /// Start `server` on 10.0.0.2:3260 serving the image to [`INITIATOR_IQN`], requiring
    /// `chap` (and authenticating itself with `mutual`) when given.
    ///
    /// # Errors
    /// When the server does not start or refuses the configuration.
    pub fn serve(
        &mut self,
        server: Server,
        chap: Option<&Chap>,
        mutual: Option<&Chap>,
    ) -> Result<()> {
        match server {
            Server::Tgtd => {
                let tgtd = Tgtd::start(&self.ns)?;
                tgtd.add_target(1, TARGET_IQN, &self.image, &[INITIATOR_IQN])?;
                if let Some(chap) = chap {
                    tgtd.require_chap(1, chap, mutual)?;
                }
                self.tgtd = Some(tgtd);
            }
            Server::Pxeroot => {
                let config = peers::pxeroot_config(
                    &format!("{SERVER_IP}:3260"),
                    TARGET_IQN,
                    &self.image,
                    INITIATOR_IQN,
                    chap,
                    mutual,
                );
                self.pxeroot = Some(PxerootTarget::start(&self.ns, &config)?);
            }
        }
        Ok(())
    }

    /// Start pxeroot-target with this whole configuration (DHCP, TFTP and iSCSI as it says).
    ///
    /// # Errors
    /// When the server does not start or refuses the configuration.
    pub fn serve_config(&mut self, config: &str) -> Result<()> {
        self.pxeroot = Some(PxerootTarget::start(&self.ns, config)?);
        Ok(())
    }

    /// pxeroot-target's log so far (empty when it does not run).
    pub fn server_log(&self) -> String {
        self.pxeroot
            .as_ref()
            .map(PxerootTarget::log_text)
            .unwrap_or_default()
    }

    /// Start dnsmasq with this configuration.
    ///
    /// # Errors
    /// When dnsmasq does not start.
    pub fn dhcp_with(&mut self, config: DhcpConfig) -> Result<()> {
        self.dnsmasq = Some(Dnsmasq::start(&self.ns, &config)?);
        Ok(())
    }

    /// Start dnsmasq on `tap0` with the guest's reservation ([`GUEST_MAC`] -> [`GUEST_IP`])
    /// and these extra arguments (e.g. `--dhcp-option=17,...`).
    ///
    /// # Errors
    /// When dnsmasq does not start.
    pub fn dhcp(&mut self, extra: &[String]) -> Result<()> {
        let mut config = DhcpConfig::lab(&[(GUEST_MAC, GUEST_IP)]);
        config.extra.extend(extra.iter().cloned());
        self.dnsmasq = Some(Dnsmasq::start(&self.ns, &config)?);
        Ok(())
    }

    /// Start a guest named `name` booting `kernel` with `initrd` and the command line
    /// `append`; QEMU is killed after `timeout`.
    ///
    /// # Errors
    /// When QEMU does not start.
    pub fn spawn(
        &self,
        lab: &Lab,
        name: &str,
        initrd: &Path,
        append: &str,
        timeout: Duration,
    ) -> Result<Qemu> {
        let mut spec = Spec::new(Boot::Kernel {
            kernel: lab.kernel.vmlinuz.clone(),
            initrd: initrd.to_path_buf(),
            append: append.to_string(),
        });
        spec.timeout = timeout;
        Qemu::spawn(&self.ns, name, &spec)
    }

    /// The last `lines` lines of each host-side daemon's log, headed by its name.
    pub fn host_logs(&self, lines: usize) -> String {
        let mut s = String::new();
        for name in ["dnsmasq.log", "tgtd.log", "pxeroot-target.log"] {
            let Ok(text) = std::fs::read_to_string(self.ns.run_dir().join(name)) else {
                continue;
            };
            let all: Vec<&str> = text.lines().collect();
            s.push_str(&format!("--- {name} (last {lines} lines) ---\n"));
            for line in &all[all.len().saturating_sub(lines)..] {
                s.push_str(line);
                s.push('\n');
            }
        }
        s
    }

    /// What the guest printed, as a [`Report`] titled `title` whose success means `steps`.
    pub fn report(
        &self,
        console: Vec<Line>,
        title: &str,
        steps: &'static [&'static str],
    ) -> Report {
        let find = |prefix: &str| {
            console.iter().find_map(|l| {
                l.text
                    .find(prefix)
                    .map(|i| l.text[i + prefix.len()..].trim().to_string())
            })
        };
        Report {
            marker_seen: find("PXRT-MARKER "),
            dhcp_bound: find("PXRT-DHCP "),
            failure: console
                .iter()
                .find(|l| FAILURES.iter().any(|f| l.text.contains(f)))
                .map(|l| l.text.clone()),
            marker_expected: self.marker.clone(),
            server_log: self
                .pxeroot
                .as_ref()
                .map(PxerootTarget::log_text)
                .unwrap_or_default(),
            steps,
            agent_exit: find("PXRT-AGENT-EXIT ").and_then(|c| c.parse().ok()),
            agent_errors: console
                .iter()
                .filter_map(|l| {
                    l.text
                        .find(agent::ERROR_PREFIX)
                        .map(|i| l.text[i..].to_string())
                })
                .collect(),
            guest_address: find("PXRT-ADDR ").filter(|a| !a.is_empty()),
            root_device: find("PXRT-ROOTDEV "),
            target_started: None,
            net_conf: console
                .iter()
                .filter_map(|l| {
                    let i = l.text.find("PXRT-NETCONF ")?;
                    Some(l.text[i + "PXRT-NETCONF ".len()..].trim().to_string())
                })
                .collect(),
            cmdline: find("PXRT-CMDLINE "),
            host_logs: self.host_logs(40),
            timeline: Timeline::from_console(title, &console),
            console,
        }
    }
}

/// The reference chain's guest script for `opts` (address, iscsistart login, mount, marker).
pub fn reference_script(opts: &RefOptions) -> String {
    let address = if opts.dhcp {
        peers::guest_udhcpc().to_string()
    } else {
        peers::guest_static_ip(&format!("{GUEST_IP}/24"))
    };
    let login_chap = opts.initiator_chap.as_ref().or(opts.chap.as_ref());
    [
        peers::guest_link_up().to_string(),
        address,
        peers::guest_iscsistart(
            INITIATOR_IQN,
            TARGET_IQN,
            SERVER_IP,
            login_chap,
            opts.mutual.as_ref(),
            if opts.digests { DIGEST_PARAMS } else { &[] },
        ),
        peers::guest_mount_and_print("marker"),
    ]
    .concat()
}

/// Run the reference chain; returns what the guest printed. A failed login is not an error here
/// (tests assert on it): only a broken lab is.
///
/// # Errors
/// When the lab itself fails: namespace, peers, images, QEMU.
pub fn reference_chain(lab: &Lab, opts: &RefOptions) -> Result<Report> {
    let _slot = boot_slot();
    let mut rig = Rig::new()?;
    rig.serve(opts.server, opts.chap.as_ref(), opts.mutual.as_ref())?;
    if opts.dhcp {
        rig.dhcp(&[])?;
    }
    let initrd = Builder::new(&lab.kernel)
        .modules(GUEST_MODULES)
        .binary("/usr/sbin/iscsistart")
        .file("/etc/udhcpc.script", peers::UDHCPC_SCRIPT, 0o755)
        .script(&reference_script(opts))
        .build(rig.ns.run_dir(), &rig.ns.run_dir().join("initrd.cpio"))?;
    let qemu = rig.spawn(
        lab,
        "guest",
        &initrd,
        "console=ttyS0 quiet panic=-1",
        Duration::from_secs(120),
    )?;
    // The guest powers off at the end of its script or at its first failure.
    qemu.wait_exit(Duration::from_secs(120))
        .context("reference chain guest")?;
    Ok(rig.report(qemu.lines(), &title(opts), BOOT_STEPS))
}

fn title(opts: &RefOptions) -> String {
    let net = if opts.dhcp {
        "dnsmasq DHCP + udhcpc"
    } else {
        "static address"
    };
    format!(
        "iscsistart -> {} ({}), {net}",
        opts.server.name(),
        auth_name(opts.chap.is_some(), opts.mutual.is_some())
    )
}

/// "no auth", "CHAP" or "mutual CHAP".
fn auth_name(chap: bool, mutual: bool) -> &'static str {
    match (chap, mutual) {
        (true, true) => "mutual CHAP",
        (true, false) => "CHAP",
        _ => "no auth",
    }
}
