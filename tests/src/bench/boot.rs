//! `tools/bench boot`: how long the guest takes from the start of its iSCSI boot path to the
//! root block device, with pxeroot-initiator against the path initramfs-tools takes (busybox
//! udhcpc, then open-iscsi's iscsistart, then a wait for /dev/sda), and what each path weighs.
//!
//! One lab run: one namespace, one pxeroot-target (CHAP) and one dnsmasq (the guest's
//! reservation) serve every boot. The boots alternate between the two paths, one guest at a time.
//! Both start from the same point of the same kind of initramfs: the NIC driver loaded by
//! `/init`, iscsi_tcp and sd_mod not loaded yet (the agent loads them itself; the reference path
//! runs `modprobe iscsi_tcp` and `modprobe sd_mod` first, as initramfs-tools does). Times come
//! from the guest's own /proc/uptime stamps:
//!
//! - agent: `agent-start` to `agent-done`: the agent exits 0 only once the root LUN's block
//!   device exists (the script then checks the device it reported, outside the timed window);
//! - reference: `chain-start` to `root-device-ready` (/dev/sda exists).
//!
//! Every boot then mounts the device and prints the disk's marker; a boot that does not is a
//! failed boot, not a sample. Sizes: the agent binary (goal: at most 2 MiB) against iscsistart
//! plus the shared libraries ldd lists for it (busybox, which both paths use, is left out).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{median, verdict};
use crate::initramfs::{shared_libraries, Builder};
use crate::paths::lab_dir;
use crate::peers;
use crate::scenario::{
    self, agent_cmdline, agent_initrd, AgentOptions, Auth, Params, Report, Rig, Server,
    AGENT_MODULES, INITIATOR_IQN, NIC_MODULES, SERVER_IP, TARGET_IQN,
};
use crate::Lab;

/// Goal: the reference path's median over the agent's.
pub const SPEEDUP_GOAL: f64 = 4.0;

/// Goal: the agent binary's size (issue 4).
pub const SIZE_GOAL_BYTES: u64 = 2 * 1024 * 1024;

/// Where the reference guest ships iscsistart from.
pub const ISCSISTART: &str = "/usr/sbin/iscsistart";

/// The steps of a successful reference boot, in order.
pub const REFERENCE_STEPS: &[&str] = &[
    "initramfs-start",
    "modules-loaded",
    "chain-start",
    "link-up",
    "network-configured",
    "session-operational",
    "root-device-ready",
    "root-mounted",
    "marker-read",
];

/// What to run.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// Boots of each path.
    pub boots: usize,
}

impl Default for BootOptions {
    fn default() -> BootOptions {
        BootOptions { boots: 5 }
    }
}

/// A file and its size in bytes.
#[derive(Debug, Clone)]
pub struct Sized {
    /// The file.
    pub path: PathBuf,
    /// Its size (symlinks followed).
    pub bytes: u64,
}

/// The whole result.
#[derive(Debug, Clone, Default)]
pub struct BootReport {
    /// Boots per path asked for.
    pub boots: usize,
    /// Agent start to root block device, seconds, one per successful boot.
    pub agent: Vec<f64>,
    /// Why the agent half did not complete, when it did not (first failure).
    pub agent_failure: Option<String>,
    /// Reference path start to /dev/sda, seconds, one per boot.
    pub reference: Vec<f64>,
    /// Per-phase seconds of the reference path (label, one value per boot).
    pub reference_phases: Vec<(String, Vec<f64>)>,
    /// The agent binary.
    pub agent_binary: Option<Sized>,
    /// iscsistart and its libraries.
    pub reference_files: Vec<Sized>,
    /// The first timeline of each path.
    pub timelines: Vec<String>,
    /// What the agent printed in its first successful boot (its own per-phase times).
    pub agent_messages: Vec<String>,
    /// The agent's boot parameters (secrets shown: lab-only credentials).
    pub agent_cmdline: String,
    /// /proc/loadavg at the start and at the end.
    pub load: (String, String),
}

impl BootReport {
    /// Median reference time over median agent time; 0 without agent samples.
    pub fn speedup(&self) -> f64 {
        let a = median(&self.agent);
        if a > 0.0 {
            median(&self.reference) / a
        } else {
            0.0
        }
    }

    /// Whether the agent binary is within [`SIZE_GOAL_BYTES`].
    pub fn size_met(&self) -> bool {
        self.agent_binary
            .as_ref()
            .is_some_and(|f| f.bytes <= SIZE_GOAL_BYTES)
    }

    /// Whether every agent boot worked and the speed goal is met.
    pub fn speed_met(&self) -> bool {
        self.agent_failure.is_none()
            && self.agent.len() == self.boots
            && self.speedup() >= SPEEDUP_GOAL
    }

    /// Whether both goals are met.
    pub fn goal_met(&self) -> bool {
        self.speed_met() && self.size_met()
    }

