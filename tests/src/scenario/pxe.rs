//! The full network boot: QEMU powers on with no disk and no kernel, its NIC's iPXE option ROM
//! asks for an address, fetches a boot program and its configuration over TFTP, then the kernel
//! and an initramfs holding pxeroot-initiator, which logs in to the client's iSCSI disk; the
//! guest mounts it and prints the marker.
//!
//! Served either by pxeroot-target alone (DHCP, TFTP with the generated per-client files, iSCSI,
//! all from one `[[client]]` entry) or by the stack it replaces: dnsmasq for DHCP and TFTP with a
//! hand-written `pxelinux.cfg/01-<mac>`, and tgtd.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::{
    agent_initrd, boot_slot, Auth, Report, Rig, Server, AGENT_STEPS, GUEST_IP, GUEST_MAC,
    INITIATOR_IQN, SERVER_IP, TARGET_IQN,
};
use crate::peers::{self, Chap, DhcpConfig};
use crate::qemu::{Boot, Qemu, Spec};
use crate::Lab;

/// Debian's pxelinux (package pxelinux) and its core module (syslinux-common).
pub const PXELINUX: &str = "/usr/lib/PXELINUX/pxelinux.0";
/// pxelinux.0 loads this from the same TFTP folder.
pub const LDLINUX: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
/// The kernel parameters of every PXE guest before the iSCSI ones.
pub const BASE_APPEND: &str = "console=ttyS0 quiet panic=-1";
/// The target name pxeroot-target gives the lab's `[[client]] name = "client"`.
pub const CLIENT_TARGET: &str = "iqn.2026-11.org.pxeroot:client";

/// The boot program after the firmware.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Loader {
    /// pxelinux.0 + ldlinux.c32 + pxelinux.cfg/01-<mac>.
    #[default]
    Pxelinux,
    /// The iPXE ROM runs the generated iPXE script (kernel and initrd over TFTP).
    IpxeScript,
}

/// Who serves the boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stack {
    /// pxeroot-target alone.
    #[default]
    Pxeroot,
    /// dnsmasq (DHCP + TFTP) and tgtd, set up the classic way.
    DnsmasqTgtd,
    /// The same, tuned as well as dnsmasq allows: iPXE's option 175.176 = 1 so that iPXE does
    /// not wait for a ProxyDHCP offer, and dnsmasq's own IPv6 router advertisements (a ULA
    /// prefix on the link, `ra-only`) so that it does not wait for IPv6 either; pxeroot-target
    /// does both by default.
    DnsmasqTgtdTuned,
}

impl Stack {
    /// Its name in titles and tables.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Pxeroot => "pxeroot-target",
            Stack::DnsmasqTgtd => "dnsmasq + tgtd",
            Stack::DnsmasqTgtdTuned => "dnsmasq + tgtd, tuned (175.176=1, RA)",
        }
    }
}

/// How to run a PXE boot.
#[derive(Debug, Clone)]
pub struct PxeOptions {
    /// Boot program.
    pub loader: Loader,
    /// Servers.
    pub stack: Stack,
    /// CHAP settings (secrets reach the agent by DHCP option 175 with pxeroot-target, on the
    /// command line with the classic stack, as its guides do).
    pub auth: Auth,
    /// QEMU is killed after this.
    pub timeout: Duration,
}

impl Default for PxeOptions {
    fn default() -> Self {
        PxeOptions {
            loader: Loader::Pxelinux,
            stack: Stack::Pxeroot,
            auth: Auth::Chap,
            timeout: Duration::from_secs(240),
        }
    }
}

impl PxeOptions {
    /// A title for reports.
    pub fn title(&self) -> String {
        let loader = match self.loader {
            Loader::Pxelinux => "pxelinux",
            Loader::IpxeScript => "iPXE script",
        };
        format!(
            "PXE boot via {loader}, served by {}, {:?}",
            self.stack.name(),
            self.auth
        )
    }
}

/// A PXE boot's outcome: the guest's report and the host-side moments of the chain.
#[derive(Debug)]
pub struct PxeReport {
    /// What the guest printed.
    pub report: Report,
    /// Named moments in host seconds since power-on, in time order.
    pub events: Vec<(String, f64)>,
    /// The run folder (logs).
    pub run_dir: PathBuf,
}

