//! `tools/bench pxe`: the whole network boot, power-on to the mounted iSCSI root, served by
//! pxeroot-target alone against the stack it replaces (dnsmasq for DHCP and TFTP, tgtd for
//! iSCSI), side by side in one run. Every guest is the same: QEMU (TCG) with the iPXE ROM, Debian's
//! pxelinux.0 and ldlinux.c32, the lab kernel and the agent initramfs, the same disk image.
//!
//! The classic stack runs twice: as its guides set it up, and tuned with iPXE's option 175.176 = 1
//! (no ProxyDHCP wait), which pxeroot-target sends by default. Rounds alternate the stacks so that
//! drift on the machine hits all of them alike; the figure of each is the median. A boot that does
//! not read the disk's marker is a failed boot, not a sample.

use std::fmt::Write as _;

use anyhow::{bail, Result};

use super::{median, verdict};
use crate::scenario::{pxe_chain, Auth, Loader, PxeOptions, PxeReport, Stack};
use crate::Lab;

/// What to run.
#[derive(Debug, Clone)]
pub struct PxeBenchOptions {
    /// Boots of each stack.
    pub boots: usize,
}

impl Default for PxeBenchOptions {
    fn default() -> PxeBenchOptions {
        PxeBenchOptions { boots: 3 }
    }
}

/// The chains measured, in table order.
pub const CHAINS: &[(Stack, Loader)] = &[
    (Stack::Pxeroot, Loader::Pxelinux),
    (Stack::Pxeroot, Loader::IpxeScript),
    (Stack::DnsmasqTgtd, Loader::Pxelinux),
    (Stack::DnsmasqTgtdTuned, Loader::Pxelinux),
];

/// The samples of one chain (host seconds since power-on).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Power-on to the kernel's start.
    pub kernel: Vec<f64>,
    /// Power-on to the root mounted and the marker read.
    pub root: Vec<f64>,
}

/// The whole result.
#[derive(Debug, Clone)]
pub struct PxeBenchReport {
    /// One entry per [`CHAINS`] item.
    pub chains: Vec<(Stack, Loader, Samples)>,
    /// One timeline of each chain (the last boot), for the report.
    pub timelines: Vec<String>,
}

impl PxeBenchReport {
    fn median_root(&self, stack: Stack, loader: Loader) -> f64 {
        self.chains
            .iter()
            .find(|(s, l, _)| *s == stack && *l == loader)
            .map_or(f64::NAN, |(_, _, samples)| median(&samples.root))
    }

    /// Goal: the pxelinux chain from pxeroot-target is not slower than the same chain from
    /// dnsmasq + tgtd, as set up classically and as tuned.
    pub fn goal_met(&self) -> bool {
        let ours = self.median_root(Stack::Pxeroot, Loader::Pxelinux);
        [Stack::DnsmasqTgtd, Stack::DnsmasqTgtdTuned]
            .iter()
            .all(|s| ours <= self.median_root(*s, Loader::Pxelinux))
    }

    /// The table.
    pub fn markdown(&self) -> String {
        let ours = self.median_root(Stack::Pxeroot, Loader::Pxelinux);
        let mut s = String::from(
            "Power-on to the iSCSI root mounted (QEMU TCG, iPXE ROM, same kernel, agent \
             initramfs and disk), median of the boots, seconds:\n\n\
             | served by | chain | kernel started | root mounted | vs pxeroot-target (pxelinux) |\n\
             |---|---|---:|---:|---:|\n",
        );
        for (stack, loader, samples) in &self.chains {
            let root = median(&samples.root);
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} | {:.2} | {:.2}x |",
                stack.name(),
                match loader {
                    Loader::Pxelinux => "pxelinux",
                    Loader::IpxeScript => "iPXE script",
                },
                median(&samples.kernel),
                root,
                root / ours
            );
        }
        let _ = writeln!(
            s,
            "\nGoal: pxeroot-target's pxelinux chain not slower than dnsmasq + tgtd's: {}\n",
            verdict(self.goal_met())
        );
        for t in &self.timelines {
            let _ = writeln!(s, "```\n{}```", t);
        }
        s
    }
}

/// Run the bench.
///
/// # Errors
/// When the lab is missing, or a boot fails (with its console).
pub fn pxe(options: &PxeBenchOptions) -> Result<PxeBenchReport> {
    let lab = Lab::require()?;
    let mut chains: Vec<(Stack, Loader, Samples)> = CHAINS
        .iter()
        .map(|(s, l)| (*s, *l, Samples::default()))
        .collect();
    let mut timelines = vec![String::new(); chains.len()];
    for round in 0..options.boots {
        for (i, (stack, loader, samples)) in chains.iter_mut().enumerate() {
            let opts = PxeOptions {
                loader: *loader,
                stack: *stack,
                auth: Auth::Chap,
                ..Default::default()
            };
            let pxe = pxe_chain(&lab, &opts)?;
            let (kernel, root) = sample(&pxe)?;
            eprintln!(
                "bench pxe: round {}/{}: {}: kernel {kernel:.2} s, root {root:.2} s",
                round + 1,
                options.boots,
                opts.title()
            );
            samples.kernel.push(kernel);
            samples.root.push(root);
            timelines[i] = pxe.timeline();
        }
    }
    Ok(PxeBenchReport { chains, timelines })
}

/// The two figures of a boot that read the marker.
fn sample(pxe: &PxeReport) -> Result<(f64, f64)> {
    if let Err(e) = pxe.report.booted() {
        bail!(
            "{e}\nconsole from the agent's start:\n{}",
            pxe.report.agent_console()
        );
    }
    match (pxe.event("kernel started"), pxe.seconds_to_root()) {
        (Some(k), Some(r)) => Ok((k, r)),
        _ => bail!("incomplete timeline:\n{}", pxe.timeline()),
    }
}
