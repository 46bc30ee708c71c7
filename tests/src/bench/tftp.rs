//! `tools/bench tftp`: pxeroot-target's TFTP server against tftpd-hpa and dnsmasq, in one run.
//!
//! One private namespace; the three servers serve the same random file (64 MiB by default) on its
//! loopback: pxeroot-target (the release build, `$PXEROOT_TARGET`) on port 6969, tftpd-hpa on
//! 6970, dnsmasq on 69. Servers are pinned to CPU 0 and clients to CPU 1 with taskset, so that
//! a client never competes with the server for a core (lab notes: figures taken on one shared
//! core are three times higher and say little). Each cell is the median of `runs` transfers;
//! the server order rotates between runs. Every transfer must produce a byte-identical copy.
//!
//! Rows: curl (lock-step, no windowsize option) at blksize 1468, 8192 and 65464 against all
//! three servers; atftp with windowsize 16 at blksize 1468 against pxeroot-target (the others
//! do not implement RFC 7440), and atftp lock-step at 1468 against it for comparison.
//!
//! Goals (issue 5): pxeroot-target at least as fast as the best peer at every lock-step blksize,
//! and with windowsize 16 at least 3x the best lock-step figure at the same blksize.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{median, require_tools, verdict};
use crate::netns::Netns;
use crate::peers::{pxeroot_tftp_config, PxerootTarget, TftpPeer};
use crate::process::{describe, run};

/// CPUs the servers run on.
pub const SERVER_CPUS: &str = "0";
/// CPUs the clients run on.
pub const CLIENT_CPUS: &str = "1";
/// pxeroot-target's TFTP port.
const PXEROOT_PORT: u16 = 6969;
/// tftpd-hpa's port.
const TFTPD_PORT: u16 = 6970;
/// dnsmasq's TFTP port (it has no option to change it).
const DNSMASQ_PORT: u16 = 69;
/// A transfer slower than this is a failure.
const LIMIT: Duration = Duration::from_secs(300);
/// Goal: windowsize 16 over the best lock-step figure at the same blksize.
pub const WINDOW_GOAL: f64 = 3.0;
/// The blksize of the windowed row.
const WINDOW_BLKSIZE: u16 = 1468;

/// What to run.
#[derive(Debug, Clone)]
pub struct TftpBenchOptions {
    /// Transfers per cell (the median is reported).
    pub runs: usize,
    /// File size in MiB.
    pub mib: u64,
}

impl Default for TftpBenchOptions {
    fn default() -> TftpBenchOptions {
        TftpBenchOptions { runs: 3, mib: 64 }
    }
}

/// The servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// pxeroot-target.
    Pxeroot,
    /// tftpd-hpa.
    TftpdHpa,
    /// dnsmasq.
    Dnsmasq,
}

impl Peer {
    /// All, in table order.
    pub const ALL: [Peer; 3] = [Peer::Pxeroot, Peer::TftpdHpa, Peer::Dnsmasq];

    /// Column name.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Pxeroot => "pxeroot-target",
            Peer::TftpdHpa => "tftpd-hpa",
            Peer::Dnsmasq => "dnsmasq",
        }
    }

    fn port(self) -> u16 {
        match self {
            Peer::Pxeroot => PXEROOT_PORT,
            Peer::TftpdHpa => TFTPD_PORT,
            Peer::Dnsmasq => DNSMASQ_PORT,
        }
    }
}

/// The client programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// curl (lock-step only).
    Curl,
    /// atftp (can ask for a window).
    Atftp,
}

/// One row: a client at a blksize and windowsize, against some servers.
#[derive(Debug, Clone)]
pub struct Row {
    /// The client.
    pub client: Client,
    /// Requested blksize.
    pub blksize: u16,
    /// Requested windowsize (1: no option, lock-step).
    pub window: u16,
    /// MB/s (10^6 bytes per second) per server, one value per run; absent: not measured.
    pub mbps: Vec<(Peer, Vec<f64>)>,
}

