//! Side-by-side benchmarks of pxeroot-target against tgtd (`tools/bench target`); the boot
//! path benchmark (`tools/bench boot`) is in [`boot`], the TFTP one (`tools/bench tftp`) in [`tftp`].
//!
//! Both targets run in one lab namespace on copies of the same pre-written image (tgtd serves
//! it as LUN 1 on 127.0.0.1:3260, pxeroot-target as LUN 0 on 127.0.0.1:3261); the clients run
//! in the same namespace and talk over its loopback only. Each run measures, for each target:
//!
//! - `iscsi-perf` 128 KiB sequential read, 32 in flight;
//! - `iscsi-perf` 4 KiB random read, 32 in flight;
//! - `qemu-img bench` 4 KiB sequential writes, depth 32;
//! - `qemu-img bench` 128 KiB sequential writes, depth 16;
//!
//! plus `iperf3` over the same loopback as the ceiling of any loopback iSCSI figure. The
//! report gives the median of the runs for each side, the ratio pxeroot/tgtd, and sequential
//! read as a fraction of the ceiling. The order of the two targets alternates between runs.
//!
//! Then [`Options::sessions`] concurrent sessions (one `iscsi-perf` 128 KiB sequential reader
//! each, then one `qemu-img bench` 128 KiB writer each) load each target, and the report gives
//! the peak RSS (VmHWM in /proc/PID/status) of both servers.
//!
//! Every client runs with a hard time limit and is killed when it overruns; the namespace (and
//! every server in it) is removed when the bench returns, on success or error.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns::{self, Netns};

pub mod boot;
pub mod pxe;
pub mod tftp;
use crate::peers::{pxeroot_config, PxerootTarget, Tgtd};
use crate::process::{describe, have_tool};

/// Target name tgtd serves (LUN 1).
pub const TGTD_IQN: &str = "iqn.2026-11.org.pxeroot.bench:tgtd";
/// Target name pxeroot-target serves (LUN 0).
pub const PXEROOT_IQN: &str = "iqn.2026-11.org.pxeroot.bench:pxeroot";
/// Loopback of the bench namespace: every server and client talks here.
const HOST: &str = "127.0.0.1";
/// tgtd's portal port (its default; tgtd listens on every address of the namespace).
const TGTD_PORT: u16 = 3260;
/// pxeroot-target's portal port.
const PXEROOT_PORT: u16 = 3261;
/// iperf3's port.
const IPERF_PORT: u16 = 5201;
/// Byte written by `qemu-img bench -w` (not zero, so nothing can take a zero shortcut).
const WRITE_PATTERN: &str = "165";
/// The RSS goal for pxeroot-target under [`Options::sessions`] sessions.
pub const RSS_GOAL_KIB: u64 = 64 * 1024;
/// pxeroot/tgtd goal for each of the four workloads.
pub const RATIO_GOAL: f64 = 1.2;
/// Sequential read as a fraction of the iperf3 ceiling.
pub const CEILING_GOAL: f64 = 0.8;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs of the side-by-side table (the report gives the median).
    pub runs: usize,
    /// Seconds each measurement lasts.
    pub seconds: u64,
    /// Size of each image in MiB.
    pub image_mib: u64,
    /// Concurrent sessions for the RSS phase (0 skips it).
    pub sessions: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runs: 3,
            seconds: 5,
            image_mib: 1024,
            sessions: 16,
        }
    }
}

