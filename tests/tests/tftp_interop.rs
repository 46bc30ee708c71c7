//! pxeroot-target's TFTP server against real clients (issue 5): curl at blksize 512, 1468 and
//! 8192, tftp-hpa's `tftp`, and atftp with and without windowsize 16 fetch files byte-identical
//! to the source, across the block-number rollover too; and every kind of bad input is refused
//! with a log line while a valid client is still served right after.
//!
//! Each test starts `pxeroot-target serve` (build/debug, or `$PXEROOT_TARGET`) with a `[server]`
//! and `[tftp]` configuration in a lab namespace, on 10.0.0.2 (one end of a veth pair); the
//! clients run in the same namespace. Crafted datagrams are sent from a thread that entered
//! the namespace with setns(2).

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use pxeroot_tests::bench::tftp::random_bytes;
use pxeroot_tests::netns::Netns;
use pxeroot_tests::peers::{pxeroot_tftp_config, PxerootTarget};
use pxeroot_tests::process::{describe, have_tool, run};
use pxeroot_tests::Lab;

const SERVER: &str = "10.0.0.2";

struct Rig {
    ns: Netns,
    root: PathBuf,
    server: PxerootTarget,
}

/// The lab, and the TFTP clients these tests run.
fn require() {
    Lab::require().unwrap();
    let missing: Vec<&str> = ["curl", "tftp", "atftp"]
        .into_iter()
        .filter(|t| !have_tool(t))
        .collect();
    assert!(
        missing.is_empty(),
        "missing TFTP clients {missing:?}: run tools/setup as root (tools/test does)"
    );
}

/// A namespace with pxeroot-target serving a fresh root; `extra` lines go into `[tftp]`.
fn rig(extra: &[&str]) -> Rig {
    rig_with(extra, None)
}

/// As [`rig`], with `[server] interface` set when `interface` is given.
fn rig_with(extra: &[&str], interface: Option<&str>) -> Rig {
    require();
    let ns = Netns::create().unwrap();
    ns.add_veth("pxs", "pxc", Some(&format!("{SERVER}/24")))
        .unwrap();
    let root = ns.run_dir().join("root");
    std::fs::create_dir_all(root.join("pxelinux.cfg")).unwrap();
    std::fs::write(root.join("pxelinux.cfg/default"), b"DEFAULT linux\n").unwrap();
    let mut config = pxeroot_tftp_config(SERVER, 69, &root, extra);
    if let Some(dev) = interface {
        config = config.replacen("\n", &format!("\ninterface = \"{dev}\"\n"), 1);
    }
    let server = PxerootTarget::start(&ns, &config).unwrap();
    Rig { ns, root, server }
}

impl Rig {
    /// Write `bytes` as `name` under the root.
    fn file(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.root.join(name), bytes).unwrap();
    }

    fn out(&self, tag: &str) -> PathBuf {
        self.ns.run_dir().join(format!("out-{tag}"))
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = self.ns.command("timeout");
        cmd.arg("120").arg(program).args(args);
        let what = describe(&cmd);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        println!(
            "{what}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        out
    }

    fn curl(&self, file: &str, blksize: u16, out: &Path) -> Output {
        let url = format!("tftp://{SERVER}/{file}");
        let b = blksize.to_string();
        // --path-as-is: curl would otherwise resolve "../" in the URL before sending it.
        self.run(
            "curl",
            &[
                "-s",
                "-S",
                "--path-as-is",
                "--tftp-blksize",
                &b,
                &url,
                "-o",
                out.to_str().unwrap(),
            ],
        )
    }

    fn tftp_hpa(&self, file: &str, out: &Path) -> Output {
        let cmd = format!("get {file} {}", out.display());
        let mut args = vec!["-m", "binary", SERVER, "-c"];
        args.extend(cmd.split(' '));
        self.run("tftp", &args)
    }

    fn atftp(&self, file: &str, options: &[&str], out: &Path) -> Output {
        let mut args = Vec::new();
        for o in options {
            args.extend(["--option", o]);
        }
        args.extend(["-g", "-r", file, "-l", out.to_str().unwrap(), SERVER]);
        self.run("atftp", &args)
    }

    /// Assert that `out` holds exactly `expected`, then delete it.
    fn same(&self, out: &Path, expected: &[u8], what: &str) {
        let got = std::fs::read(out).unwrap_or_else(|e| panic!("{what}: no copy: {e}"));
        assert_eq!(got.len(), expected.len(), "{what}: size");
        assert!(got == expected, "{what}: content differs");
        std::fs::remove_file(out).unwrap();
    }

    /// A valid client is served: curl fetches pxelinux.cfg/default.
    fn still_serves(&self) {
        let out = self.out("check");
        let r = self.curl("pxelinux.cfg/default", 1468, &out);
        assert!(r.status.success(), "a valid client is not served");
        self.same(&out, b"DEFAULT linux\n", "valid client after bad input");
    }

    /// Wait until the server log holds a line with every one of `needles`.
    fn wait_log(&self, needles: &[&str], within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            let log = self.server.log_text();
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            if Instant::now() > until {
                panic!("no log line with {needles:?} within {within:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A UDP socket inside the namespace (created by a thread that joined it).
    fn socket(&self) -> UdpSocket {
        let path = format!("/var/run/netns/{}", self.ns.name());
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = std::fs::File::open(&path).unwrap();
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                sock
            })
            .join()
            .unwrap()
        })
    }
}

