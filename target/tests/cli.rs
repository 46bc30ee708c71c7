//! The command line: `check` explains every problem with its line and exits 2; `serve` stops
//! cleanly with exit 0 on SIGTERM and SIGINT.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pxeroot-target");

fn temp(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pxrt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn check_names_each_problem_with_its_line_and_exits_2() {
    let conf = temp(
        "bad.toml",
        b"[iscsi]\nlisten = [\"0.0.0.0:70000\"]\n[[target]]\nname = \"disk\"\n[[target.lun]]\nid = 0\npath = \"/nonexistent.img\"\n\
          [[target.acl]]\ninitiator = \"*\"\nchap = { user = \"u\", secret = \"abcdefghijklmnop\" }\n\
          mutual_chap = { user = \"t\", secret = \"abcdefghijklmnop\" }\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "line 2, column 11: error: iscsi.listen",
        "line 4, column 8: error: target.name \"disk\" is not an iSCSI name",
        "line 7, column 8: error: target.lun.path /nonexistent.img",
        "line 11, column 15: error: target.acl.mutual_chap.secret equals chap.secret",
        "4 error(s)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !err.contains("abcdefghijklmnop"),
        "a secret was printed:\n{err}"
    );
}

#[test]
fn check_accepts_a_good_file() {
    let image = temp("ok.img", &[0u8; 4096]);
    let conf = temp(
        "ok.toml",
        format!(
            "[[target]]\nname = \"iqn.2026-11.org.example:disk1\"\n[[target.lun]]\nid = 0\npath = \"{}\"\n\
             [[target.acl]]\ninitiator = \"*\"\n",
            image.display()
        )
        .as_bytes(),
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: 1 target(s), 1 LUN(s), 1 portal(s)"));
}

fn serve_then_signal(signal: nix::sys::signal::Signal) {
    let image = temp(&format!("sig-{signal}.img"), &[0u8; 65536]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let conf = temp(
        &format!("sig-{signal}.toml"),
        format!(
            "[iscsi]\nlisten = [\"127.0.0.1:{port}\"]\n[[target]]\nname = \"iqn.2026-11.org.example:disk1\"\n\
             [[target.lun]]\nid = 0\npath = \"{}\"\n[[target.acl]]\ninitiator = \"*\"\n",
            image.display()
        )
        .as_bytes(),
    );
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&conf)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("iSCSI portal listening"));
    assert!(listening, "the server never listened");
    // A client connected when the signal arrives does not keep the server alive.
    let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "exit status after {signal}");
}

#[test]
fn serve_exits_0_on_sigterm() {
    serve_then_signal(nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn serve_exits_0_on_sigint() {
    serve_then_signal(nix::sys::signal::Signal::SIGINT);
}
