//! The whole Debian flow: `tools/provision` builds a client (a debootstrapped bookworm with
//! linux-image-cloud-amd64, the pxeroot hooks and agent, its initramfs built in the chroot by
//! Debian's own update-initramfs or by dracut), puts its kernel and initrd in the TFTP folder and
//! adds its `[[client]]` entry to pxeroot-target's configuration; then the client network-boots
//! from pxeroot-target and runs its real root from the iSCSI disk up to systemd's
//! multi-user.target, where a unit of the image prints a marker, the active swap, the kernel
//! command line and the modes of what the agent left in /run on the serial console.
//!
//! The debootstrapped base is cached by `tools/provision` under `build/lab/cache/` (first run:
//! a few minutes; then about a minute per client).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::pxe::{LDLINUX, PXELINUX};
use super::{agent_binary, boot_slot, fresh_marker, GUEST_IP, GUEST_MAC, SERVER_IP};
use crate::netns::Netns;
use crate::paths::{lab_dir, workspace_root};
use crate::peers::{Chap, DhcpConfig, Dnsmasq, PxerootTarget};
use crate::process::describe;
use crate::qemu::{Boot, Line, Qemu, Spec};
use crate::Lab;

/// The disk layout `tools/provision` builds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// One ext4 filesystem on the whole disk.
    #[default]
    Plain,
    /// A volume group on the disk with `root` and `swap` volumes.
    Lvm,
}

/// Who builds the client's initramfs inside the chroot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flavour {
    /// Debian's update-initramfs (initramfs-tools) with hooks/initramfs-tools.
    #[default]
    InitramfsTools,
    /// dracut with hooks/dracut.
    Dracut,
}

/// How the client starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Start {
    /// Power-on with no disk: the iPXE ROM, pxeroot-target's DHCP and TFTP, the generated
    /// boot file, the kernel and initrd the provisioning placed in the TFTP folder.
    #[default]
    Pxe,
    /// QEMU loads that kernel and initrd itself with the command line pxeroot-target would
    /// generate; dnsmasq hands out the reservation and the CHAP credentials (option 175). For
    /// machines where pxeroot-target's DHCP and TFTP servers are not available.
    Direct,
}

/// What to provision and boot.
#[derive(Debug, Clone)]
pub struct DebianOptions {
    /// Disk layout.
    pub layout: Layout,
    /// Initramfs generator.
    pub flavour: Flavour,
    /// PXE or direct kernel boot.
    pub start: Start,
    /// The disk's size (`tools/provision --size`).
    pub size: &'static str,
    /// Mutual CHAP instead of one-way CHAP.
    pub mutual: bool,
    /// More packages for the image (`tools/provision --packages`).
    pub packages: &'static str,
    /// More kernel parameters (after `console=ttyS0 panic=-1`).
    pub append: &'static str,
    /// Name the root `root=iscsi:10.0.0.2::3260:0:<target>` (RFC 4173, as Debian's open-iscsi
    /// reads it) instead of the provisioned `root=UUID=`, with no `iscsi_target_*` parameters
    /// ([`Start::Direct`] only: pxeroot-target generates the command line for PXE boots).
    pub root_iscsi: bool,
    /// After the first boot, power off, move the same client to dracut
    /// (`tools/provision --refresh --initramfs dracut`) and boot it again; the report is the
    /// second boot's, with the first in [`DebianReport::earlier`].
    pub then_dracut: bool,
    /// Serve no iSCSI target ([`Start::Direct`] only: with PXE, pxeroot-target serves the boot
    /// too), so that the initramfs fails.
    pub no_target: bool,
    /// QEMU is killed after this.
    pub timeout: Duration,
}

impl Default for DebianOptions {
    fn default() -> Self {
        DebianOptions {
            layout: Layout::Plain,
            flavour: Flavour::InitramfsTools,
            start: Start::Pxe,
            size: "2G",
            mutual: false,
            packages: "",
            append: "",
            no_target: false,
            root_iscsi: false,
            then_dracut: false,
            timeout: Duration::from_secs(360),
        }
    }
}

/// One file the agent left in /run, as the booted system sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFile {
    /// `stat -c %a`.
    pub mode: u32,
    /// Owner name.
    pub owner: String,
    /// Path.
    pub path: String,
}