fn server_addr() -> SocketAddr {
    format!("{SERVER}:69").parse().unwrap()
}

fn rrq(file: &str) -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(file.as_bytes());
    p.push(0);
    p.extend_from_slice(b"octet\0");
    p
}

/// The code and message of an ERROR packet.
fn error_of(p: &[u8]) -> (u16, String) {
    assert!(p.len() >= 4 && p[1] == 5, "not an ERROR packet: {p:?}");
    let msg = p[4..].split(|b| *b == 0).next().unwrap_or_default();
    (
        u16::from_be_bytes([p[2], p[3]]),
        String::from_utf8_lossy(msg).into_owned(),
    )
}

const SIZES: &[usize] = &[0, 511, 512, 513, 1468, 8192, 3 * 1024 * 1024 + 7];

#[test]
fn curl_fetches_byte_identical_files_at_blksize_512_1468_8192_65464() {
    let r = rig(&[]);
    for (i, size) in SIZES.iter().enumerate() {
        let data = random_bytes(*size, i as u64);
        let name = format!("f{size}");
        r.file(&name, &data);
        for blksize in [512u16, 1468, 8192, 65464] {
            let out = r.out(&format!("{name}-{blksize}"));
            let res = r.curl(&name, blksize, &out);
            assert!(res.status.success(), "curl {name} blksize {blksize}");
            r.same(&out, &data, &format!("curl {name} blksize {blksize}"));
        }
    }
}

#[test]
fn tftp_hpa_client_fetches_byte_identical_files() {
    let r = rig(&[]);
    for (i, size) in SIZES.iter().enumerate() {
        let data = random_bytes(*size, 100 + i as u64);
        let name = format!("h{size}");
        r.file(&name, &data);
        let out = r.out(&name);
        let res = r.tftp_hpa(&name, &out);
        assert!(res.status.success(), "tftp get {name}");
        r.same(&out, &data, &format!("tftp-hpa {name}"));
    }
}

#[test]
fn atftp_fetches_byte_identical_files_with_and_without_windowsize_16() {
    let r = rig(&[]);
    for (i, size) in SIZES.iter().enumerate() {
        let data = random_bytes(*size, 200 + i as u64);
        let name = format!("a{size}");
        r.file(&name, &data);
        for options in [
            &[][..],
            &["windowsize 16"][..],
            &["blksize 1468", "windowsize 16"][..],
        ] {
            let out = r.out(&name);
            let res = r.atftp(&name, options, &out);
            assert!(res.status.success(), "atftp {name} {options:?}");
            r.same(&out, &data, &format!("atftp {name} {options:?}"));
        }
    }
    let log = r.server.log_text();
    assert!(
        log.contains("window=16"),
        "no transfer ran with windowsize 16:\n{log}"
    );
}

#[test]
fn block_numbers_roll_over_at_blksize_512() {
    let r = rig(&[]);
    // More than 65535 blocks of 512 bytes: the block number wraps to 0 and goes on.
    let size = 65_535 * 512 + 40_000;
    let data = random_bytes(size, 300);
    r.file("big", &data);
    let out = r.out("big-curl");
    assert!(r.curl("big", 512, &out).status.success(), "curl");
    r.same(&out, &data, "curl blksize 512 across the rollover");
    let out = r.out("big-atftp");
    assert!(
        r.atftp("big", &["windowsize 16"], &out).status.success(),
        "atftp"
    );
    r.same(&out, &data, "atftp windowsize 16 across the rollover");
}