    /// Total bytes of the reference path's files.
    pub fn reference_bytes(&self) -> u64 {
        self.reference_files.iter().map(|f| f.bytes).sum()
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} boots of each path, alternating, in one lab namespace (pxeroot-target with CHAP, \
             dnsmasq); QEMU TCG, Debian cloud kernel; guest /proc/uptime.\n",
            self.boots
        );
        let _ = writeln!(
            s,
            "| | pxeroot-initiator | udhcpc + iscsistart + wait for /dev/sda | reference/agent | goal | |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---|---|");
        let agent = if self.agent.is_empty() {
            "failed".to_string()
        } else {
            format!("{:.2}", median(&self.agent))
        };
        let speedup = self.speedup();
        let _ = writeln!(
            s,
            "| start to root block device, median (s) | {agent} | {:.2} | {:.2}x | ≥ {SPEEDUP_GOAL}x | {} |",
            median(&self.reference),
            speedup,
            verdict(self.speed_met())
        );
        let agent_size = self
            .agent_binary
            .as_ref()
            .map(|f| format!("{:.2}", mib(f.bytes)))
            .unwrap_or_else(|| "missing".into());
        let _ = writeln!(
            s,
            "| size (MiB) | {agent_size} (static) | {:.2} (iscsistart + {} libraries) | | agent ≤ {:.0} MiB | {} |",
            mib(self.reference_bytes()),
            self.reference_files.len().saturating_sub(1),
            mib(SIZE_GOAL_BYTES),
            verdict(self.size_met())
        );
        let _ = writeln!(s, "\nEvery boot (s):\n");
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(s, "- pxeroot-initiator: {}", list(&self.agent));
        let _ = writeln!(s, "- udhcpc + iscsistart: {}", list(&self.reference));
        if let Some(f) = &self.agent_failure {
            let _ = writeln!(s, "\nThe agent half failed:\n\n```\n{}\n```", f.trim_end());
        }
        let _ = writeln!(s, "\nReference path, median per phase (s):\n");
        for (label, values) in &self.reference_phases {
            let _ = writeln!(s, "- {label}: {:.2}", median(values));
        }
        let _ = writeln!(s, "\nFiles:\n");
        for f in self.agent_binary.iter().chain(&self.reference_files) {
            let _ = writeln!(s, "- {} {} bytes", f.path.display(), f.bytes);
        }
        let _ = writeln!(s, "\nAgent parameters: `{}`", self.agent_cmdline);
        for t in &self.timelines {
            let _ = writeln!(s, "\n```\n{}```", t);
        }
        if !self.agent_messages.is_empty() {
            let _ = writeln!(
                s,
                "\nThe agent's own messages in its first boot:\n\n```\n{}\n```",
                self.agent_messages.join("\n")
            );
        }
        let _ = writeln!(
            s,
            "\nLoad average (/proc/loadavg) at the start: {}; at the end: {}.",
            self.load.0, self.load.1
        );
        s
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn sized(path: &Path) -> Result<Sized> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot look at {}", path.display()))?;
    Ok(Sized {
        path: path.to_path_buf(),
        bytes: meta.len(),
    })
}

/// The reference path's `/init` steps: modprobe, link, udhcpc, iscsistart with CHAP, wait for
/// /dev/sda, mount, marker.
pub fn reference_script() -> String {
    let chap = scenario::client_chap();
    [
        "stamp chain-start\n\
         modprobe iscsi_tcp || fail 'modprobe iscsi_tcp'\n\
         modprobe sd_mod || fail 'modprobe sd_mod'\n",
        peers::guest_link_up(),
        peers::guest_udhcpc(),
        &peers::guest_iscsistart(INITIATOR_IQN, TARGET_IQN, SERVER_IP, Some(&chap), None, &[]),
        &peers::guest_mount_and_print("marker"),
    ]
    .concat()
}

/// The seconds between two steps of a boot's timeline.
fn span(report: &Report, from: &str, to: &str) -> Option<f64> {
    Some(report.timeline.step(to)?.uptime - report.timeline.step(from)?.uptime)
}