/// What a Debian boot showed.
#[derive(Debug)]
pub struct DebianReport {
    /// The marker the image holds.
    pub marker_expected: String,
    /// What the marker unit printed, when it ran.
    pub marker_seen: Option<String>,
    /// Seconds from QEMU's start to the marker unit's line (multi-user.target reached).
    pub to_multi_user: Option<f64>,
    /// The guest's uptime when the marker unit ran (kernel start to multi-user).
    pub uptime_multi_user: Option<f64>,
    /// The guest's uptime when the initramfs had mounted the root (local-bottom's line).
    pub uptime_root_mounted: Option<f64>,
    /// Seconds from QEMU's start to the kernel's start (host time of the root-mounted line
    /// minus its uptime).
    pub kernel_started: Option<f64>,
    /// The root filesystem's source (`findmnt /`).
    pub root_source: Option<String>,
    /// Active swap devices (/proc/swaps), with their sizes in KiB.
    pub swaps: Vec<String>,
    /// /proc/cmdline of the booted client.
    pub cmdline: Option<String>,
    /// What the agent left in /run.
    pub run_files: Vec<RunFile>,
    /// `systemd-analyze` of the booted client.
    pub analyze: Option<String>,
    /// Every line of the image's initramfs listing (lsinitramfs or lsinitrd).
    pub initramfs_listing: Vec<String>,
    /// The CHAP credentials the provisioning generated (to check that none leaks).
    pub secrets: Vec<String>,
    /// The `[[client]]` entry the provisioning appended.
    pub client_entry: String,
    /// The first failure line on the console.
    pub failure: Option<String>,
    /// The whole console.
    pub console: Vec<Line>,
    /// pxeroot-target's log.
    pub server_log: String,
    /// The run folder (logs, console, provisioning output).
    pub run_dir: PathBuf,
    /// Seconds `tools/provision` took.
    pub provision_seconds: f64,
    /// PXE boots: the firmware's DHCP and the TFTP transfers, in seconds since power-on, from
    /// pxeroot-target's log.
    pub pxe_events: Vec<(String, f64)>,
    /// The earlier boots of the same client (see [`DebianOptions::then_dracut`]).
    pub earlier: Vec<DebianReport>,
}

impl DebianReport {
    /// Whether the client reached multi-user.target from its iSCSI root and printed the marker.
    ///
    /// # Errors
    /// What is wrong, with the end of the console.
    pub fn booted(&self) -> Result<(), String> {
        if self.marker_seen.as_deref() == Some(self.marker_expected.as_str())
            && self.failure.is_none()
        {
            return Ok(());
        }
        let start = self.console.len().saturating_sub(60);
        let tail: Vec<&str> = self.console[start..]
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        Err(format!(
            "failure {:?}; marker expected {:?}, seen {:?}\n--- console (last 60 lines; {}) ---\n{}",
            self.failure,
            self.marker_expected,
            self.marker_seen,
            self.run_dir.display(),
            tail.join("\n")
        ))
    }

    /// The figures as printed by the tests.
    pub fn figures(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} s"));
        let mut pxe = String::new();
        for (label, t) in &self.pxe_events {
            pxe.push_str(&format!("power-on -> {label}: {t:.1} s\n"));
        }
        format!(
            "provisioning (tools/provision): {:.1} s\n{pxe}\
             power-on -> kernel start: {}\n\
             kernel start -> root mounted (initramfs local-bottom): {}\n\
             kernel start -> multi-user.target (marker unit): {}\n\
             power-on -> multi-user.target: {}\n\
             root: {}\nswap: {}\nsystemd-analyze: {}",
            self.provision_seconds,
            f(self.kernel_started),
            f(self.uptime_root_mounted),
            f(self.uptime_multi_user),
            f(self.to_multi_user),
            self.root_source.as_deref().unwrap_or("-"),
            if self.swaps.is_empty() {
                "none".to_string()
            } else {
                self.swaps.join(", ")
            },
            self.analyze.as_deref().unwrap_or("-"),
        )
    }
}