/// One of the four measured workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// iscsi-perf, 128 KiB sequential read, 32 in flight.
    SeqRead128k,
    /// iscsi-perf, 4 KiB random read, 32 in flight.
    RandRead4k,
    /// qemu-img bench, 4 KiB writes, depth 32.
    Write4k,
    /// qemu-img bench, 128 KiB writes, depth 16.
    Write128k,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 4] = [
        Workload::SeqRead128k,
        Workload::RandRead4k,
        Workload::Write4k,
        Workload::Write128k,
    ];

    /// The table row's name.
    pub fn label(self) -> &'static str {
        match self {
            Workload::SeqRead128k => "iscsi-perf 128 KiB seq read, 32 in flight",
            Workload::RandRead4k => "iscsi-perf 4 KiB random read, 32 in flight",
            Workload::Write4k => "qemu-img bench 4 KiB write, depth 32",
            Workload::Write128k => "qemu-img bench 128 KiB write, depth 16",
        }
    }

    /// Bytes per request.
    pub fn size(self) -> u64 {
        match self {
            Workload::SeqRead128k | Workload::Write128k => 128 * 1024,
            Workload::RandRead4k | Workload::Write4k => 4096,
        }
    }

    /// Requests in flight.
    pub fn depth(self) -> u32 {
        match self {
            Workload::Write128k => 16,
            _ => 32,
        }
    }

    /// Whether the figure is throughput (MB/s) rather than IOPS.
    pub fn is_throughput(self) -> bool {
        self.size() >= 128 * 1024
    }

    /// The unit of [`Workload::figure`].
    pub fn unit(self) -> &'static str {
        if self.is_throughput() {
            "MB/s"
        } else {
            "IOPS"
        }
    }

    /// The reported figure for `iops` requests per second: MB/s (10^6 bytes) or IOPS.
    pub fn figure(self, iops: f64) -> f64 {
        if self.is_throughput() {
            iops * self.size() as f64 / 1e6
        } else {
            iops
        }
    }
}

/// A server under test.
#[derive(Debug, Clone)]
struct Endpoint {
    name: &'static str,
    portal: String,
    iqn: &'static str,
    lun: u32,
    pid: u32,
    block: u64,
}

impl Endpoint {
    fn url(&self) -> String {
        format!("iscsi://{}/{}/{}", self.portal, self.iqn, self.lun)
    }

    /// `qemu-img --image-opts` for this LUN with its own initiator name (so that concurrent
    /// clients never share an initiator name and ISID, which would reinstate sessions).
    fn image_opts(&self, initiator: &str) -> String {
        format!(
            "driver=iscsi,transport=tcp,portal={},target={},lun={},initiator-name={initiator}",
            self.portal, self.iqn, self.lun
        )
    }
}

/// Figures of one workload: per run, for each side (requests per second).
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// tgtd's IOPS, one per run.
    pub tgtd: Vec<f64>,
    /// pxeroot-target's IOPS, one per run.
    pub pxeroot: Vec<f64>,
}

/// Peak memory of both servers.
#[derive(Debug, Clone, Default)]
pub struct Rss {
    /// Concurrent sessions used.
    pub sessions: usize,
    /// VmHWM (KiB) of pxeroot-target after the side-by-side runs, before the session phase.
    pub pxeroot_before_kib: u64,
    /// VmHWM (KiB) of pxeroot-target after the concurrent readers (before the writers).
    pub pxeroot_after_reads_kib: u64,
    /// VmHWM (KiB) of pxeroot-target at the end.
    pub pxeroot_kib: u64,
    /// Threads of pxeroot-target at the end of the session phase.
    pub pxeroot_threads: u64,
    /// VmHWM (KiB) of tgtd at the end.
    pub tgtd_kib: u64,
    /// Aggregate read MB/s of the concurrent readers (tgtd, pxeroot).
    pub read_mbs: (f64, f64),
    /// Aggregate write MB/s of the concurrent writers (tgtd, pxeroot).
    pub write_mbs: (f64, f64),
}

/// The whole result.
#[derive(Debug, Clone)]
pub struct Report {
    /// The options used.
    pub options: Options,
    /// iperf3 loopback bytes per second, one per run.
    pub ceiling: Vec<f64>,
    /// One row per workload.
    pub rows: Vec<Row>,
    /// The session phase, when it ran.
    pub rss: Option<Rss>,
    /// Command lines used, one per kind of measurement (for the README and the closing note).
    pub commands: Vec<String>,
    /// /proc/loadavg at the start and at the end (other work on the machine skews figures).
    pub load: (String, String),
    /// pxeroot-target's VmHWM (KiB) after each step of the first run.
    pub hwm_steps: Vec<(String, u64)>,
}

