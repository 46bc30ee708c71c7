//! The real peers the lab runs against: tgtd (the reference userspace iSCSI target), dnsmasq (the
//! reference DHCP and TFTP server), and the guest-side steps for open-iscsi's iscsistart (the
//! reference kernel initiator) and busybox udhcpc.
//!
//! Host-side peers run inside the lab namespace and die with it. tgtd's control socket lives in
//! the file system (`/var/run/tgtd/socket.<port>`), so every tgtd gets a control port of its own
//! and concurrent tests never talk to each other's daemon.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns::Netns;
use crate::process::{describe, run};

/// A CHAP user name and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Chap {
    /// CHAP_N.
    pub user: String,
    /// The secret (never printed: Debug redacts it).
    pub secret: String,
}

impl std::fmt::Debug for Chap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chap")
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A child process killed on drop.
#[derive(Debug)]
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    /// Poll `ready` until it holds; fail with the daemon's log (`log`) when it exits first or
    /// `timeout` passes.
    fn wait_ready(
        &mut self,
        name: &str,
        log: &Path,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            let text = || std::fs::read_to_string(log).unwrap_or_default();
            if let Some(status) = self.0.try_wait()? {
                bail!("{name} exited ({status}): {}", text().trim());
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} was not ready within {} s: {}",
                    timeout.as_secs(),
                    text().trim()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spawn_logged(mut cmd: Command, log: &Path) -> Result<Daemon> {
    let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(&cmd)))?;
    Ok(Daemon(child))
}

/// tgtd in the foreground inside a namespace, configured through tgtadm.
#[derive(Debug)]
pub struct Tgtd {
    daemon: Daemon,
    port: u32,
}

impl Tgtd {
    /// Start tgtd in `ns` (portal 0.0.0.0:3260 inside the namespace) and wait until it answers.
    ///
    /// # Errors
    /// When it does not start or answer within 10 s.
    pub fn start(ns: &Netns) -> Result<Tgtd> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        // The socket path is global (namespaces do not separate it) and tgtd takes ports up to 32767:
        // start from one derived from the pid and skip ports whose socket exists.
        let base = (std::process::id() % 300) * 100 + 1000;
        let port = (0..100)
            .map(|_| base + SEQ.fetch_add(1, Ordering::Relaxed) % 100)
            .find(|p| !Path::new(&format!("/var/run/tgtd/socket.{p}.lock")).exists())
            .context("no free tgtd control port")?;
        std::fs::create_dir_all("/var/run/tgtd")?;
        for suffix in ["", ".lock"] {
            ns.remove_with_namespace(Path::new(&format!("/var/run/tgtd/socket.{port}{suffix}")))?;
        }
        let mut cmd = ns.command("tgtd");
        cmd.args(["-f", "-C", &port.to_string()]);
        let log = ns.run_dir().join("tgtd.log");
        let mut daemon = spawn_logged(cmd, &log)?;
        let answers = || adm(port, &["--op", "show", "--mode", "sys"]).is_ok();
        daemon.wait_ready("tgtd", &log, Duration::from_secs(10), answers)?;
        Ok(Tgtd { daemon, port })
    }

    /// Run `tgtadm --lld iscsi -C <port> ARGS`.
    ///
    /// # Errors
    /// When tgtadm fails.
    pub fn adm(&self, args: &[&str]) -> Result<()> {
        adm(self.port, args)
    }

    /// A target `tid` named `iqn` with LUN 1 backed by `image`, open to `initiators` (names),
    /// or to every initiator when the list is empty.
    ///
    /// # Errors
    /// When tgtadm refuses.
    pub fn add_target(&self, tid: u32, iqn: &str, image: &Path, initiators: &[&str]) -> Result<()> {
        let tid = tid.to_string();
        self.adm(&["--op", "new", "--mode", "target", "--tid", &tid, "-T", iqn])?;
        let path = image.to_string_lossy();
        self.adm(&[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            &tid,
            "--lun",
            "1",
            "-b",
            &path,
        ])?;
        if initiators.is_empty() {
            self.adm(&[
                "--op", "bind", "--mode", "target", "--tid", &tid, "-I", "ALL",
            ])?;
        }
        for name in initiators {
            self.adm(&[
                "--op", "bind", "--mode", "target", "--tid", &tid, "-Q", name,
            ])?;
        }
        Ok(())
    }

    /// Require CHAP on target `tid`: `incoming` authenticates the initiator, `outgoing` (mutual
    /// CHAP) authenticates the target.
    ///
    /// # Errors
    /// When tgtadm refuses.
    pub fn require_chap(&self, tid: u32, incoming: &Chap, outgoing: Option<&Chap>) -> Result<()> {
        let tid = tid.to_string();
        for (chap, extra) in [(Some(incoming), None), (outgoing, Some("--outgoing"))] {
            let Some(chap) = chap else { continue };
            self.adm(&[
                "--op",
                "new",
                "--mode",
                "account",
                "--user",
                &chap.user,
                "--password",
                &chap.secret,
            ])?;
            let mut bind = vec![
                "--op", "bind", "--mode", "account", "--tid", &tid, "--user", &chap.user,
            ];
            bind.extend(extra);
            self.adm(&bind)?;
        }
        Ok(())
    }

    /// tgtd's pid (inside the namespace).
    pub fn pid(&self) -> u32 {
        self.daemon.0.id()
    }
}