fn refused(r: &Rig, path: &str) {
    let out = r.out("refused");
    let res = r.curl(path, 512, &out);
    assert!(!res.status.success(), "{path} was served");
    assert!(
        !out.exists() || std::fs::read(&out).unwrap().is_empty(),
        "{path}: data came back"
    );
    let line = r.wait_log(
        &["TFTP read refused", &format!("file={path}"), "peer="],
        Duration::from_secs(5),
    );
    println!("{line}");
    r.still_serves();
}

#[test]
fn dot_dot_path_is_refused_and_logged() {
    let r = rig(&[]);
    refused(&r, "../../etc/passwd");
}

#[test]
fn absolute_path_is_refused_and_logged() {
    let r = rig(&[]);
    // curl would strip the leading slash of a URL path; "%2F" keeps it.
    let out = r.out("abs");
    let res = r.curl("%2Fetc/passwd", 512, &out);
    assert!(!res.status.success(), "/etc/passwd was served");
    r.wait_log(
        &["TFTP read refused", "absolute path", "file=/etc/passwd"],
        Duration::from_secs(5),
    );
    // tftp-hpa sends the path as it is.
    let res = r.tftp_hpa("/etc/passwd", &r.out("abs2"));
    let text =
        String::from_utf8_lossy(&res.stdout).to_string() + &String::from_utf8_lossy(&res.stderr);
    assert!(
        text.contains("Access violation") || text.contains("access violation"),
        "tftp-hpa was not told access violation: {text}"
    );
    r.still_serves();
}

#[test]
fn dot_dot_inside_a_subfolder_is_refused_and_logged() {
    let r = rig(&[]);
    refused(&r, "pxelinux.cfg/../../x");
}

#[test]
fn symlink_out_of_the_root_is_refused_and_logged() {
    let r = rig(&[]);
    let secret = r.ns.run_dir().join("secret");
    std::fs::write(&secret, b"outside the root").unwrap();
    std::os::unix::fs::symlink(&secret, r.root.join("escape")).unwrap();
    refused(&r, "escape");
    r.wait_log(&["resolves outside the root"], Duration::from_secs(1));
}

#[test]
fn write_requests_are_refused_and_logged() {
    let r = rig(&[]);
    let upload = r.ns.run_dir().join("upload");
    std::fs::write(&upload, b"data").unwrap();
    let url = format!("tftp://{SERVER}/uploaded");
    let res = r.run("curl", &["-s", "-S", "-T", upload.to_str().unwrap(), &url]);
    assert!(!res.status.success(), "curl -T succeeded");
    r.wait_log(
        &["TFTP write request refused", "file=uploaded"],
        Duration::from_secs(5),
    );
    let cmd = format!("put {} uploaded2", upload.display());
    let mut args = vec!["-m", "binary", SERVER, "-c"];
    args.extend(cmd.split(' '));
    let res = r.run("tftp", &args);
    let text =
        String::from_utf8_lossy(&res.stdout).to_string() + &String::from_utf8_lossy(&res.stderr);
    assert!(
        text.to_lowercase().contains("access violation"),
        "tftp put was not refused: {text}"
    );
    r.wait_log(
        &["TFTP write request refused", "file=uploaded2"],
        Duration::from_secs(5),
    );
    assert!(!r.root.join("uploaded").exists() && !r.root.join("uploaded2").exists());
    r.still_serves();
}

#[test]
fn unknown_opcode_gets_error_4_and_is_logged() {
    let r = rig(&[]);
    let sock = r.socket();
    sock.send_to(&[0, 42, 1, 2, 3, 4], server_addr()).unwrap();
    let mut buf = [0u8; 600];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(error_of(&buf[..n]).0, 4);
    r.wait_log(&["TFTP unknown opcode 42"], Duration::from_secs(5));
    // A truncated request is answered the same way.
    sock.send_to(&[0, 1, b'x'], server_addr()).unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(error_of(&buf[..n]).0, 4);
    r.wait_log(&["TFTP malformed request"], Duration::from_secs(5));
    r.still_serves();
}