/// The median (mean of the two middle values for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Report {
    /// Whether every goal is met.
    pub fn goals_met(&self) -> bool {
        let ratios = self
            .rows
            .iter()
            .all(|r| median(&r.pxeroot) >= RATIO_GOAL * median(&r.tgtd));
        let rss = self
            .rss
            .as_ref()
            .is_none_or(|r| r.pxeroot_kib < RSS_GOAL_KIB);
        ratios && self.ceiling_fraction() >= CEILING_GOAL && rss
    }

    /// pxeroot's sequential read over the iperf3 ceiling measured just before it, per run.
    /// Pairing each run with its own ceiling keeps load from other work on the machine (which
    /// moves both) from skewing the fraction.
    pub fn ceiling_fractions(&self) -> Vec<f64> {
        let Some(row) = self
            .rows
            .iter()
            .find(|r| r.workload == Workload::SeqRead128k)
        else {
            return Vec::new();
        };
        row.pxeroot
            .iter()
            .zip(&self.ceiling)
            .filter(|(_, c)| **c > 0.0)
            .map(|(iops, c)| iops * row.workload.size() as f64 / c)
            .collect()
    }

    /// The median of [`Report::ceiling_fractions`].
    pub fn ceiling_fraction(&self) -> f64 {
        median(&self.ceiling_fractions())
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let o = &self.options;
        let _ = writeln!(
            s,
            "Median of {} runs, {} s per measurement, {} MiB images, one namespace, loopback only.\n",
            o.runs, o.seconds, o.image_mib
        );
        let _ = writeln!(
            s,
            "| benchmark | unit | tgtd | pxeroot-target | pxeroot/tgtd | goal | |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---|---|");
        for r in &self.rows {
            let w = r.workload;
            let t = w.figure(median(&r.tgtd));
            let p = w.figure(median(&r.pxeroot));
            let ratio = if t > 0.0 { p / t } else { 0.0 };
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.0} | {:.2}x | ≥ {RATIO_GOAL}x | {} |",
                w.label(),
                w.unit(),
                t,
                p,
                ratio,
                verdict(ratio >= RATIO_GOAL)
            );
        }
        let ceiling = median(&self.ceiling) / 1e6;
        let frac = self.ceiling_fraction();
        let _ = writeln!(
            s,
            "| iperf3 loopback ceiling (1 stream) | MB/s | {ceiling:.0} | | | | |"
        );
        let _ = writeln!(
            s,
            "| pxeroot seq read / iperf3 ceiling (median of per-run ratios) | | | {:.0}% | | ≥ {:.0}% | {} |",
            frac * 100.0,
            CEILING_GOAL * 100.0,
            verdict(frac >= CEILING_GOAL)
        );
        if let Some(r) = &self.rss {
            let _ = writeln!(
                s,
                "| peak RSS (VmHWM), {} sessions | MiB | {:.1} | {:.1} | | < {} MiB | {} |",
                r.sessions,
                r.tgtd_kib as f64 / 1024.0,
                r.pxeroot_kib as f64 / 1024.0,
                RSS_GOAL_KIB / 1024,
                verdict(r.pxeroot_kib < RSS_GOAL_KIB)
            );
        }
        let _ = writeln!(s, "\nEvery run (tgtd / pxeroot-target):\n");
        let runs = |v: &[f64], w: Workload| {
            v.iter()
                .map(|x| format!("{:.0}", w.figure(*x)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for r in &self.rows {
            let _ = writeln!(
                s,
                "- {} ({}): tgtd {}; pxeroot {}",
                r.workload.label(),
                r.workload.unit(),
                runs(&r.tgtd, r.workload),
                runs(&r.pxeroot, r.workload)
            );
        }
        let ceil: Vec<String> = self
            .ceiling
            .iter()
            .map(|c| format!("{:.0}", c / 1e6))
            .collect();
        let _ = writeln!(s, "- iperf3 ceiling (MB/s): {}", ceil.join(", "));
        let fractions: Vec<String> = self
            .ceiling_fractions()
            .iter()
            .map(|f| format!("{:.0}%", f * 100.0))
            .collect();
        let _ = writeln!(
            s,
            "- pxeroot seq read / iperf3 of the same run: {} (the table gives their median)",
            fractions.join(", ")
        );
        if let Some(r) = &self.rss {
            let _ = writeln!(
                s,
                "\n{} concurrent sessions: pxeroot-target VmHWM {} KiB ({:.1} MiB; {} KiB before \
                 this phase, {} KiB after the concurrent readers), {} threads; tgtd VmHWM {} KiB. \
                 Aggregate 128 KiB seq read MB/s tgtd {:.0} / pxeroot {:.0}; 128 KiB write MB/s \
                 tgtd {:.0} / pxeroot {:.0}.",
                r.sessions,
                r.pxeroot_kib,
                r.pxeroot_kib as f64 / 1024.0,
                r.pxeroot_before_kib,
                r.pxeroot_after_reads_kib,
                r.pxeroot_threads,
                r.tgtd_kib,
                r.read_mbs.0,
                r.read_mbs.1,
                r.write_mbs.0,
                r.write_mbs.1
            );
        }
        if !self.hwm_steps.is_empty() {
            let steps: Vec<String> = self
                .hwm_steps
                .iter()
                .map(|(step, kib)| format!("{step} {:.1}", *kib as f64 / 1024.0))
                .collect();
            let _ = writeln!(
                s,
                "\npxeroot-target VmHWM (MiB) after each step of run 1, one session: {}.",
                steps.join("; ")
            );
        }
        let _ = writeln!(
            s,
            "\nLoad average (/proc/loadavg) at the start: {}; at the end: {}.",
            self.load.0, self.load.1
        );
        let _ = writeln!(
            s,
            "\nCommands (each run as `ip netns exec <namespace> ...`):\n"
        );
        for c in &self.commands {
            let _ = writeln!(s, "    {c}");
        }
        s
    }
}

/// "met" or "MISSED", for the goal lines of the reports.
pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// The host tools the bench drives.
pub const TOOLS: &[&str] = &[
    "ip",
    "tgtd",
    "tgtadm",
    "iscsi-perf",
    "iscsi-readcapacity16",
    "qemu-img",
    "iperf3",
];

/// Check root and the tools of `tools/bench target`, and remove what killed lab runs left behind.
///
/// # Errors
/// Names what is missing.
pub fn require() -> Result<()> {
    require_tools(TOOLS)
}

/// Check root and `tools`, and remove what killed lab runs left behind.
///
/// # Errors
/// Names what is missing.
pub fn require_tools(tools: &[&str]) -> Result<()> {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root (network namespaces and the servers need it)".to_string());
    }
    for tool in tools {
        if !have_tool(tool) {
            missing.push(format!("the tool `{tool}`"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "cannot bench here; missing: {}. Run tools/setup as root (tools/bench does).",
            missing.join("; ")
        );
    }
    for name in netns::cleanup_leftovers()? {
        eprintln!("bench: removed leftovers of a killed run: {name}");
    }
    Ok(())
}

/// `tools/bench target`: the side-by-side table and the RSS phase.
///
/// # Errors
/// When a server does not start or a client fails or overruns its time limit.
pub fn target(options: &Options) -> Result<Report> {
    require()?;
    if options.runs == 0 || options.seconds == 0 || options.image_mib == 0 {
        bail!("runs, seconds and image size must be positive");
    }
    let load_start = loadavg();
    let ns = Netns::create()?;
    let dir = ns.run_dir().to_path_buf();
    let tgtd_img = dir.join("tgtd.img");
    let pxeroot_img = dir.join("pxeroot.img");
    log(&format!(
        "writing two {} MiB images in {}",
        options.image_mib,
        dir.display()
    ));
    write_image(&pxeroot_img, options.image_mib)?;
    std::fs::copy(&pxeroot_img, &tgtd_img).context("cannot copy the image")?;
    File::open(&tgtd_img)?.sync_all()?;

    let tgtd = Tgtd::start(&ns)?;
    tgtd.add_target(1, TGTD_IQN, &tgtd_img, &[])?;
    let config = pxeroot_config(
        &format!("{HOST}:{PXEROOT_PORT}"),
        PXEROOT_IQN,
        &pxeroot_img,
        "*",
        None,
        None,
    );
    let pxeroot = PxerootTarget::start(&ns, &config)?;
    log(&format!(
        "pxeroot-target {} (pid {}), tgtd (pid {}) in namespace {}",
        PxerootTarget::binary()?.display(),
        pxeroot.pid(),
        tgtd.pid(),
        ns.name()
    ));
    let mut sides = [
        Endpoint {
            name: "tgtd",
            portal: format!("{HOST}:{TGTD_PORT}"),
            iqn: TGTD_IQN,
            lun: 1,
            pid: tgtd.pid(),
            block: 0,
        },
        Endpoint {
            name: "pxeroot",
            portal: format!("{HOST}:{PXEROOT_PORT}"),
            iqn: PXEROOT_IQN,
            lun: 0,
            pid: pxeroot.pid(),
            block: 0,
        },
    ];
    let mut bench = Bench {
        ns: &ns,
        options: options.clone(),
        commands: Vec::new(),
    };
    let mut hwm_steps = vec![("start".to_string(), vm_hwm_kib(pxeroot.pid())?)];
    for side in &mut sides {
        side.block = bench.block_size(side)?;
    }
    if sides[0].block != sides[1].block {
        log(&format!(
            "note: block sizes differ (tgtd {}, pxeroot {})",
            sides[0].block, sides[1].block
        ));
    }

    // qemu-img bench takes a request count, not a time: calibrate each side with a short run
    // (which also warms both servers up).
    let mut counts = [[0u64; 2]; 4];
    for (wi, w) in Workload::ALL.iter().enumerate() {
        if w.is_write() {
            for (si, side) in sides.iter().enumerate() {
                let probe = (options.seconds * 2000).clamp(500, 20_000);
                let probe = if w.size() > 4096 { probe / 4 } else { probe };
                let iops = bench.qemu_write(side, *w, probe, "calibrate")?;
                counts[wi][si] = ((iops * options.seconds as f64) as u64).max(probe);
            }
        }
    }

    hwm_steps.push(("write-calibration".to_string(), vm_hwm_kib(sides[1].pid)?));
    let server = bench.iperf3_server()?;
    let mut ceiling = Vec::new();
    let mut rows: Vec<Row> = Workload::ALL
        .iter()
        .map(|w| Row {
            workload: *w,
            tgtd: Vec::new(),
            pxeroot: Vec::new(),
        })
        .collect();
    for run in 0..options.runs {
        let c = bench.iperf3(run)?;
        log(&format!("run {}: iperf3 {:.0} MB/s", run + 1, c / 1e6));
        ceiling.push(c);
        for (wi, row) in rows.iter_mut().enumerate() {
            let w = row.workload;
            // Alternate which side goes first.
            let order: [usize; 2] = if run % 2 == 0 { [0, 1] } else { [1, 0] };
            for si in order {
                let side = &sides[si];
                let iops = if w.is_write() {
                    bench.qemu_write(side, w, counts[wi][si], "run")?
                } else {
                    bench.iscsi_perf(side, w)?
                };
                log(&format!(
                    "run {}: {} {}: {:.0} {}",
                    run + 1,
                    side.name,
                    w.label(),
                    w.figure(iops),
                    w.unit()
                ));
                if si == 0 {
                    row.tgtd.push(iops);
                } else {
                    row.pxeroot.push(iops);
                    if run == 0 {
                        hwm_steps.push((w.short().to_string(), vm_hwm_kib(side.pid)?));
                    }
                }
            }
        }
    }
    drop(server);

    let rss = if options.sessions > 0 {
        let before = vm_hwm_kib(sides[1].pid)?;
        let mut read = [0.0; 2];
        let mut write = [0.0; 2];
        let mut after_reads = 0;
        for (si, side) in sides.iter().enumerate() {
            read[si] = bench.concurrent_reads(side)?;
            if si == 1 {
                after_reads = vm_hwm_kib(side.pid)?;
            }
            let per = counts[3][si] / options.sessions as u64;
            write[si] = bench.concurrent_writes(side, per.max(64))?;
            log(&format!(
                "{} sessions on {}: read {:.0} MB/s, write {:.0} MB/s, VmHWM {} KiB",
                options.sessions,
                side.name,
                read[si],
                write[si],
                vm_hwm_kib(side.pid)?
            ));
        }
        Some(Rss {
            sessions: options.sessions,
            pxeroot_before_kib: before,
            pxeroot_after_reads_kib: after_reads,
            pxeroot_kib: vm_hwm_kib(sides[1].pid)?,
            pxeroot_threads: status_field(sides[1].pid, "Threads:")?,
            tgtd_kib: vm_hwm_kib(sides[0].pid)?,
            read_mbs: (read[0], read[1]),
            write_mbs: (write[0], write[1]),
        })
    } else {
        None
    };
    let commands = bench.commands;
    drop(pxeroot);
    drop(tgtd);
    drop(ns);
    Ok(Report {
        options: options.clone(),
        ceiling,
        rows,
        rss,
        commands,
        load: (load_start, loadavg()),
        hwm_steps,
    })
}

impl Workload {
    fn is_write(self) -> bool {
        matches!(self, Workload::Write4k | Workload::Write128k)
    }

    fn short(self) -> &'static str {
        match self {
            Workload::SeqRead128k => "128k-seq-read",
            Workload::RandRead4k => "4k-rand-read",
            Workload::Write4k => "4k-write",
            Workload::Write128k => "128k-write",
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn log(msg: &str) {
    eprintln!("bench: {msg}");
}

/// Write `mib` MiB of non-zero, non-repeating data (so reads hit real data), then sync.
fn write_image(path: &Path, mib: u64) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut buf = tftp::random_bytes(1 << 20, 0);
    for i in 0..mib {
        // Make every MiB (and every 4 KiB block in it) differ from the others.
        for block in buf.chunks_mut(4096) {
            block[..8].copy_from_slice(&i.to_le_bytes());
        }
        f.write_all(&buf)?;
    }
    f.sync_all()?;
    Ok(())
}

/// A child killed (and reaped) on drop.
#[derive(Debug)]
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Bench<'a> {
    ns: &'a Netns,
    options: Options,
    commands: Vec<String>,
}

/// Distinguishes output files.
static SEQ: AtomicU32 = AtomicU32::new(0);

impl Bench<'_> {
    /// Time limit for one measurement.
    fn limit(&self) -> Duration {
        Duration::from_secs(self.options.seconds * 4 + 60)
    }

    fn remember(&mut self, cmd: &Command) {
        // Strip `ip netns exec NAME` and keep one line per tool and workload shape.
        let line = cmd
            .get_args()
            .skip(3)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        if !self.commands.contains(&line) {
            self.commands.push(line);
        }
    }

    /// Start `program ARGS` in the namespace with stdout and stderr in a file of the run folder.
    fn spawn(&mut self, program: &str, args: &[String], tag: &str) -> Result<(Guard, PathBuf)> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let out = self
            .ns
            .run_dir()
            .join(format!("{n:04}-{tag}-{}.out", program.replace('/', "_")));
        let file = File::create(&out)?;
        let mut cmd = self.ns.command(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start `{}`", describe(&cmd)))?;
        if tag != "session" && tag != "calibrate" {
            self.remember(&cmd);
        }
        Ok((Guard(child), out))
    }

    /// Run clients to completion within the time limit; their outputs, in order.
    fn run_all(&mut self, jobs: Vec<(String, Vec<String>)>, tag: &str) -> Result<Vec<String>> {
        let mut running = Vec::new();
        for (program, args) in &jobs {
            running.push(self.spawn(program, args, tag)?);
        }
        let deadline = Instant::now() + self.limit();
        let mut statuses: Vec<Option<ExitStatus>> = vec![None; running.len()];
        while statuses.iter().any(Option::is_none) {
            for (i, (guard, _)) in running.iter_mut().enumerate() {
                if statuses[i].is_none() {
                    statuses[i] = guard.0.try_wait()?;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "`{} {}` did not finish within {} s (killed)",
                    jobs[0].0,
                    jobs[0].1.join(" "),
                    self.limit().as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut outputs = Vec::new();
        for (i, (_, path)) in running.iter().enumerate() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if let Some(status) = statuses[i].filter(|s| !s.success()) {
                bail!(
                    "`{} {}` failed ({status}): {}",
                    jobs[i].0,
                    jobs[i].1.join(" "),
                    tail(&text)
                );
            }
            outputs.push(text);
        }
        Ok(outputs)
    }

    fn run_one(&mut self, program: &str, args: Vec<String>, tag: &str) -> Result<String> {
        let mut out = self.run_all(vec![(program.to_string(), args)], tag)?;
        out.pop().context("no output")
    }

    /// The LUN's logical block length, from `iscsi-readcapacity16`.
    fn block_size(&mut self, side: &Endpoint) -> Result<u64> {
        let args = vec![
            "-i".to_string(),
            format!("iqn.2010-11.libiscsi:bench-{}-rc16", side.name),
            side.url(),
        ];
        let out = self.run_one("iscsi-readcapacity16", args, "session")?;
        parse_block_length(&out)
            .with_context(|| format!("no block length from {}: {}", side.name, tail(&out)))
    }

    fn perf_args(
        &self,
        side: &Endpoint,
        w: Workload,
        initiator: &str,
        seconds: u64,
    ) -> Vec<String> {
        let blocks = (w.size() / side.block.max(1)).max(1);
        let mut args = vec![
            "-i".to_string(),
            initiator.to_string(),
            "-m".to_string(),
            w.depth().to_string(),
            "-b".to_string(),
            blocks.to_string(),
            "-t".to_string(),
            seconds.to_string(),
        ];
        if w == Workload::RandRead4k {
            args.push("-r".to_string());
        }
        args.push(side.url());
        args
    }

    /// iscsi-perf for `seconds`: IOPS.
    fn iscsi_perf(&mut self, side: &Endpoint, w: Workload) -> Result<f64> {
        let args = self.perf_args(
            side,
            w,
            "iqn.2010-11.libiscsi:iscsi-perf",
            self.options.seconds,
        );
        let out = self.run_one("iscsi-perf", args, side.name)?;
        parse_iscsi_perf(&out).with_context(|| format!("iscsi-perf output: {}", tail(&out)))
    }

    fn qemu_args(&self, side: &Endpoint, w: Workload, count: u64, initiator: &str) -> Vec<String> {
        [
            "bench",
            "--image-opts",
            "-w",
            "--pattern",
            WRITE_PATTERN,
            "-d",
            &w.depth().to_string(),
            "-s",
            &w.size().to_string(),
            "-c",
            &count.to_string(),
            &side.image_opts(initiator),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// qemu-img bench -w with `count` requests: IOPS.
    fn qemu_write(&mut self, side: &Endpoint, w: Workload, count: u64, tag: &str) -> Result<f64> {
        let args = self.qemu_args(side, w, count, "iqn.2008-11.org.linux-kvm:bench");
        let tag = if tag == "run" { side.name } else { tag };
        let out = self.run_one("qemu-img", args, tag)?;
        let secs =
            parse_qemu_bench(&out).with_context(|| format!("qemu-img output: {}", tail(&out)))?;
        Ok(count as f64 / secs.max(1e-6))
    }

    /// `iperf3 -s` on the namespace's loopback, killed on drop.
    fn iperf3_server(&mut self) -> Result<Guard> {
        let args = ["-s", "-B", HOST, "-p", &IPERF_PORT.to_string()]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>();
        let (guard, _) = self.spawn("iperf3", &args, "server")?;
        Ok(guard)
    }

    /// One iperf3 stream over the loopback for `seconds`: bytes per second at the receiver.
    fn iperf3(&mut self, run: usize) -> Result<f64> {
        let args: Vec<String> = [
            "-c",
            HOST,
            "-p",
            &IPERF_PORT.to_string(),
            "-t",
            &self.options.seconds.to_string(),
            "-f",
            "m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // The server may need a moment to listen on the first run.
        let mut last = None;
        for _ in 0..if run == 0 { 25 } else { 1 } {
            match self.run_one("iperf3", args.clone(), "ceiling") {
                Ok(out) => {
                    return parse_iperf3(&out)
                        .with_context(|| format!("iperf3 output: {}", tail(&out)))
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("iperf3 did not run")))
    }

    /// `sessions` iscsi-perf 128 KiB sequential readers at once: aggregate MB/s.
    fn concurrent_reads(&mut self, side: &Endpoint) -> Result<f64> {
        let w = Workload::SeqRead128k;
        let jobs = (0..self.options.sessions)
            .map(|i| {
                let initiator = format!("iqn.2010-11.libiscsi:iscsi-perf-{i}");
                let args = self.perf_args(side, w, &initiator, self.options.seconds * 2);
                ("iscsi-perf".to_string(), args)
            })
            .collect();
        let outs = self.run_all(jobs, "session")?;
        let mut total = 0.0;
        for out in &outs {
            total += parse_iscsi_perf(out).with_context(|| format!("iscsi-perf: {}", tail(out)))?;
        }
        Ok(w.figure(total))
    }

    /// `sessions` qemu-img 128 KiB writers at once, `count` requests each: aggregate MB/s.
    fn concurrent_writes(&mut self, side: &Endpoint, count: u64) -> Result<f64> {
        let w = Workload::Write128k;
        let jobs = (0..self.options.sessions)
            .map(|i| {
                let initiator = format!("iqn.2008-11.org.linux-kvm:bench-{i}");
                (
                    "qemu-img".to_string(),
                    self.qemu_args(side, w, count, &initiator),
                )
            })
            .collect();
        let start = Instant::now();
        let outs = self.run_all(jobs, "session")?;
        let wall = start.elapsed().as_secs_f64();
        for out in &outs {
            parse_qemu_bench(out).with_context(|| format!("qemu-img: {}", tail(out)))?;
        }
        // Aggregate over the wall time of the whole group (includes logins; conservative).
        Ok(w.figure(count as f64 * self.options.sessions as f64 / wall.max(1e-6)))
    }
}

/// The last few hundred characters of a tool's output, for messages.
fn tail(text: &str) -> String {
    let text = text.replace('\r', "\n");
    let t = text.trim();
    let start = t.char_indices().rev().nth(600).map(|(i, _)| i).unwrap_or(0);
    t[start..].to_string()
}

/// IOPS from iscsi-perf's last "iops average N" (its final line when the runtime ends).
pub fn parse_iscsi_perf(out: &str) -> Option<f64> {
    let at = out.rfind("iops average ")?;
    let rest = &out[at + "iops average ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Seconds from qemu-img bench's "Run completed in X seconds."
pub fn parse_qemu_bench(out: &str) -> Option<f64> {
    let at = out.rfind("Run completed in ")?;
    let rest = &out[at + "Run completed in ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Bytes per second at the receiver from iperf3's text summary.
pub fn parse_iperf3(out: &str) -> Option<f64> {
    let line = out.lines().rev().find(|l| l.contains("receiver"))?;
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let i = tokens.iter().position(|t| t.ends_with("bits/sec"))?;
    let value: f64 = tokens.get(i.checked_sub(1)?)?.parse().ok()?;
    let scale = match tokens[i].chars().next()? {
        'G' => 1e9,
        'M' => 1e6,
        'K' | 'k' => 1e3,
        _ => 1.0,
    };
    Some(value * scale / 8.0)
}

/// The logical block length from `iscsi-readcapacity16`'s output.
pub fn parse_block_length(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("block length"))?;
    let (_, value) = line.split_once(':')?;
    value.split_whitespace().next()?.parse().ok()
}

/// A numeric field (first number) of /proc/PID/status, e.g. "VmHWM:" in KiB.
pub fn parse_status_field(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

fn status_field(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    parse_status_field(&status, field).with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Peak resident set (VmHWM) of a process in KiB.
///
/// # Errors
/// When the process is gone.
pub fn vm_hwm_kib(pid: u32) -> Result<u64> {
    status_field(pid, "VmHWM:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_outputs() {
        let perf = "iscsi-perf version 0.1\n\ncapacity is 2097152 blocks\n\r00:00:01 - lba 1, iops current 10 (1 MB/s), iops average 10 (1 MB/s)\riops average 16789 (2098 MB/s)   \n\nfinished.\n";
        assert_eq!(parse_iscsi_perf(perf), Some(16789.0));
        assert_eq!(
            parse_qemu_bench("Sending 100 write requests\nRun completed in 2.5 seconds.\n"),
            Some(2.5)
        );
        let iperf =
            "[  5]   0.00-5.00   sec  14.0 GBytes  24000 Mbits/sec                  receiver\n";
        assert_eq!(parse_iperf3(iperf), Some(3e9));
        assert_eq!(
            parse_block_length("Protection type:0\nLogical block length:512\n"),
            Some(512)
        );
        assert_eq!(
            parse_status_field("Name:\tx\nVmHWM:\t   12345 kB\nThreads:\t3\n", "VmHWM:"),
            Some(12345)
        );
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
    }
}