/// `tgtadm --lld iscsi -C <port> ARGS`.
fn adm(port: u32, args: &[&str]) -> Result<()> {
    run(Command::new("tgtadm")
        .args(["-C", &port.to_string(), "--lld", "iscsi"])
        .args(args))?;
    Ok(())
}

/// dnsmasq as the DHCP server of a namespace's link (DNS off).
#[derive(Debug)]
pub struct Dnsmasq {
    daemon: Daemon,
}

/// What dnsmasq hands out.
#[derive(Debug, Clone)]
pub struct DhcpConfig {
    /// The interface to serve.
    pub interface: String,
    /// Dynamic range (first, last, netmask).
    pub range: (String, String, String),
    /// Reservations (MAC, address).
    pub hosts: Vec<(String, String)>,
    /// Extra dnsmasq arguments (boot options, TFTP).
    pub extra: Vec<String>,
}

impl DhcpConfig {
    /// The lab link: `tap0`, a pool of 10.0.0.100-200/24, and these reservations (MAC, address).
    pub fn lab(hosts: &[(&str, &str)]) -> DhcpConfig {
        DhcpConfig {
            interface: "tap0".into(),
            range: (
                "10.0.0.100".into(),
                "10.0.0.200".into(),
                "255.255.255.0".into(),
            ),
            hosts: hosts
                .iter()
                .map(|(m, i)| (m.to_string(), i.to_string()))
                .collect(),
            extra: vec![],
        }
    }
}

impl Dnsmasq {
    /// Start dnsmasq in the foreground in `ns`.
    ///
    /// # Errors
    /// When it cannot start or exits at once (bad arguments, address in use).
    pub fn start(ns: &Netns, config: &DhcpConfig) -> Result<Dnsmasq> {
        let leases = ns.run_dir().join("dnsmasq.leases");
        let mut cmd = ns.command("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
        ])
        .args([
            "--user=root",
            "--group=root",
            "--log-dhcp",
            "--log-facility=-",
        ])
        .arg(format!("--interface={}", config.interface))
        .arg(format!(
            "--dhcp-range={},{},{},1h",
            config.range.0, config.range.1, config.range.2
        ))
        .arg(format!("--dhcp-leasefile={}", leases.display()));
        for (mac, ip) in &config.hosts {
            cmd.arg(format!("--dhcp-host={mac},{ip}"));
        }
        cmd.args(&config.extra);
        let mut daemon = spawn_logged(cmd, &ns.run_dir().join("dnsmasq.log"))?;
        std::thread::sleep(Duration::from_millis(200));
        if let Some(status) = daemon.0.try_wait()? {
            let log = std::fs::read_to_string(ns.run_dir().join("dnsmasq.log")).unwrap_or_default();
            bail!("dnsmasq exited at once ({status}): {}", log.trim());
        }
        Ok(Dnsmasq { daemon })
    }

    /// dnsmasq's pid.
    pub fn pid(&self) -> u32 {
        self.daemon.0.id()
    }
}

/// A reference TFTP server (tftpd-hpa or dnsmasq's TFTP) in the foreground inside a namespace,
/// optionally pinned to CPUs with taskset; killed on drop.
#[derive(Debug)]
pub struct TftpPeer {
    daemon: Daemon,
    log: std::path::PathBuf,
}

