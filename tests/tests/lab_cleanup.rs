//! A lab run killed with SIGKILL never drops its guards. The next run must still leave nothing
//! behind: no namespace, no QEMU, no tgtd, no dnsmasq, no run folder, no tgtd control socket.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pxeroot_tests::netns::{cleanup_leftovers, lab_namespaces};
use pxeroot_tests::paths::runs_dir;
use pxeroot_tests::process::alive;
use pxeroot_tests::Lab;

#[test]
fn a_run_killed_with_sigkill_leaves_nothing_after_the_next_cleanup() {
    Lab::require().unwrap();
    let mut victim = Command::new(env!("CARGO_BIN_EXE_pxeroot-lab"))
        .arg("hold")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = victim.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("HELD ") {
                let _ = tx.send(line);
            }
        }
    });
    let held = match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(line) => line,
        Err(e) => {
            let _ = victim.kill();
            panic!("the victim never reported its lab ({e})");
        }
    };
    let fields: Vec<&str> = held.split_whitespace().collect();
    let ns = fields[1].to_string();
    let pids: Vec<i32> = fields[2..].iter().map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 3, "qemu, tgtd and dnsmasq pids in {held:?}");

    // SIGKILL: no destructor runs.
    victim.kill().unwrap();
    victim.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        lab_namespaces().contains(&ns),
        "the killed run's namespace {ns} should still exist"
    );
    for pid in &pids {
        assert!(
            alive(*pid),
            "pid {pid} of the killed run should still be running"
        );
    }
    let sockets: Vec<String> = std::fs::read_to_string(runs_dir().join(&ns).join("cleanup-files"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        sockets.iter().any(|s| std::path::Path::new(s).exists()),
        "tgtd's socket {sockets:?}"
    );

    // What the next run does first.
    let removed = cleanup_leftovers().unwrap();
    assert!(
        removed.contains(&ns),
        "cleanup removed {removed:?}, not {ns}"
    );
    assert!(
        !lab_namespaces().contains(&ns),
        "namespace {ns} survived cleanup"
    );
    for pid in &pids {
        assert!(!alive(*pid), "pid {pid} survived cleanup");
    }
    assert!(
        !runs_dir().join(&ns).exists(),
        "run folder of {ns} survived cleanup"
    );
    for s in &sockets {
        assert!(!std::path::Path::new(s).exists(), "{s} survived cleanup");
    }
}
