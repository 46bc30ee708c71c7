//! Complete lab chains, shared by the end-to-end tests and `tools/demo`.
//!
//! The reference chain is the stock stack pxeroot replaces, run for real: a guest that gets its
//! address (static, or from dnsmasq with busybox udhcpc), logs in to tgtd with open-iscsi's
//! iscsistart (optionally with CHAP), mounts the ext4 image served as LUN 1 and prints a marker
//! file whose content is random per run, so that only a real read of the disk can print it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::image::ext4_with_files;
use crate::initramfs::{self, Builder};
use crate::netns::Netns;
use crate::peers::{self, Chap, DhcpConfig, Dnsmasq, PxerootTarget, Tgtd};
use crate::qemu::{Boot, Line, Qemu, Spec};
use crate::timeline::Timeline;
use crate::Lab;

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
        for want in BOOT_STEPS {
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

/// Run the reference chain; returns what the guest printed. A failed login is not an error here
/// (tests assert on it): only a broken lab is.
///
/// # Errors
/// When the lab itself fails: namespace, peers, images, QEMU.
pub fn reference_chain(lab: &Lab, opts: &RefOptions) -> Result<Report> {
    let ns = Netns::create()?;
    ns.add_tap("tap0", &format!("{SERVER_IP}/24"))?;
    let marker = fresh_marker();
    let image = ns.run_dir().join("disk.img");
    ext4_with_files(ns.run_dir(), &image, 16, &[("marker", marker.as_bytes())])?;
    let (_tgtd, _pxeroot) = match opts.server {
        Server::Tgtd => {
            let tgtd = Tgtd::start(&ns)?;
            tgtd.add_target(1, TARGET_IQN, &image, &[INITIATOR_IQN])?;
            if let Some(chap) = &opts.chap {
                tgtd.require_chap(1, chap, opts.mutual.as_ref())?;
            }
            (Some(tgtd), None)
        }
        Server::Pxeroot => {
            let config = peers::pxeroot_config(
                &format!("{SERVER_IP}:3260"),
                TARGET_IQN,
                &image,
                INITIATOR_IQN,
                opts.chap.as_ref(),
                opts.mutual.as_ref(),
            );
            (None, Some(PxerootTarget::start(&ns, &config)?))
        }
    };
    let _dnsmasq = if opts.dhcp {
        Some(Dnsmasq::start(
            &ns,
            &DhcpConfig::lab(&[(GUEST_MAC, GUEST_IP)]),
        )?)
    } else {
        None
    };
    let address = if opts.dhcp {
        peers::guest_udhcpc().to_string()
    } else {
        peers::guest_static_ip(&format!("{GUEST_IP}/24"))
    };
    let login_chap = opts.initiator_chap.as_ref().or(opts.chap.as_ref());
    let script = [
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
    .concat();
    let initrd = Builder::new(&lab.kernel)
        .modules(GUEST_MODULES)
        .binary("/usr/sbin/iscsistart")
        .file("/etc/udhcpc.script", peers::UDHCPC_SCRIPT, 0o755)
        .script(&script)
        .build(ns.run_dir(), &ns.run_dir().join("initrd.cpio"))?;
    let qemu = Qemu::spawn(
        &ns,
        "guest",
        &Spec::new(Boot::Kernel {
            kernel: lab.kernel.vmlinuz.clone(),
            initrd,
            append: "console=ttyS0 quiet panic=-1".into(),
        }),
    )?;
    // The guest powers off at the end of its script or at its first failure.
    qemu.wait_exit(Duration::from_secs(120))
        .context("reference chain guest")?;
    let console = qemu.lines();
    let find = |prefix: &str| {
        console.iter().find_map(|l| {
            l.text
                .find(prefix)
                .map(|i| l.text[i + prefix.len()..].trim().to_string())
        })
    };
    Ok(Report {
        marker_seen: find("PXRT-MARKER "),
        dhcp_bound: find("PXRT-DHCP "),
        failure: console
            .iter()
            .find(|l| FAILURES.iter().any(|f| l.text.contains(f)))
            .map(|l| l.text.clone()),
        marker_expected: marker,
        server_log: _pxeroot
            .as_ref()
            .map(PxerootTarget::log_text)
            .unwrap_or_default(),
        timeline: Timeline::from_console(&title(opts), &console),
        console,
    })
}

fn title(opts: &RefOptions) -> String {
    let auth = match (&opts.chap, &opts.mutual) {
        (Some(_), Some(_)) => "mutual CHAP",
        (Some(_), None) => "CHAP",
        _ => "no auth",
    };
    let server = match opts.server {
        Server::Tgtd => "tgtd",
        Server::Pxeroot => "pxeroot-target",
    };
    let net = if opts.dhcp {
        "dnsmasq DHCP + udhcpc"
    } else {
        "static address"
    };
    format!("iscsistart -> {server} ({auth}), {net}")
}