impl TftpPeer {
    /// tftpd-hpa (`in.tftpd -L`) serving `root` on `addr` ("IP:PORT"), as root (so that it
    /// reads the run folder), largest blksize 65464. It logs to syslog only, and cannot bind in
    /// a namespace whose only address is on loopback (AI_ADDRCONFIG): add a link with an
    /// address first.
    ///
    /// # Errors
    /// When it cannot start or exits at once.
    pub fn tftpd_hpa(ns: &Netns, root: &Path, addr: &str, cpus: Option<&str>) -> Result<TftpPeer> {
        let args: Vec<String> = [
            "in.tftpd",
            "-L",
            "-u",
            "root",
            "-B",
            "65464",
            "--address",
            addr,
            "-s",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([root.display().to_string()])
        .collect();
        Self::start(ns, "tftpd-hpa", &args, cpus)
    }

    /// dnsmasq with only its TFTP server (port 69 on `ip`), serving `root`. The EDNS packet
    /// limit is raised, since dnsmasq otherwise grants no blksize above 2263.
    ///
    /// # Errors
    /// When it cannot start or exits at once.
    pub fn dnsmasq(ns: &Netns, root: &Path, ip: &str, cpus: Option<&str>) -> Result<TftpPeer> {
        let args = vec![
            "dnsmasq".to_string(),
            "--no-daemon".into(),
            "--conf-file=/dev/null".into(),
            "--port=0".into(),
            "--bind-interfaces".into(),
            format!("--listen-address={ip}"),
            "--user=root".into(),
            "--group=root".into(),
            "--log-facility=-".into(),
            format!(
                "--pid-file={}",
                ns.run_dir().join("dnsmasq-tftp.pid").display()
            ),
            "--enable-tftp".into(),
            format!("--tftp-root={}", root.display()),
            "--edns-packet-max=65535".into(),
        ];
        Self::start(ns, "dnsmasq-tftp", &args, cpus)
    }

    fn start(ns: &Netns, name: &str, args: &[String], cpus: Option<&str>) -> Result<TftpPeer> {
        let mut cmd = match cpus {
            Some(c) => {
                let mut cmd = ns.command("taskset");
                cmd.args(["-c", c]).args(args);
                cmd
            }
            None => {
                let mut cmd = ns.command(&args[0]);
                cmd.args(&args[1..]);
                cmd
            }
        };
        cmd.env("NO_COLOR", "1");
        let log = ns.run_dir().join(format!("{name}.log"));
        let mut daemon = spawn_logged(cmd, &log)?;
        std::thread::sleep(Duration::from_millis(200));
        if let Some(status) = daemon.0.try_wait()? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("{name} exited at once ({status}): {}", text.trim());
        }
        Ok(TftpPeer { daemon, log })
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.daemon.0.id()
    }
}

/// A `[server]` + `[tftp]` configuration for pxeroot-target serving `root` on `address:port`;
/// `extra` lines go into `[tftp]` (e.g. "max_transfers = 2").
pub fn pxeroot_tftp_config(address: &str, port: u16, root: &Path, extra: &[&str]) -> String {
    let mut s = format!(
        "[server]\naddress = \"{address}\"\n\n[tftp]\nroot = \"{}\"\nport = {port}\n",
        root.display()
    );
    for line in extra {
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// Guest-side shell: bring `eth0` up once the driver has created it.
pub fn guest_link_up() -> &'static str {
    "n=0; while [ ! -e /sys/class/net/eth0 ]; do n=$((n+1)); [ $n -gt 500 ] && fail 'no eth0'; sleep 0.01; done\n\
     ip link set lo up\n\
     ip link set eth0 up || fail 'eth0 up'\n\
     stamp link-up\n"
}

/// Guest-side shell: a static address.
pub fn guest_static_ip(cidr: &str) -> String {
    format!("ip addr add {cidr} dev eth0 || fail 'address {cidr}'\nstamp network-configured\n")
}

/// The udhcpc event script, installed at /etc/udhcpc.script: applies the lease and reports it.
pub const UDHCPC_SCRIPT: &str = "#!/bin/sh\n\
case \"$1\" in\n\
  bound|renew)\n\
    ip addr flush dev \"$interface\"\n\
    ip addr add \"$ip/$mask\" dev \"$interface\"\n\
    [ -n \"$router\" ] && ip route add default via \"${router%% *}\"\n\
    echo \"PXRT-DHCP bound $ip/$mask on $interface from $serverid\"\n\
    ;;\n\
esac\n";

/// Guest-side shell: DHCP with busybox udhcpc (needs [`UDHCPC_SCRIPT`] at /etc/udhcpc.script).
pub fn guest_udhcpc() -> &'static str {
    "udhcpc -i eth0 -s /etc/udhcpc.script -f -q -n -t 10 -T 1 || fail 'udhcpc: no lease'\n\
     stamp network-configured\n"
}

/// Guest-side shell: log in with iscsistart (`params` are `-P name=value` node settings) and
/// wait for the disk.
pub fn guest_iscsistart(
    initiator: &str,
    target: &str,
    portal: &str,
    chap: Option<&Chap>,
    mutual: Option<&Chap>,
    params: &[&str],
) -> String {
    let mut cmd = format!("iscsistart -i {initiator} -t {target} -g 1 -a {portal} -p 3260");
    if let Some(c) = chap {
        cmd.push_str(&format!(" -u {} -w {}", c.user, c.secret));
    }
    if let Some(c) = mutual {
        cmd.push_str(&format!(" -U {} -W {}", c.user, c.secret));
    }
    for p in params {
        cmd.push_str(&format!(" -P {p}"));
    }
    format!(
        "{cmd} || fail 'iscsistart login to {target} at {portal}'\n\
         stamp session-operational\n\
         n=0; while [ ! -b /dev/sda ]; do n=$((n+1)); [ $n -gt 1000 ] && fail 'no /dev/sda'; sleep 0.01; done\n\
         stamp root-device-ready\n"
    )
}