#[test]
fn stalled_clients_are_abandoned_and_free_their_slots() {
    let r = rig(&["max_transfers = 2", "timeout_ms = 300", "retries = 2"]);
    let data = random_bytes(100_000, 400);
    r.file("stall", &data);
    let mut buf = [0u8; 2000];
    // Client A asks and never acknowledges.
    let a = r.socket();
    a.send_to(&rrq("stall"), server_addr()).unwrap();
    let (n, _) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..2], &[0, 3], "DATA 1 expected, got {:?}", &buf[..n]);
    // Meanwhile another client is served (the second slot).
    r.still_serves();
    // Client B stalls too: both slots are taken and a third request is refused.
    // (The served client's slot is freed when its last ACK arrives, which may be just after
    // curl exits: B asks again while it is told "too many transfers".)
    let b = r.socket();
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        b.send_to(&rrq("stall"), server_addr()).unwrap();
        let (n, _) = b.recv_from(&mut buf).unwrap();
        if buf[..2] == [0, 3] {
            break;
        }
        assert!(
            Instant::now() < until,
            "B was never served: {:?}",
            &buf[..n]
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let c = r.socket();
    c.send_to(&rrq("stall"), server_addr()).unwrap();
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(error_of(&buf[..n]), (0, "too many transfers".into()));
    r.wait_log(&["TFTP too many transfers"], Duration::from_secs(1));
    // 300 ms timeout, 2 retries: both are abandoned within about a second, and log it.
    r.wait_log(
        &["TFTP transfer abandoned", "file=stall"],
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(500));
    let abandoned = r
        .server
        .log_text()
        .lines()
        .filter(|l| l.contains("TFTP transfer abandoned"))
        .count();
    assert_eq!(abandoned, 2, "{}", r.server.log_text());
    // The slots are free: a full transfer runs.
    let out = r.out("after");
    assert!(r.curl("stall", 1468, &out).status.success());
    r.same(&out, &data, "after the stalled clients");
}

#[test]
fn bound_to_its_interface_it_serves_that_link_only() {
    let r = rig_with(&[], Some("pxs"));
    assert!(
        r.server
            .log_text()
            .contains("TFTP server listening on 10.0.0.2:69"),
        "{}",
        r.server.log_text()
    );
    // The client end of the veth pair moves to a namespace of its own: requests now come in
    // on pxs, the interface the server is bound to.
    let client = Netns::create().unwrap();
    r.ns.ip(&["link", "set", "pxc", "netns", client.name()])
        .unwrap();
    client
        .ip(&["addr", "add", "10.0.0.5/24", "dev", "pxc"])
        .unwrap();
    client.ip(&["link", "set", "pxc", "up"]).unwrap();
    let data = random_bytes(200_000, 500);
    r.file("over-veth", &data);
    // (65464: the zero-copy path over a real link, IP-fragmented at MTU 1500.)
    for blksize in ["1468", "65464"] {
        let out = r.out("veth");
        let mut cmd = client.command("timeout");
        cmd.args(["60", "curl", "-s", "-S", "--tftp-blksize", blksize])
            .arg(format!("tftp://{SERVER}/over-veth"))
            .arg("-o")
            .arg(&out);
        run(&mut cmd).unwrap();
        r.same(
            &out,
            &data,
            &format!("curl over the veth link, blksize {blksize}"),
        );
    }
    // A second link into the server's namespace (10.0.1.0/24, pxs2): a client there that
    // sends to 10.0.0.2 reaches the server's address through pxs2, which the server is not
    // bound to: no answer. (Requests from inside the server's own namespace come over lo and
    // are delivered whatever the binding: the kernel treats local traffic apart.)
    let other = Netns::create().unwrap();
    r.ns.ip(&[
        "link", "add", "pxs2", "type", "veth", "peer", "name", "pxc2",
    ])
    .unwrap();
    r.ns.ip(&["addr", "add", "10.0.1.2/24", "dev", "pxs2"])
        .unwrap();
    r.ns.ip(&["link", "set", "pxs2", "up"]).unwrap();
    r.ns.ip(&["link", "set", "pxc2", "netns", other.name()])
        .unwrap();
    other
        .ip(&["addr", "add", "10.0.1.5/24", "dev", "pxc2"])
        .unwrap();
    other.ip(&["link", "set", "pxc2", "up"]).unwrap();
    other
        .ip(&["route", "add", "10.0.0.0/24", "via", "10.0.1.2"])
        .unwrap();
    let mut cmd = other.command("timeout");
    cmd.args(["10", "curl", "-s", "-m", "3"])
        .arg(format!("tftp://{SERVER}/over-veth"))
        .args(["-o", "/dev/null"]);
    let res = cmd.output().unwrap();
    assert!(
        !res.status.success(),
        "a request that came in on another interface was answered:\n{}",
        r.server.log_text()
    );
    assert!(
        !r.server.log_text().contains("peer=10.0.1.5"),
        "{}",
        r.server.log_text()
    );
}