impl PxeReport {
    /// The moment named `label`.
    pub fn event(&self, label: &str) -> Option<f64> {
        self.events
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, t)| *t)
    }

    /// Seconds from power-on until the marker was read from the mounted root.
    pub fn seconds_to_root(&self) -> Option<f64> {
        self.event("root mounted, marker read")
    }

    /// The timeline as printed by tests and the demo.
    pub fn timeline(&self) -> String {
        let mut s = format!("PXE boot timeline: {}\n", self.report.timeline.title);
        s.push_str(&format!("  {:>8}  {:>8}  step\n", "s", "delta"));
        let mut prev = 0.0;
        for (label, t) in &self.events {
            s.push_str(&format!("  {t:>8.2}  {:>+8.2}  {label}\n", t - prev));
            prev = *t;
        }
        s
    }
}

/// The TFTP folder: pxelinux's files, the lab kernel and the agent initramfs.
fn tftp_root(lab: &Lab, dir: &Path, initrd: &Path) -> Result<PathBuf> {
    let root = dir.join("tftp");
    std::fs::create_dir_all(root.join("pxelinux.cfg"))?;
    for (from, to) in [
        (Path::new(PXELINUX), "pxelinux.0"),
        (Path::new(LDLINUX), "ldlinux.c32"),
        (lab.kernel.vmlinuz.as_path(), "vmlinuz"),
        (initrd, "initrd.img"),
    ] {
        std::fs::copy(from, root.join(to))
            .with_context(|| format!("cannot copy {} to the TFTP folder", from.display()))?;
    }
    Ok(root)
}

/// The pxeroot-target configuration of the lab: one `[[client]]` and nothing else.
pub fn pxeroot_netboot_config(
    tftp: &Path,
    disk: &Path,
    leases: &Path,
    auth: Auth,
    loader: Loader,
) -> String {
    let (chap, mutual) = auth.credentials();
    let mut s = format!(
        "[iscsi]\nlisten = [\"{SERVER_IP}:3260\"]\n\n\
         [server]\naddress = \"{SERVER_IP}\"\ninterface = \"tap0\"\n\n\
         [dhcp]\nsubnet = \"10.0.0.0/24\"\nrouter = \"{SERVER_IP}\"\nlease_file = \"{}\"\n\n\
         [tftp]\nroot = \"{}\"\n\n\
         [[client]]\nname = \"client\"\nmac = \"{GUEST_MAC}\"\nip = \"{GUEST_IP}\"\n\
         initiator = \"{INITIATOR_IQN}\"\ndisk = \"{}\"\nkernel = \"vmlinuz\"\n\
         initrd = \"initrd.img\"\nappend = \"{BASE_APPEND}\"\nloader = \"{}\"\n",
        leases.display(),
        tftp.display(),
        disk.display(),
        match loader {
            Loader::Pxelinux => "pxelinux",
            Loader::IpxeScript => "ipxe",
        }
    );
    s.push_str(&peers::chap_toml(chap.as_ref(), mutual.as_ref()));
    s
}

/// The classic stack's hand-written pxelinux file: the tutorial's append line, secrets and all.
fn classic_pxelinux_cfg(chap: Option<&Chap>, mutual: Option<&Chap>) -> String {
    let mut append = format!(
        "{BASE_APPEND} ip=dhcp iscsi_initiator={INITIATOR_IQN} iscsi_target_name={TARGET_IQN} \
         iscsi_target_ip={SERVER_IP} iscsi_target_port=3260 pxeroot.lun={}",
        Server::Tgtd.lun()
    );
    if let Some(c) = chap {
        append.push_str(&format!(
            " iscsi_username={} iscsi_password={}",
            c.user, c.secret
        ));
    }
    if let Some(m) = mutual {
        append.push_str(&format!(
            " iscsi_in_username={} iscsi_in_password={}",
            m.user, m.secret
        ));
    }
    format!(
        "DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.img\n  APPEND {append}\n  IPAPPEND 2\n"
    )
}

/// Seconds since `start` of a pxeroot-target log line's RFC 3339 UTC timestamp
/// (`2026-11-25T01:02:03.456789Z ...`), when it has one.
pub fn log_line_seconds(line: &str, start: SystemTime) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let at = (days * 86_400 + h * 3600 + min * 60) as f64 + sec;
    let start = start.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    Some(at - start)
}

/// The first pxeroot-target log line (after power-on) containing every needle, in seconds.
pub(super) fn logged(log: &str, start: SystemTime, needles: &[&str]) -> Option<f64> {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| log_line_seconds(l, start))
        .find(|t| *t >= 0.0)
}

