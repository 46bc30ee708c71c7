//! `pxeroot-initiator probe` end to end on 127.0.0.1, against pxeroot-target (built with
//! `cargo build -p pxeroot-target`, or `$PXEROOT_TARGET`) and against tgtd (Debian's tgt,
//! needs root; skipped with a note when tgtd is not installed).
//!
//! Every secret is passed through the environment, and no output may contain it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const TARGET: &str = "iqn.2026-11.org.example:disk1";
const INITIATOR: &str = "iqn.2026-11.org.example:probe-test";
const SECRET: &str = "client-secret-1";
const TARGET_SECRET: &str = "target-secret-1";
const SIZE: u64 = 48 * 1024 * 1024;

/// A child process killed (and reaped) on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pxeroot-probe-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn image(&self) -> PathBuf {
        let p = self.0.join("disk.img");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(SIZE).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr, child: &mut Child, what: &str, log: &Path) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} does not listen on {addr}");
}

fn target_binary() -> PathBuf {
    let path = std::env::var_os("PXEROOT_TARGET").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/debug/pxeroot-target"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p pxeroot-target` first",
        path.display()
    );
    path
}

/// pxeroot-target serving LUN 0 of `TARGET` to `INITIATOR` on a loopback port, with one-way
/// and mutual CHAP.
fn pxeroot_target(dir: &Scratch) -> (Daemon, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.0.join("pxeroot.toml");
    std::fs::write(
        &conf,
        format!(
            "[iscsi]\nlisten = [\"{addr}\"]\n\n[[target]]\nname = \"{TARGET}\"\n\
             [[target.lun]]\nid = 0\npath = \"{}\"\nserial = \"PROBE0\"\n\
             [[target.acl]]\ninitiator = \"{INITIATOR}\"\n\
             chap = {{ user = \"client\", secret = \"{SECRET}\" }}\n\
             mutual_chap = {{ user = \"target\", secret = \"{TARGET_SECRET}\" }}\n",
            dir.image().display()
        ),
    )
    .unwrap();
    let log = dir.0.join("target.log");
    let mut child = Command::new(target_binary())
        .args(["serve", "--config"])
        .arg(&conf)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.0.join("target.err")).unwrap())
        .spawn()
        .unwrap();
    wait_listening(addr, &mut child, "pxeroot-target", &log);
    (Daemon(child), addr)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn probe(addr: SocketAddr, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pxeroot-initiator"));
    cmd.args(["probe", "--portal", &addr.to_string(), "--timeout", "5"])
        .args(["--initiator", INITIATOR])
        .args(extra)
        .env_remove("PXEROOT_CHAP_SECRET")
        .env_remove("PXEROOT_CHAP_MUTUAL_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    for secret in [SECRET, TARGET_SECRET, "wrong-secret-99"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret in the output:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

const CHAP_ENV: [(&str, &str); 2] = [
    ("PXEROOT_CHAP_SECRET", SECRET),
    ("PXEROOT_CHAP_MUTUAL_SECRET", TARGET_SECRET),
];

#[test]
fn pxeroot_target_lun_found_with_size() {
    let dir = Scratch::new("pt");
    let (_t, addr) = pxeroot_target(&dir);
    let r = probe(
        addr,
        &[
            "--target",
            TARGET,
            "--chap",
            "client",
            "--mutual-user",
            "target",
        ],
        &CHAP_ENV,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!("portal     {addr}")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("CHAP SHA-256"), "{}", r.stdout);
    assert!(r.stdout.contains("luns       0\n"), "{}", r.stdout);
    assert!(r.stdout.contains("serial     PROBE0"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "size       {SIZE} bytes ({} blocks x 512)",
            SIZE / 512
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("ready      yes"), "{}", r.stdout);

    // The same as JSON.
    let r = probe(
        addr,
        &[
            "--target",
            TARGET,
            "--chap",
            "client",
            "--mutual-user",
            "target",
            "--json",
        ],
        &CHAP_ENV,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["present"], true);
    assert_eq!(v["chap"], "SHA-256");
    assert_eq!(v["luns"], serde_json::json!([0]));
    assert_eq!(v["device"]["size_bytes"], SIZE);
    assert_eq!(v["device"]["block_size"], 512);
    assert_eq!(v["device"]["vendor"], "PXEROOT");
    assert_eq!(v["negotiated"]["immediate_data"], true);
}

#[test]
fn pxeroot_target_secret_file() {
    let dir = Scratch::new("pf");
    let (_t, addr) = pxeroot_target(&dir);
    let file = dir.0.join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let r = probe(
        addr,
        &[
            "--target",
            TARGET,
            "--chap",
            "client",
            "--secret-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn pxeroot_target_failures() {
    let dir = Scratch::new("px");
    let (_t, addr) = pxeroot_target(&dir);
    // Wrong secret: 14.
    let r = probe(
        addr,
        &["--target", TARGET, "--chap", "client"],
        &[("PXEROOT_CHAP_SECRET", "wrong-secret-99")],
    );
    assert_eq!(r.code, 14, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{addr}: login rejected: authentication failed (status 0x0201)"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    // The target proves itself with a secret we do not expect: 14 as well.
    let r = probe(
        addr,
        &[
            "--target",
            TARGET,
            "--chap",
            "client",
            "--mutual-user",
            "target",
        ],
        &[
            ("PXEROOT_CHAP_SECRET", SECRET),
            ("PXEROOT_CHAP_MUTUAL_SECRET", "wrong-secret-99"),
        ],
    );
    assert_eq!(r.code, 14, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("mutual CHAP: the target's response did not match"),
        "{}",
        r.stderr
    );
    // Absent LUN: 15, with the list the target has.
    let r = probe(
        addr,
        &["--target", TARGET, "--chap", "client", "--lun", "3"],
        &CHAP_ENV,
    );
    assert_eq!(r.code, 15, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "LUN 3 not found on {TARGET}: the target reports LUN 0"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("lun 3      absent"), "{}", r.stdout);
    // Unknown target: 13.
    let r = probe(
        addr,
        &[
            "--target",
            "iqn.2026-11.org.example:nope",
            "--chap",
            "client",
        ],
        &CHAP_ENV,
    );
    assert_eq!(r.code, 13, "{}", r.stderr);
    assert!(
        r.stderr.contains("target not found (status 0x0203)"),
        "{}",
        r.stderr
    );
    // Nothing listening: 12.
    let closed: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let r = probe(closed, &["--target", TARGET], &[]);
    assert_eq!(r.code, 12, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{closed}: connection refused")),
        "{}",
        r.stderr
    );
    // CHAP without a secret anywhere: a usage error, before any connection.
    let r = probe(addr, &["--target", TARGET, "--chap", "client"], &[]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("PXEROOT_CHAP_SECRET"), "{}", r.stderr);
}

/// tgtd with a control port of its own (tgtd takes ports up to 32767; its socket lives in
/// /var/run/tgtd, shared by every tgtd on the machine).
struct Tgtd {
    _daemon: Daemon,
    control: u32,
    addr: SocketAddr,
}

impl Tgtd {
    fn start(dir: &Scratch) -> Option<Tgtd> {
        if !Path::new("/usr/sbin/tgtd").exists() {
            eprintln!("tgtd is not installed: skipping the tgt tests");
            return None;
        }
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let base = (std::process::id() % 300) * 100 + 1050;
        let control = (0..100)
            .map(|_| base + SEQ.fetch_add(1, Ordering::Relaxed) % 50)
            .find(|p| !Path::new(&format!("/var/run/tgtd/socket.{p}.lock")).exists())
            .expect("a free tgtd control port");
        std::fs::create_dir_all("/var/run/tgtd").unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.0.join("tgtd.log");
        let mut child = Command::new("tgtd")
            .args(["-f", "--iscsi", &format!("portal={addr}"), "-C"])
            .arg(control.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.0.join("tgtd.err")).unwrap())
            .spawn()
            .unwrap();
        wait_listening(addr, &mut child, "tgtd", &log);
        let t = Tgtd {
            _daemon: Daemon(child),
            control,
            addr,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while t.adm(&["--op", "show", "--mode", "sys"]).is_err() {
            assert!(Instant::now() < until, "tgtadm gets no answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(t)
    }

    fn adm(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new("tgtadm")
            .args(["-C", &self.control.to_string(), "--lld", "iscsi"])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        for suffix in ["", ".lock"] {
            let _ = std::fs::remove_file(format!("/var/run/tgtd/socket.{}{suffix}", self.control));
        }
    }
}

#[test]
fn tgtd_lun_found_with_chap_and_failures() {
    let dir = Scratch::new("tgt");
    let Some(tgt) = Tgtd::start(&dir) else {
        return;
    };
    let image = dir.image();
    let image = image.to_str().unwrap();
    for args in [
        &[
            "--op", "new", "--mode", "target", "--tid", "1", "-T", TARGET,
        ][..],
        &[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "1",
            "-b",
            image,
        ],
        &[
            "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL",
        ],
        &[
            "--op",
            "new",
            "--mode",
            "account",
            "--user",
            "client",
            "--password",
            SECRET,
        ],
        &[
            "--op", "bind", "--mode", "account", "--tid", "1", "--user", "client",
        ],
    ] {
        tgt.adm(args).unwrap();
    }
    // tgt takes CHAP_A=7 for SHA-1: the login falls back to MD5 alone.
    let r = probe(
        tgt.addr,
        &["--target", TARGET, "--chap", "client", "--lun", "1"],
        &CHAP_ENV,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("CHAP MD5"), "{}", r.stdout);
    assert!(r.stdout.contains("luns       0, 1\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("\"IET\" \"VIRTUAL-DISK\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "size       {SIZE} bytes ({} blocks x 512)",
            SIZE / 512
        )),
        "{}",
        r.stdout
    );
    // LUN 0 is tgt's controller, not a disk; LUN 2 does not exist.
    let r = probe(
        tgt.addr,
        &["--target", TARGET, "--chap", "client", "--lun", "2"],
        &CHAP_ENV,
    );
    assert_eq!(r.code, 15, "{}{}", r.stdout, r.stderr);
    let r = probe(
        tgt.addr,
        &["--target", TARGET, "--chap", "client", "--lun", "1"],
        &[("PXEROOT_CHAP_SECRET", "wrong-secret-99")],
    );
    assert_eq!(r.code, 14, "{}", r.stderr);
    assert!(
        r.stderr.contains("authentication failed (status 0x0201)"),
        "{}",
        r.stderr
    );
    // A target that insists on digests: CRC32C on both, checked in userspace.
    const DIGESTS: &str = "iqn.2026-11.org.example:digests";
    for args in [
        &[
            "--op", "new", "--mode", "target", "--tid", "2", "-T", DIGESTS,
        ][..],
        &[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            "2",
            "--lun",
            "1",
            "-b",
            image,
        ],
        &[
            "--op", "bind", "--mode", "target", "--tid", "2", "-I", "ALL",
        ],
        &[
            "--op",
            "update",
            "--mode",
            "target",
            "--tid",
            "2",
            "--name",
            "HeaderDigest",
            "--value",
            "CRC32C",
        ],
        &[
            "--op",
            "update",
            "--mode",
            "target",
            "--tid",
            "2",
            "--name",
            "DataDigest",
            "--value",
            "CRC32C",
        ],
    ] {
        tgt.adm(args).unwrap();
    }
    let r = probe(tgt.addr, &["--target", DIGESTS, "--lun", "1"], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("HeaderDigest=CRC32C DataDigest=CRC32C"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("no authentication"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("size       {SIZE} bytes")),
        "{}",
        r.stdout
    );
}