/// Guest-side shell: mount the root disk (/dev/sda) read-only and print the marker file.
pub fn guest_mount_and_print(marker_path: &str) -> String {
    guest_mount_device_and_print("/dev/sda", marker_path)
}

/// Guest-side shell: mount `device` (a path, or a shell expression such as `"$dev"`) read-only
/// and print the marker file. The mount is retried for up to 2 s: the device node can appear a
/// moment before the disk can be read (`PXRT-MOUNT-RETRIES n` tells when that happened).
pub fn guest_mount_device_and_print(device: &str, marker_path: &str) -> String {
    format!(
        "n=0; while ! mount -t ext4 -o ro {device} /mnt 2>/dev/null; do n=$((n+1)); \
           if [ $n -gt 200 ]; then mount -t ext4 -o ro {device} /mnt || fail \"mount {device}\"; break; fi; \
           sleep 0.01; done\n\
         [ $n -gt 0 ] && echo \"PXRT-MOUNT-RETRIES $n\"\n\
         stamp root-mounted\n\
         echo \"PXRT-MARKER $(cat /mnt/{marker_path})\"\n\
         stamp marker-read\n\
         umount /mnt\n"
    )
}

/// pxeroot-target running `serve` inside a namespace.
#[derive(Debug)]
pub struct PxerootTarget {
    daemon: Daemon,
    log: std::path::PathBuf,
}

impl PxerootTarget {
    /// The binary under test: `$PXEROOT_TARGET`, else the workspace's debug build.
    ///
    /// # Errors
    /// When it has not been built.
    pub fn binary() -> Result<std::path::PathBuf> {
        let path = std::env::var_os("PXEROOT_TARGET")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| crate::paths::workspace_root().join("build/debug/pxeroot-target"));
        if !path.is_file() {
            bail!(
                "{} is missing: run `cargo build -p pxeroot-target` (tools/test does)",
                path.display()
            );
        }
        Ok(path)
    }

    /// Write `config` to the run folder and start `pxeroot-target serve` with it; waits until
    /// every portal listens.
    ///
    /// # Errors
    /// When the server exits or does not listen within 10 s (its log is in the message).
    pub fn start(ns: &Netns, config: &str) -> Result<PxerootTarget> {
        let conf = ns.run_dir().join("pxeroot-target.toml");
        std::fs::write(&conf, config)?;
        let log = ns.run_dir().join("pxeroot-target.log");
        let mut cmd = ns.command(&Self::binary()?.to_string_lossy());
        cmd.args(["serve", "--config"])
            .arg(&conf)
            .env("NO_COLOR", "1");
        let mut daemon = spawn_logged(cmd, &log)?;
        // Every server the file configures must be up: the iSCSI portals always, DHCP and TFTP
        // when their sections are there.
        let mut needles = vec!["iSCSI portal listening"];
        if config.lines().any(|l| l.trim() == "[dhcp]") {
            needles.push("DHCP server listening");
        }
        if config.lines().any(|l| l.trim() == "[tftp]") {
            needles.push("TFTP server listening");
        }
        let listening = || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            needles.iter().all(|n| text.contains(n))
        };
        daemon.wait_ready("pxeroot-target", &log, Duration::from_secs(10), listening)?;
        Ok(PxerootTarget { daemon, log })
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.daemon.0.id()
    }
}

/// A pxeroot-target configuration with one target, LUN 0 on `image`, and one ACL entry.
pub fn pxeroot_config(
    portal: &str,
    target: &str,
    image: &Path,
    initiator: &str,
    chap: Option<&Chap>,
    mutual: Option<&Chap>,
) -> String {
    let mut s = format!(
        "[iscsi]\nlisten = [\"{portal}\"]\n\n[[target]]\nname = \"{target}\"\n\
         [[target.lun]]\nid = 0\npath = \"{}\"\n[[target.acl]]\ninitiator = \"{initiator}\"\n",
        image.display()
    );
    s.push_str(&chap_toml(chap, mutual));
    s
}

/// The `chap = {...}` and `mutual_chap = {...}` lines of a pxeroot-target ACL or client entry.
pub fn chap_toml(chap: Option<&Chap>, mutual: Option<&Chap>) -> String {
    let mut s = String::new();
    for (key, c) in [("chap", chap), ("mutual_chap", mutual)] {
        if let Some(c) = c {
            s.push_str(&format!(
                "{key} = {{ user = \"{}\", secret = \"{}\" }}\n",
                c.user, c.secret
            ));
        }
    }
    s
}