impl Row {
    /// The median for `peer`, when measured.
    pub fn figure(&self, peer: Peer) -> Option<f64> {
        self.mbps
            .iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, v)| median(v))
    }

    fn label(&self) -> String {
        let client = match self.client {
            Client::Curl => "curl",
            Client::Atftp => "atftp",
        };
        if self.window > 1 {
            format!("{client}, windowsize {}", self.window)
        } else {
            format!("{client}, lock-step")
        }
    }
}

/// The whole result.
#[derive(Debug, Clone)]
pub struct TftpReport {
    /// The rows.
    pub rows: Vec<Row>,
    /// File size in MiB.
    pub mib: u64,
    /// Runs per cell.
    pub runs: usize,
    /// One command line per kind of transfer, to reproduce.
    pub commands: Vec<String>,
}

impl TftpReport {
    /// Lock-step goal per blksize: (blksize, pxeroot, best peer, met).
    pub fn lockstep_goals(&self) -> Vec<(u16, f64, f64, bool)> {
        self.rows
            .iter()
            .filter(|r| r.window == 1 && r.client == Client::Curl)
            .filter_map(|r| {
                let ours = r.figure(Peer::Pxeroot)?;
                let best = [Peer::TftpdHpa, Peer::Dnsmasq]
                    .into_iter()
                    .filter_map(|p| r.figure(p))
                    .fold(0.0, f64::max);
                Some((r.blksize, ours, best, ours >= best))
            })
            .collect()
    }

    /// The window goal: (windowed pxeroot figure, best lock-step figure at that blksize, met).
    pub fn window_goal(&self) -> Option<(f64, f64, bool)> {
        let windowed = self
            .rows
            .iter()
            .find(|r| r.window > 1 && r.blksize == WINDOW_BLKSIZE)?
            .figure(Peer::Pxeroot)?;
        let best = self
            .rows
            .iter()
            .filter(|r| r.window == 1 && r.blksize == WINDOW_BLKSIZE)
            .flat_map(|r| Peer::ALL.into_iter().filter_map(|p| r.figure(p)))
            .fold(0.0, f64::max);
        Some((windowed, best, best > 0.0 && windowed >= WINDOW_GOAL * best))
    }

    /// Whether every goal is met (and each was measured).
    pub fn goals_met(&self) -> bool {
        let lock = self.lockstep_goals();
        !lock.is_empty() && lock.iter().all(|g| g.3) && self.window_goal().is_some_and(|g| g.2)
    }

    /// The table and the goals as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} MiB file over a namespace's loopback; servers on CPU {SERVER_CPUS}, clients on \
             CPU {CLIENT_CPUS}; MB/s (10^6 bytes/s), median of {} transfers; every copy \
             byte-identical.\n",
            self.mib, self.runs
        );
        let _ = writeln!(
            s,
            "| client | blksize | {} |",
            Peer::ALL.map(Peer::label).join(" | ")
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for r in &self.rows {
            let cells: Vec<String> = Peer::ALL
                .iter()
                .map(|p| r.figure(*p).map_or("-".into(), |f| format!("{f:.1}")))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                r.label(),
                r.blksize,
                cells.join(" | ")
            );
        }
        let _ = writeln!(s, "\nGoals:");
        for (blksize, ours, best, ok) in self.lockstep_goals() {
            let _ = writeln!(
                s,
                "- lock-step, blksize {blksize}: pxeroot-target {ours:.1} >= best peer {best:.1}: {}",
                verdict(ok)
            );
        }
        match self.window_goal() {
            Some((w, best, ok)) => {
                let _ = writeln!(
                    s,
                    "- windowsize 16, blksize {WINDOW_BLKSIZE}: pxeroot-target {w:.1} >= \
                     {WINDOW_GOAL} x best lock-step {best:.1} = {:.1}: {}",
                    WINDOW_GOAL * best,
                    verdict(ok)
                );
            }
            None => {
                let _ = writeln!(s, "- windowsize 16: not measured: MISSED");
            }
        }
        let _ = writeln!(s, "\nCommands (inside the namespace):\n");
        for c in &self.commands {
            let _ = writeln!(s, "    {c}");
        }
        s
    }
}

/// The host tools the bench drives.
pub const TOOLS: &[&str] = &["ip", "taskset", "curl", "atftp", "in.tftpd", "dnsmasq"];

