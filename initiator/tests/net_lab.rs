//! The network phase end to end, as root, in network namespaces: a veth pair whose server end
//! lives in one namespace with dnsmasq (Debian's dnsmasq-base) and whose client end lives in
//! another, where `pxeroot-initiator net-up` runs under `ip netns exec`. Two namespaces,
//! not one, because in a single namespace the kernel picks the server's address as the
//! source of the client's broadcast and then drops it as a local source on the server end;
//! a diskless client has no other address, which is what the client namespace reproduces.
//!
//! Like the other lab tests, these fail (with the reason) instead of skipping when root or
//! dnsmasq is missing: tools/setup installs what they need.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pxeroot-initiator");
const MAC: &str = "52:54:00:12:34:56";
const BOOTIF: &str = "BOOTIF=01-52-54-00-12-34-56";
const SECRET: &str = "Lab-S3cr3t-Passw0rd";

fn require() {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root (network namespaces)");
    }
    if Command::new("dnsmasq").arg("--version").output().is_err() {
        missing.push("dnsmasq (apt-get install dnsmasq-base)");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        missing.push("ip (apt-get install iproute2)");
    }
    assert!(
        missing.is_empty(),
        "net_lab needs: {}; run tools/setup as root",
        missing.join(", ")
    );
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) -> String {
    String::from_utf8(run(Command::new("ip").args(args)).stdout).unwrap()
}