/// The console lines that end a Debian boot as failed.
pub const DEBIAN_FAILURES: &[&str] = &[
    "Kernel panic",
    "pxeroot: no iSCSI root",
    "ALERT!",
    "Dropping to a shell",
    "You are in emergency mode",
    "Give root password for maintenance",
    "Entering emergency mode",
];

/// The image's marker unit: after multi-user.target, print what the test checks.
const MARKER_UNIT: &str = "[Unit]\nDescription=pxeroot lab marker\nAfter=multi-user.target\n\n\
[Service]\nType=simple\nExecStart=/usr/local/sbin/pxeroot-marker\nStandardOutput=tty\n\
StandardError=tty\nTTYPath=/dev/ttyS0\n\n[Install]\nWantedBy=multi-user.target\n";

const MARKER_SCRIPT: &str = r#"#!/bin/sh
# pxeroot lab: the client reached multi-user.target; print what the test checks.
echo "PXRT-MULTIUSER $(cat /etc/pxeroot-marker) $(cut -d' ' -f1 /proc/uptime)"
echo "PXRT-ROOT $(findmnt -n -o SOURCE /)"
tail -n +2 /proc/swaps | while read -r dev _ size _; do echo "PXRT-SWAP $dev $size"; done
echo "PXRT-CMDLINE $(cat /proc/cmdline)"
for f in /run/pxeroot /run/pxeroot/* /run/net-*.conf /run/initramfs/open-iscsi.interface /run/initramfs/pxeroot*; do
    [ -e "$f" ] && echo "PXRT-RUNFILE $(stat -c '%a %U %n' "$f")"
done
# systemd's own figures, once the start-up jobs are done (this unit is Type=simple, so its own
# start job is not one of them).
timeout 60 systemctl is-system-running --wait >/dev/null 2>&1
echo "PXRT-ANALYZE $(systemd-analyze 2>&1 | head -n 1)"
echo "PXRT-DONE"
"#;

fn overlay(dir: &Path, marker: &str) -> Result<PathBuf> {
    let o = dir.join("overlay");
    let units = o.join("etc/systemd/system");
    std::fs::create_dir_all(units.join("multi-user.target.wants"))?;
    std::fs::create_dir_all(o.join("usr/local/sbin"))?;
    std::fs::write(units.join("pxeroot-marker.service"), MARKER_UNIT)?;
    // No login prompt on the serial console: its getty hangs the tty up under the marker
    // unit's output.
    std::os::unix::fs::symlink("/dev/null", units.join("serial-getty@ttyS0.service"))?;
    std::os::unix::fs::symlink(
        "../pxeroot-marker.service",
        units.join("multi-user.target.wants/pxeroot-marker.service"),
    )?;
    let script = o.join("usr/local/sbin/pxeroot-marker");
    std::fs::write(&script, MARKER_SCRIPT)?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    std::fs::write(o.join("etc/pxeroot-marker"), format!("{marker}\n"))?;
    Ok(o)
}

/// The configuration before provisioning: the boot network and nothing else.
fn base_config(dir: &Path, tftp: &Path) -> String {
    format!(
        "[iscsi]\nlisten = [\"{SERVER_IP}:3260\"]\n\n\
         [server]\naddress = \"{SERVER_IP}\"\ninterface = \"tap0\"\n\n\
         [dhcp]\nsubnet = \"10.0.0.0/24\"\nrouter = \"{SERVER_IP}\"\nlease_file = \"{}\"\n\n\
         [tftp]\nroot = \"{}\"\n",
        dir.join("leases").display(),
        tftp.display()
    )
}

/// `key = "value"` in the entry.
fn entry_value(entry: &str, key: &str) -> Option<String> {
    entry.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        if k.trim() != key {
            return None;
        }
        let v = v.trim();
        Some(
            v.strip_prefix('"')?
                .strip_suffix('"')?
                .replace("\\\"", "\""),
        )
    })
}

/// `key = { user = "...", secret = "..." }` in the entry.
fn entry_chap(entry: &str, key: &str) -> Option<Chap> {
    let line = entry
        .lines()
        .find(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))?;
    let field = |name: &str| {
        let at = line.find(&format!("{name} = \""))? + name.len() + 4;
        let rest = &line[at..];
        Some(rest[..rest.find('"')?].to_string())
    };
    Some(Chap {
        user: field("user")?,
        secret: field("secret")?,
    })
}

/// Provision a client with `tools/provision`, boot it, and report. The client boots its own
/// kernel (the image's linux-image-cloud-amd64), not the lab's; `Lab` proves the lab was checked.
///
/// # Errors
/// When the lab fails (namespace, provisioning, servers, QEMU); a client that does not boot is
/// reported, not an error.
pub fn debian_chain(_checked: &Lab, opts: &DebianOptions) -> Result<DebianReport> {
    let agent = agent_binary()?;
    let target_bin = PxerootTarget::binary()?;
    let _slot = boot_slot();
    let ns = Netns::create()?;
    ns.add_tap("tap0", &format!("{SERVER_IP}/24"))?;
    let dir = ns.run_dir().to_path_buf();
    let tftp = dir.join("tftp");
    std::fs::create_dir_all(&tftp)?;
    for (from, to) in [(PXELINUX, "pxelinux.0"), (LDLINUX, "ldlinux.c32")] {
        std::fs::copy(from, tftp.join(to)).with_context(|| format!("cannot copy {from}"))?;
    }
    let config = dir.join("pxeroot.toml");
    std::fs::write(&config, base_config(&dir, &tftp))?;
    let marker = fresh_marker();
    let overlay = overlay(&dir, &marker)?;
    let disk = dir.join("client.img");
    let work = dir.join("provision");

    let mut cmd = Command::new(workspace_root().join("tools/provision"));
    cmd.arg("--config")
        .arg(&config)
        .args(["--name", "client", "--mac", GUEST_MAC, "--ip", GUEST_IP])
        .arg("--disk")
        .arg(&disk)
        .args(["--size", opts.size])
        .args([
            "--layout",
            match opts.layout {
                Layout::Plain => "plain",
                Layout::Lvm => "lvm",
            },
        ])
        .args([
            "--initramfs",
            match opts.flavour {
                Flavour::InitramfsTools => "initramfs-tools",
                Flavour::Dracut => "dracut",
            },
        ])
        .args([
            "--append",
            format!("console=ttyS0 panic=-1 {}", opts.append).trim(),
        ])
        .arg(if opts.mutual {
            "--mutual-chap"
        } else {
            "--chap"
        })
        .arg("--overlay")
        .arg(&overlay)
        .args(["--packages", opts.packages])
        .arg("--agent")
        .arg(&agent)
        .arg("--target-bin")
        .arg(&target_bin)
        .arg("--cache")
        .arg(lab_dir().join("cache"))
        .arg("--work")
        .arg(&work)
        .arg("--listing")
        .arg(dir.join("initramfs.list"));
    let t0 = std::time::Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
    let provision_seconds = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    std::fs::write(dir.join("provision.log"), &stderr)?;
    if !out.status.success() {
        bail!("tools/provision failed ({}):\n{stderr}", out.status);
    }

    let text = std::fs::read_to_string(&config)?;
    let entry = text
        .split("[[client]]")
        .nth(1)
        .context("tools/provision added no [[client]] entry")?
        .to_string();
    let chap = entry_chap(&entry, "chap");
    let mutual = entry_chap(&entry, "mutual_chap");
    let secrets: Vec<String> = [&chap, &mutual]
        .iter()
        .filter_map(|c| c.as_ref().map(|c| c.secret.clone()))
        .collect();

    // The initramfs as the distribution's own tool listed it, inside the client's tree.
    let listing = std::fs::read_to_string(dir.join("initramfs.list"))
        .context("tools/provision wrote no initramfs listing")?;

    let mut server_config = text.clone();
    let mut _dnsmasq = None;
    let spec = match opts.start {
        Start::Pxe => Spec::new(Boot::Pxe),
        Start::Direct => {
            let initiator =
                entry_value(&entry, "initiator").context("no initiator in the entry")?;
            let append = entry_value(&entry, "append").context("no append in the entry")?;
            let target = "iqn.2026-11.org.pxeroot:client";
            // The same iSCSI service, without the stub-free DHCP and TFTP sections: the
            // client's target as a [[target]].
            server_config = crate::peers::pxeroot_config(
                &format!("{SERVER_IP}:3260"),
                target,
                &disk,
                &initiator,
                chap.as_ref(),
                mutual.as_ref(),
            );
            let mut dhcp = DhcpConfig::lab(&[(GUEST_MAC, GUEST_IP)]);
            dhcp.extra.push(format!("--dhcp-option=3,{SERVER_IP}"));
            for (c, user, secret) in [(&chap, 190, 191), (&mutual, 192, 193)] {
                if let Some(c) = c {
                    dhcp.extra
                        .push(format!("--dhcp-option=encap:175,{user},{}", c.user));
                    dhcp.extra
                        .push(format!("--dhcp-option=encap:175,{secret},{}", c.secret));
                }
            }
            _dnsmasq = Some(Dnsmasq::start(&ns, &dhcp)?);
            let bootif = format!("BOOTIF=01-{}", GUEST_MAC.replace(':', "-"));
            let append = if opts.root_iscsi {
                let own: Vec<&str> = append
                    .split_whitespace()
                    .filter(|p| !p.starts_with("root="))
                    .collect();
                format!(
                    "root=iscsi:{SERVER_IP}::3260:0:{target} {} ip=dhcp \
                     iscsi_initiator={initiator} {bootif}",
                    own.join(" ")
                )
            } else {
                format!(
                    "{append} ip=dhcp iscsi_initiator={initiator} iscsi_target_name={target} \
                     iscsi_target_ip={SERVER_IP} iscsi_target_port=3260 {bootif}"
                )
            };
            Spec::new(Boot::Kernel {
                kernel: tftp.join("pxeroot/client/vmlinuz"),
                initrd: tftp.join("pxeroot/client/initrd.img"),
                append,
            })
        }
    };
    if (opts.no_target || opts.root_iscsi) && opts.start == Start::Pxe {
        bail!("no_target and root_iscsi need Start::Direct (pxeroot-target makes PXE boots' command line)");
    }
    let server = if opts.no_target {
        None
    } else {
        Some(PxerootTarget::start(&ns, &server_config)?)
    };
    let mut spec = spec;
    spec.memory_mb = 768;
    spec.timeout = opts.timeout;
    let mut done = Provisioned {
        listing,
        secrets,
        entry,
        provision_seconds,
        marker,
        dir: dir.clone(),
    };
    let first = boot_round(&ns, &spec, opts, "client", &done, server.as_ref())?;
    if !opts.then_dracut || first.booted().is_err() {
        return Ok(first);
    }
    // Power off (QEMU is gone), move the same disk to dracut, boot again.
    let list = dir.join("initramfs-dracut.list");
    let mut cmd = Command::new(workspace_root().join("tools/provision"));
    cmd.arg("--refresh")
        .arg("--config")
        .arg(&config)
        .args(["--name", "client", "--initramfs", "dracut"])
        .arg("--work")
        .arg(dir.join("refresh"))
        .arg("--listing")
        .arg(&list);
    let t0 = std::time::Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
    done.provision_seconds = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    std::fs::write(dir.join("refresh.log"), &stderr)?;
    if !out.status.success() {
        bail!(
            "tools/provision --refresh failed ({}):\n{stderr}",
            out.status
        );
    }
    done.listing = std::fs::read_to_string(&list)?;
    let mut second = boot_round(&ns, &spec, opts, "client-dracut", &done, server.as_ref())?;
    second.earlier.push(first);
    Ok(second)
}

/// What the provisioning produced, for each boot's report.
struct Provisioned {
    listing: String,
    secrets: Vec<String>,
    entry: String,
    provision_seconds: f64,
    marker: String,
    dir: PathBuf,
}

/// One power-on of the provisioned client, up to the marker unit's last line or a failure.
fn boot_round(
    ns: &Netns,
    spec: &Spec,
    opts: &DebianOptions,
    name: &str,
    done: &Provisioned,
    server: Option<&PxerootTarget>,
) -> Result<DebianReport> {
    let dir = &done.dir;
    let qemu = Qemu::spawn(ns, name, spec)?;
    let powered_on = qemu.started_at();
    let waited = qemu.wait_for("PXRT-DONE", DEBIAN_FAILURES, opts.timeout);
    let console = qemu.lines();
    drop(qemu);
    // The run folder goes with the namespace: keep the logs of the last run of this kind.
    let keep = lab_dir()
        .join("debian-last")
        .join(format!("{:?}-{:?}-{:?}", opts.layout, opts.flavour, opts.start).to_lowercase());
    std::fs::create_dir_all(&keep)?;
    let console_log = format!("{name}.console.log");
    for file in [
        console_log.as_str(),
        "provision.log",
        "refresh.log",
        "pxeroot-target.log",
        "dnsmasq.log",
    ] {
        let _ = std::fs::copy(dir.join(file), keep.join(file));
    }
    let find = |prefix: &str| {
        console.iter().find_map(|l| {
            l.text
                .find(prefix)
                .map(|i| (l.at, l.text[i + prefix.len()..].trim().to_string()))
        })
    };
    let multi = find("PXRT-MULTIUSER ");
    let (marker_seen, uptime_multi_user) = match &multi {
        Some((_, rest)) => {
            let mut it = rest.split_whitespace();
            (
                it.next().map(str::to_string),
                it.next().and_then(|u| u.parse().ok()),
            )
        }
        None => (None, None),
    };
    let mounted = find("pxeroot: root file system mounted at ");
    let uptime_root_mounted = mounted.as_ref().and_then(|(_, rest)| {
        rest.split_once(" s")
            .and_then(|(t, _)| t.trim().parse::<f64>().ok())
    });
    let kernel_started = match (&mounted, uptime_root_mounted) {
        (Some((at, _)), Some(up)) => Some(at.as_secs_f64() - up),
        _ => None,
    };
    let failure = match &waited {
        Ok(_) => None,
        Err(e) => Some(
            console
                .iter()
                .find(|l| DEBIAN_FAILURES.iter().any(|f| l.text.contains(f)))
                .map(|l| l.text.clone())
                .unwrap_or_else(|| format!("{e:#}").lines().next().unwrap_or("").to_string()),
        ),
    };
    let server_log = server.map(PxerootTarget::log_text).unwrap_or_default();
    let mut pxe_events = Vec::new();
    if opts.start == Start::Pxe {
        for (label, needles) in [
            ("DHCP bound (firmware)", ["DHCPACK", GUEST_MAC]),
            ("kernel fetched", ["sent", "pxeroot/client/vmlinuz"]),
            ("initrd fetched", ["sent", "pxeroot/client/initrd.img"]),
        ] {
            if let Some(t) = super::pxe::logged(&server_log, powered_on, &needles) {
                pxe_events.push((label.to_string(), t));
            }
        }
    }
    let run_files = console
        .iter()
        .filter_map(|l| {
            let i = l.text.find("PXRT-RUNFILE ")?;
            let mut it = l.text[i + "PXRT-RUNFILE ".len()..].split_whitespace();
            Some(RunFile {
                mode: u32::from_str_radix(it.next()?, 8).ok()?,
                owner: it.next()?.to_string(),
                path: it.next()?.to_string(),
            })
        })
        .collect();
    Ok(DebianReport {
        marker_expected: done.marker.clone(),
        marker_seen,
        to_multi_user: multi.as_ref().map(|(at, _)| at.as_secs_f64()),
        uptime_multi_user,
        uptime_root_mounted,
        kernel_started,
        root_source: find("PXRT-ROOT ").map(|(_, s)| s),
        swaps: console
            .iter()
            .filter_map(|l| {
                let i = l.text.find("PXRT-SWAP ")?;
                Some(l.text[i + "PXRT-SWAP ".len()..].trim().to_string())
            })
            .collect(),
        cmdline: find("PXRT-CMDLINE ").map(|(_, s)| s),
        run_files,
        analyze: find("PXRT-ANALYZE ").map(|(_, s)| s),
        initramfs_listing: done.listing.lines().map(str::to_string).collect(),
        secrets: done.secrets.clone(),
        client_entry: done.entry.clone(),
        failure,
        console,
        server_log,
        pxe_events,
        run_dir: dir.clone(),
        provision_seconds: done.provision_seconds,
        earlier: Vec::new(),
    })
}