fn log(msg: &str) {
    eprintln!("bench tftp: {msg}");
}

/// The client's arguments (after `taskset -c CPUS`) for one transfer into `out`.
fn client_args(client: Client, blksize: u16, window: u16, port: u16, out: &Path) -> Vec<String> {
    match client {
        Client::Curl => vec![
            "curl".into(),
            "-s".into(),
            "-S".into(),
            "--tftp-blksize".into(),
            blksize.to_string(),
            format!("tftp://127.0.0.1:{port}/file"),
            "-o".into(),
            out.display().to_string(),
        ],
        Client::Atftp => {
            let mut a = vec![
                "atftp".to_string(),
                "--option".into(),
                format!("blksize {blksize}"),
            ];
            if window > 1 {
                a.extend(["--option".into(), format!("windowsize {window}")]);
            }
            a.extend([
                "-g".into(),
                "-r".into(),
                "file".into(),
                "-l".into(),
                out.display().to_string(),
                "127.0.0.1".into(),
                port.to_string(),
            ]);
            a
        }
    }
}

/// One timed transfer; the copy must equal `source`. Returns MB/s.
fn transfer(ns: &Netns, args: &[String], out: &Path, source: &[u8]) -> Result<f64> {
    let _ = std::fs::remove_file(out);
    let mut cmd = ns.command("taskset");
    cmd.args(["-c", CLIENT_CPUS])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(&cmd)))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{}` overran {} s", describe(&cmd), LIMIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let secs = started.elapsed().as_secs_f64();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        bail!("`{}` failed ({status}): {}", describe(&cmd), err.trim());
    }
    let copy = std::fs::read(out).with_context(|| format!("no copy from `{}`", describe(&cmd)))?;
    if copy != source {
        bail!(
            "`{}` produced a copy that differs from the file ({} bytes, expected {})",
            describe(&cmd),
            copy.len(),
            source.len()
        );
    }
    let _ = std::fs::remove_file(out);
    Ok(source.len() as f64 / secs / 1e6)
}

/// `n` random bytes from a xorshift generator seeded with `seed` (not compressible, no
/// repeating blocks); the TFTP interop tests use it too.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut data = Vec::with_capacity(n + 8);
    while data.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(n);
    data
}

/// `tools/bench tftp`.
///
/// # Errors
/// When a server does not start, or a transfer fails, overruns or returns a different file.
pub fn tftp(options: &TftpBenchOptions) -> Result<TftpReport> {
    require_tools(TOOLS)?;
    if options.runs == 0 || options.mib == 0 {
        bail!("runs and size must be positive");
    }
    let ns = Netns::create()?;
    // tftpd-hpa resolves its --address with AI_ADDRCONFIG, which fails ("cannot resolve local
    // IPv4 bind address") while loopback is the only interface with an address; an idle veth
    // pair with one fixes that. All traffic still goes over 127.0.0.1.
    ns.add_veth("pxtb0", "pxtb1", Some("10.99.0.1/24"))?;
    let root: PathBuf = ns.run_dir().join("root");
    std::fs::create_dir_all(&root)?;
    let size = usize::try_from(options.mib << 20)?;
    let source = random_bytes(size, u64::from(std::process::id()));
    let path = root.join("file");
    std::fs::write(&path, &source).with_context(|| format!("cannot write {}", path.display()))?;
    let out = ns.run_dir().join("copy");

    let config = pxeroot_tftp_config("127.0.0.1", PXEROOT_PORT, &root, &[]);
    let pxeroot = PxerootTarget::start(&ns, &config)?;
    // Every thread of the server, and those it starts later, on the server CPU.
    run(Command::new("taskset").args(["-a", "-p", "-c", SERVER_CPUS, &pxeroot.pid().to_string()]))?;
    let tftpd = TftpPeer::tftpd_hpa(
        &ns,
        &root,
        &format!("127.0.0.1:{TFTPD_PORT}"),
        Some(SERVER_CPUS),
    )?;
    let dnsmasq = TftpPeer::dnsmasq(&ns, &root, "127.0.0.1", Some(SERVER_CPUS))?;
    log(&format!(
        "{} MiB file; servers: pxeroot-target pid {}, tftpd-hpa pid {}, dnsmasq pid {}",
        options.mib,
        pxeroot.pid(),
        tftpd.pid(),
        dnsmasq.pid()
    ));

    let mut rows = vec![
        Row {
            client: Client::Curl,
            blksize: 1468,
            window: 1,
            mbps: vec![],
        },
        Row {
            client: Client::Curl,
            blksize: 8192,
            window: 1,
            mbps: vec![],
        },
        Row {
            client: Client::Curl,
            blksize: 65464,
            window: 1,
            mbps: vec![],
        },
        Row {
            client: Client::Atftp,
            blksize: WINDOW_BLKSIZE,
            window: 1,
            mbps: vec![],
        },
        Row {
            client: Client::Atftp,
            blksize: WINDOW_BLKSIZE,
            window: 16,
            mbps: vec![],
        },
    ];
    let mut commands = Vec::new();
    for row in &mut rows {
        // curl rows against every server; atftp rows against pxeroot-target only.
        let peers: Vec<Peer> = match row.client {
            Client::Curl => Peer::ALL.to_vec(),
            Client::Atftp => vec![Peer::Pxeroot],
        };
        row.mbps = peers.iter().map(|p| (*p, Vec::new())).collect();
        let args = client_args(row.client, row.blksize, row.window, PXEROOT_PORT, &out);
        commands.push(format!("taskset -c {CLIENT_CPUS} {}", args.join(" ")));
        for run_no in 0..options.runs {
            for i in 0..peers.len() {
                let k = (i + run_no) % peers.len();
                let peer = peers[k];
                let args = client_args(row.client, row.blksize, row.window, peer.port(), &out);
                let label = format!(
                    "{} blksize {} against {}",
                    row.label(),
                    row.blksize,
                    peer.label()
                );
                let mbps = transfer(&ns, &args, &out, &source).context(label.clone())?;
                log(&format!("{label}: {mbps:.1} MB/s"));
                row.mbps[k].1.push(mbps);
            }
        }
    }
    let resent = pxeroot
        .log_text()
        .lines()
        .filter(|l| l.contains("TFTP sent") && !l.contains("resent=0"))
        .count();
    if resent > 0 {
        log(&format!(
            "pxeroot-target resent blocks in {resent} transfer(s)"
        ));
    }
    drop((pxeroot, tftpd, dnsmasq));
    Ok(TftpReport {
        rows,
        mib: options.mib,
        runs: options.runs,
        commands,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(client: Client, blksize: u16, window: u16, v: &[(Peer, f64)]) -> Row {
        Row {
            client,
            blksize,
            window,
            mbps: v.iter().map(|(p, f)| (*p, vec![*f])).collect(),
        }
    }

    #[test]
    fn goals() {
        let mut r = TftpReport {
            rows: vec![
                row(
                    Client::Curl,
                    1468,
                    1,
                    &[
                        (Peer::Pxeroot, 30.0),
                        (Peer::TftpdHpa, 27.0),
                        (Peer::Dnsmasq, 25.0),
                    ],
                ),
                row(Client::Atftp, 1468, 16, &[(Peer::Pxeroot, 95.0)]),
            ],
            mib: 64,
            runs: 1,
            commands: vec![],
        };
        assert!(r.goals_met());
        assert_eq!(r.window_goal(), Some((95.0, 30.0, true)));
        r.rows[1] = row(Client::Atftp, 1468, 16, &[(Peer::Pxeroot, 85.0)]);
        assert!(
            !r.goals_met(),
            "3x the best lock-step figure, ours included"
        );
        r.rows[1] = row(Client::Atftp, 1468, 16, &[(Peer::Pxeroot, 95.0)]);
        r.rows[0] = row(
            Client::Curl,
            1468,
            1,
            &[
                (Peer::Pxeroot, 26.0),
                (Peer::TftpdHpa, 27.0),
                (Peer::Dnsmasq, 25.0),
            ],
        );
        assert!(!r.goals_met());
        assert!(r.markdown().contains("MISSED"));
    }
}