/// Two namespaces joined by a veth pair (`srv` 10.77.0.1/24 | `cli` with [`MAC`]), optionally
/// with dnsmasq on `srv`. Dropping it kills dnsmasq and deletes both namespaces, also when
/// the test fails.
struct Lab {
    server: String,
    client: String,
    dir: tempfile::TempDir,
    dnsmasq: Option<Child>,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        require();
        let pid = std::process::id();
        let server = format!("pxnet-{pid}-{tag}-s");
        let client = format!("pxnet-{pid}-{tag}-c");
        for ns in [&server, &client] {
            // A leftover from a killed run with a recycled pid.
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
            dnsmasq: None,
            server,
            client,
        };
        ip(&["netns", "add", &lab.server]);
        ip(&["netns", "add", &lab.client]);
        ip(&[
            "-n",
            &lab.server,
            "link",
            "add",
            "srv",
            "type",
            "veth",
            "peer",
            "name",
            "cli",
            "netns",
            &lab.client,
        ]);
        ip(&["-n", &lab.client, "link", "set", "cli", "address", MAC]);
        ip(&[
            "-n",
            &lab.server,
            "addr",
            "add",
            "10.77.0.1/24",
            "dev",
            "srv",
        ]);
        ip(&["-n", &lab.server, "link", "set", "srv", "up"]);
        lab
    }

    /// Starts dnsmasq with a reservation for [`MAC`] and waits until it serves.
    fn dnsmasq(&mut self, extra: &[&str]) {
        let leases = self.dir.path().join("leases");
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.server,
            "dnsmasq",
            "--keep-in-foreground",
        ])
        .args(["--conf-file=/dev/null", "--log-facility=-", "--log-dhcp"])
        .args([
            "--port=0",
            "--interface=srv",
            "--bind-interfaces",
            "--user=root",
        ])
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .arg("--dhcp-range=10.77.0.100,10.77.0.200,255.255.255.0,1h")
        .arg(format!("--dhcp-host={MAC},10.77.0.5,client1"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        self.dnsmasq = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("DHCP, sockets bound") => break,
                Ok(_) => {}
                Err(e) => panic!("dnsmasq did not start: {e}"),
            }
        }
    }

    fn net_up(&self, cmdline: &str) -> (i32, String, String) {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client,
                BIN,
                "net-up",
                "--cmdline",
                cmdline,
            ])
            .arg("--run-dir")
            .arg(self.run_dir())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn client_ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.client.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn dhcp_from_dnsmasq_configures_address_route_mtu_and_run_files() {
    let mut lab = Lab::new("dhcp");
    let root_path = "iscsi:10.77.0.1::3260:1:iqn.2026-11.org.example:disk1";
    lab.dnsmasq(&[
        "--dhcp-option=3,10.77.0.1",
        "--dhcp-option=6,10.77.0.1",
        "--dhcp-option=15,lab.example",
        "--dhcp-option=26,1400",
        &format!("--dhcp-option=17,{root_path}"),
        "--dhcp-option=203,iqn.2026-11.org.example:client1",
        "--dhcp-option=encap:175,190,alice",
        &format!("--dhcp-option=encap:175,191,{SECRET}"),
    ]);
    let t = Instant::now();
    let (code, stdout, stderr) = lab.net_up(&format!("{BOOTIF} netroot=dhcp"));
    let took = t.elapsed();
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    assert!(stderr.contains("cli: link up, carrier after"), "{stderr}");
    assert!(
        stderr.contains("cli: DHCP 10.77.0.5/24 from 10.77.0.1 in"),
        "{stderr}"
    );
    // The first DISCOVER is answered: no 4 s retransmission.
    assert!(took < Duration::from_secs(3), "took {took:?}: {stderr}");

    let up: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(up["ifname"], "cli");
    assert_eq!(up["mac"], MAC);
    assert_eq!(up["address"], serde_json::json!(["10.77.0.5", 24]));
    assert_eq!(up["gateway"], "10.77.0.1");
    assert_eq!(up["mtu"], 1400);
    assert_eq!(up["hostname"], "client1");
    assert_eq!(up["domain"], "lab.example");
    assert_eq!(up["lease"]["server_id"], "10.77.0.1");
    assert_eq!(up["lease"]["lease_secs"], 3600);
    assert_eq!(up["dhcp"]["root_path"], root_path);
    assert_eq!(
        up["dhcp"]["initiator_name"],
        "iqn.2026-11.org.example:client1"
    );
    assert_eq!(up["dhcp"]["username"], "alice");
    assert_eq!(up["dhcp"]["password"], "<redacted>");

    let addr = lab.client_ip(&["-4", "addr", "show", "dev", "cli"]);
    assert!(
        addr.contains("inet 10.77.0.5/24 brd 10.77.0.255 scope global cli"),
        "{addr}"
    );
    let link = lab.client_ip(&["link", "show", "dev", "cli"]);
    assert!(link.contains("mtu 1400") && link.contains(",UP,"), "{link}");
    let route = lab.client_ip(&["-4", "route", "show", "default"]);
    assert!(
        route.contains("default via 10.77.0.1 dev cli proto dhcp"),
        "{route}"
    );

    let conf = read(&lab.run_dir().join("net-cli.conf"));
    for line in [
        "DEVICE='cli'",
        "PROTO='dhcp'",
        "IPV4ADDR='10.77.0.5'",
        "IPV4BROADCAST='10.77.0.255'",
        "IPV4NETMASK='255.255.255.0'",
        "IPV4GATEWAY='10.77.0.1'",
        "IPV4DNS0='10.77.0.1'",
        "HOSTNAME='client1'",
        "DNSDOMAIN='lab.example'",
        &format!("ROOTPATH='{root_path}'"),
        "DHCPLEASETIME='3600'",
    ] {
        assert!(conf.lines().any(|l| l == line), "{line} missing:\n{conf}");
    }
    assert!(!conf.contains(SECRET) && !conf.contains("alice"));
    assert_eq!(
        read(&lab.run_dir().join("initramfs/open-iscsi.interface")),
        "cli\n"
    );

    // Running again (a retry) replaces instead of failing on existing address and route.
    let (code, _, stderr) = lab.net_up(&format!("{BOOTIF} netroot=dhcp"));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn static_address_from_ip_parameter() {
    let lab = Lab::new("static");
    let (code, stdout, stderr) = lab.net_up(
        "ip=10.77.0.9::10.77.0.1:255.255.255.0:host9:cli:none:10.77.0.53 \
         root=iscsi:10.77.0.1::3260:1:iqn.2026-11.org.example:disk1",
    );
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("cli: static 10.77.0.9/24, router 10.77.0.1"),
        "{stderr}"
    );
    let addr = lab.client_ip(&["-4", "addr", "show", "dev", "cli"]);
    assert!(addr.contains("inet 10.77.0.9/24 brd 10.77.0.255"), "{addr}");
    let route = lab.client_ip(&["-4", "route", "show", "default"]);
    assert!(route.contains("default via 10.77.0.1 dev cli"), "{route}");
    let conf = read(&lab.run_dir().join("net-cli.conf"));
    assert!(
        conf.contains("PROTO='none'\nIPV4ADDR='10.77.0.9'\n"),
        "{conf}"
    );
}

#[test]
fn no_dhcp_server_fails_with_exit_11_and_the_count() {
    let lab = Lab::new("nodhcp");
    let t = Instant::now();
    // DISCOVERs at 0 s and 4±1 s; a third would come at 12±2 s.
    let (code, _, stderr) = lab.net_up(&format!("{BOOTIF} netroot=dhcp pxeroot.dhcp_timeout=6"));
    assert_eq!(code, 11, "{stderr}");
    assert!(
        stderr.contains("cli: no DHCP offer after 6 s (sent 2 DISCOVERs)"),
        "{stderr}"
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(9),
        "{took:?}"
    );
}

#[test]
fn unknown_mac_fails_with_exit_10_listing_interfaces() {
    let lab = Lab::new("nomac");
    let (code, _, stderr) =
        lab.net_up("BOOTIF=01-52-54-00-99-99-99 netroot=dhcp pxeroot.link_timeout=1");
    assert_eq!(code, 10, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no interface with MAC 52:54:00:99:99:99 (have: cli {MAC}) after 1 s"
        )),
        "{stderr}"
    );
}