/// Run the bench (see the module docs).
///
/// # Errors
/// When the lab fails or a reference boot fails; a failing agent is reported, not an error.
pub fn boot(options: &BootOptions) -> Result<BootReport> {
    let lab = Lab::require()?;
    let mut out = BootReport {
        boots: options.boots,
        load: (super::loadavg(), String::new()),
        ..Default::default()
    };
    out.reference_files.push(sized(Path::new(ISCSISTART))?);
    for lib in shared_libraries(Path::new(ISCSISTART))? {
        out.reference_files.push(sized(&lib)?);
    }
    let agent_opts = AgentOptions {
        server: Server::Pxeroot,
        auth: Auth::Chap,
        params: Params::Debian,
        ..Default::default()
    };
    out.agent_cmdline = agent_cmdline(&agent_opts);
    let agent_initrd = match agent_initrd(&lab) {
        Ok(initrd) => {
            out.agent_binary = Some(sized(&scenario::agent_binary()?)?);
            Some(initrd)
        }
        Err(e) => {
            out.agent_failure = Some(format!("{e:#}"));
            None
        }
    };
    let reference_initrd = Builder::new(&lab.kernel)
        .modules(NIC_MODULES)
        .module_tree(AGENT_MODULES)
        .binary(ISCSISTART)
        .file("/etc/udhcpc.script", peers::UDHCPC_SCRIPT, 0o755)
        .script(&reference_script())
        .build_cached(&lab_dir().join("initrd-cache"))?;

    let mut rig = Rig::new()?;
    let (chap, _) = agent_opts.auth.credentials();
    rig.serve(Server::Pxeroot, chap.as_ref(), None)?;
    rig.dhcp(&[])?;
    let console = "console=ttyS0 quiet panic=-1";
    let phases = [
        ("modprobe + link up", "chain-start", "link-up"),
        ("udhcpc", "link-up", "network-configured"),
        ("iscsistart", "network-configured", "session-operational"),
        (
            "wait for /dev/sda",
            "session-operational",
            "root-device-ready",
        ),
    ];
    out.reference_phases = phases
        .iter()
        .map(|(l, _, _)| (l.to_string(), Vec::new()))
        .collect();
    for i in 0..options.boots {
        // Alternate which path goes first, so that a drift in machine load hits both.
        let agent_first = i % 2 == 0;
        for agent in [agent_first, !agent_first] {
            if agent {
                let Some(initrd) = &agent_initrd else {
                    continue;
                };
                if out.agent_failure.is_some() {
                    continue;
                }
                let append = format!("{console} {}", out.agent_cmdline);
                let report = one_boot(&lab, &rig, &format!("agent-{i}"), initrd, &append, true)?;
                match (report.booted(), span(&report, "agent-start", "agent-done")) {
                    (Ok(()), Some(t)) => {
                        log(&format!("agent boot {}: {t:.2} s", i + 1));
                        out.agent.push(t);
                        if out.agent.len() == 1 {
                            out.timelines.push(report.timeline.to_string());
                            out.agent_messages = report.agent_errors.clone();
                        }
                    }
                    (result, _) => {
                        let why = result.err().unwrap_or_else(|| "no timing stamps".into());
                        out.agent_failure = Some(format!(
                            "boot {}: {why}\nagent exit {:?}; console from the agent's start:\n{}",
                            i + 1,
                            report.agent_exit,
                            report.agent_console()
                        ));
                    }
                }
            } else {
                let name = format!("iscsistart-{i}");
                let report = one_boot(&lab, &rig, &name, &reference_initrd, console, false)?;
                if let Err(e) = report.booted() {
                    bail!("reference boot {} failed: {e}", i + 1);
                }
                let t = span(&report, "chain-start", "root-device-ready")
                    .context("reference boot without timing stamps")?;
                log(&format!("udhcpc + iscsistart boot {}: {t:.2} s", i + 1));
                out.reference.push(t);
                for ((_, from, to), (_, values)) in phases.iter().zip(&mut out.reference_phases) {
                    values.extend(span(&report, from, to));
                }
                if out.reference.len() == 1 {
                    out.timelines.push(report.timeline.to_string());
                }
            }
        }
    }
    out.load.1 = super::loadavg();
    Ok(out)
}

/// One guest boot on the rig; its report.
fn one_boot(
    lab: &Lab,
    rig: &Rig,
    name: &str,
    initrd: &Path,
    append: &str,
    agent: bool,
) -> Result<Report> {
    let _slot = scenario::boot_slot();
    let limit = Duration::from_secs(150);
    let qemu = rig.spawn(lab, name, initrd, append, limit)?;
    qemu.wait_exit(limit)
        .with_context(|| format!("boot {name}"))?;
    let (title, steps) = if agent {
        (
            "pxeroot-initiator -> pxeroot-target (CHAP), Debian parameters",
            scenario::AGENT_STEPS,
        )
    } else {
        (
            "modprobe + udhcpc + iscsistart -> pxeroot-target (CHAP)",
            REFERENCE_STEPS,
        )
    };
    Ok(rig.report(qemu.lines(), title, steps))
}

fn log(msg: &str) {
    eprintln!("bench boot: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speedup_and_goal_need_every_agent_boot() {
        let mut r = BootReport {
            boots: 3,
            agent: vec![0.5, 0.4, 0.6],
            reference: vec![2.0, 2.2, 1.9],
            agent_binary: Some(Sized {
                path: "agent".into(),
                bytes: SIZE_GOAL_BYTES,
            }),
            ..Default::default()
        };
        assert!((r.speedup() - 4.0).abs() < 1e-9);
        assert!(r.goal_met());
        r.agent_binary = Some(Sized {
            path: "agent".into(),
            bytes: SIZE_GOAL_BYTES + 1,
        });
        assert!(
            r.speed_met() && !r.goal_met(),
            "over 2 MiB misses the size goal"
        );
        r.agent_binary = None;
        assert!(!r.goal_met());
        r.agent.pop();
        assert!(!r.goal_met(), "a missing agent boot fails the goal");
        r.agent = vec![1.0, 1.0, 1.0];
        assert!(!r.goal_met());
        r.agent_failure = Some("exit 70".into());
        r.agent = vec![];
        assert_eq!(r.speedup(), 0.0);
        assert!(r.markdown().contains("| failed |"), "{}", r.markdown());
    }
}