/// Run one full PXE boot.
///
/// # Errors
/// When the lab fails (namespace, servers, image, QEMU) or the agent is missing; a guest that
/// does not boot is reported, not an error.
pub fn pxe_chain(lab: &Lab, opts: &PxeOptions) -> Result<PxeReport> {
    let initrd = agent_initrd(lab)?;
    let _slot = boot_slot();
    let mut rig = Rig::new()?;
    let dir = rig.ns.run_dir().to_path_buf();
    let tftp = tftp_root(lab, &dir, &initrd)?;
    let (chap, mutual) = opts.auth.credentials();
    match opts.stack {
        Stack::Pxeroot => {
            let config = pxeroot_netboot_config(
                &tftp,
                &rig.image,
                &dir.join("leases"),
                opts.auth,
                opts.loader,
            );
            rig.serve_config(&config)?;
        }
        Stack::DnsmasqTgtd | Stack::DnsmasqTgtdTuned => {
            std::fs::write(
                tftp.join("pxelinux.cfg")
                    .join(format!("01-{}", GUEST_MAC.replace(':', "-"))),
                classic_pxelinux_cfg(chap.as_ref(), mutual.as_ref()),
            )?;
            rig.serve(Server::Tgtd, chap.as_ref(), mutual.as_ref())?;
            let mut config = DhcpConfig::lab(&[(GUEST_MAC, GUEST_IP)]);
            config.extra.extend([
                "--enable-tftp".to_string(),
                format!("--tftp-root={}", tftp.display()),
                "--dhcp-boot=pxelinux.0".to_string(),
                format!("--dhcp-option=3,{SERVER_IP}"),
            ]);
            if opts.stack == Stack::DnsmasqTgtdTuned {
                config
                    .extra
                    .push("--dhcp-option=encap:175,176,1b".to_string());
            }
            rig.dhcp_with(config)?;
        }
    }
    let mut spec = Spec::new(Boot::Pxe);
    spec.timeout = opts.timeout;
    let qemu = Qemu::spawn(&rig.ns, "pxe", &spec)?;
    let start = qemu.started_at();
    let hung = qemu.wait_exit(opts.timeout).is_err();
    let mut report = rig.report(qemu.lines(), &opts.title(), AGENT_STEPS);
    if hung && report.failure.is_none() {
        report.failure = Some(format!(
            "the guest did not power off within {} s (killed)",
            opts.timeout.as_secs()
        ));
    }
    let mut events = vec![("power-on".to_string(), 0.0)];
    let log = rig.server_log();
    let mac = GUEST_MAC;
    let config_file = match opts.loader {
        Loader::Pxelinux => "pxelinux.cfg/01-",
        Loader::IpxeScript => ".ipxe",
    };
    for (label, needles) in [
        ("DHCP bound (firmware)", vec!["DHCPACK", mac]),
        ("boot configuration fetched", vec!["sent", config_file]),
        ("kernel fetched", vec!["sent", "vmlinuz"]),
        ("initramfs fetched", vec!["sent", "initrd.img"]),
    ] {
        if let Some(t) = logged(&log, start, &needles) {
            events.push((label.to_string(), t));
        }
    }
    let step = |label: &str| report.timeline.step(label);
    if let Some(first) = step("initramfs-start") {
        // The guest's uptime counts from the kernel's start.
        events.push((
            "kernel started".to_string(),
            first.host.as_secs_f64() - first.uptime,
        ));
    }
    for (label, name) in [
        ("agent started", "agent-start"),
        ("root device ready", "root-device-ready"),
        ("root mounted, marker read", "marker-read"),
    ] {
        if let Some(s) = step(name) {
            events.push((label.to_string(), s.host.as_secs_f64()));
        }
    }
    events.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(PxeReport {
        report,
        events,
        run_dir: dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_timestamps_are_placed_relative_to_power_on() {
        let start = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        // 1_795_000_000 is 2026-11-18T11:06:40Z.
        let line = "2026-11-18T11:06:42.500000Z  INFO pxeroot_target::dhcp: DHCPACK";
        let t = log_line_seconds(line, start).unwrap();
        assert!((t - 2.5).abs() < 1e-6, "{t}");
        assert_eq!(log_line_seconds("no stamp here", start), None);
    }
}
