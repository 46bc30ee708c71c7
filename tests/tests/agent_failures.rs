//! pxeroot-initiator fails fast and says why: a target that is down (connection refused, within
//! the retry budget), a wrong CHAP secret (authentication failure, not retried), no DHCP server;
//! and a target that comes up 20 s after the guest is still reached within the default budget.
//!
//! Run with `cargo test -p pxeroot-tests --test agent_failures -- --show-output` as root.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use pxeroot_tests::scenario::{agent_chain, AgentOptions, Auth, Report};
use pxeroot_tests::Lab;

fn run(opts: AgentOptions) -> Report {
    let lab = Lab::require().unwrap();
    let report = agent_chain(&lab, &opts).unwrap();
    println!("{}", report.timeline);
    for line in &report.agent_errors {
        println!("console: {line}");
    }
    report
}

/// The agent exited `code` within `limit` seconds of its start (guest clock).
fn assert_failed(report: &Report, code: i32, limit: f64) -> f64 {
    if let Err(e) = report.agent_failed_with(code) {
        panic!(
            "{e}\nconsole from the agent's start:\n{}",
            report.agent_console()
        );
    }
    let took = report
        .agent_seconds()
        .unwrap_or_else(|| panic!("no agent-start/agent-failed stamps\n{}", report.timeline));
    println!("agent exited {code} after {took:.2} s (limit {limit} s)");
    assert!(took < limit, "the agent took {took:.2} s, limit {limit} s");
    took
}

/// An agent message containing every one of `needles` (case-insensitive).
fn assert_says(report: &Report, needles: &[&str]) {
    let found = report.agent_errors.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        needles.iter().all(|n| l.contains(&n.to_ascii_lowercase()))
    });
    assert!(
        found,
        "no agent message with {needles:?}; it printed {:?}\n{}",
        report.agent_errors,
        report.agent_console()
    );
}

#[test]
fn target_down_is_reported_as_connection_refused_within_the_budget() {
    let report = run(AgentOptions {
        target_down: true,
        extra_cmdline: "pxeroot.timeout=10".into(),
        ..Default::default()
    });
    assert_failed(&report, 12, 10.0 + 3.0);
    assert_says(&report, &["connection refused", "10.0.0.2:3260"]);
}

#[test]
fn wrong_chap_secret_is_reported_as_an_authentication_failure_at_once() {
    let report = run(AgentOptions {
        auth: Auth::Chap,
        wrong_secret: true,
        ..Default::default()
    });
    assert_failed(&report, 14, 5.0);
    assert_says(&report, &["authentication"]);
}

#[test]
fn no_dhcp_server_is_reported_as_no_lease_within_the_budget() {
    let report = run(AgentOptions {
        dhcp: false,
        extra_cmdline: "pxeroot.timeout=10 pxeroot.dhcp_timeout=5".into(),
        ..Default::default()
    });
    assert_failed(&report, 11, 10.0 + 3.0);
}

#[test]
fn target_up_20_s_after_the_guest_is_reached_and_the_boot_completes() {
    let report = run(AgentOptions {
        target_delay: Some(Duration::from_secs(20)),
        ..Default::default()
    });
    if let Err(e) = report.booted() {
        panic!(
            "{e}\nconsole from the agent's start:\n{}",
            report.agent_console()
        );
    }
    let started = report.target_started.unwrap();
    let done = report.timeline.step("agent-done").unwrap().host;
    assert!(
        done > started,
        "the agent finished at {done:?}, before the target started at {started:?}"
    );
    let waited = report.agent_seconds().unwrap();
    println!(
        "target started {:.1} s after QEMU; agent done at {:.1} s after {waited:.1} s",
        started.as_secs_f64(),
        done.as_secs_f64()
    );
}

/// A LUN the target does not have: exit 15 naming the LUN and the LUNs the target has, and the
/// half-built kernel session is gone (no /sys/class/iscsi_session/session* left behind).
#[test]
fn a_missing_lun_is_reported_and_its_kernel_session_removed() {
    let report = run(AgentOptions {
        extra_cmdline: "pxeroot.lun=5".into(),
        ..Default::default()
    });
    assert_failed(&report, 15, 20.0);
    assert_says(&report, &["LUN 5 not present", "target has LUN 0"]);
    let console = report.agent_console();
    let sessions = console
        .lines()
        .find_map(|l| l.split_once("PXRT-SESSIONS").map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no PXRT-SESSIONS line\n{console}"));
    assert_eq!(sessions, ".", "sessions left after the failure:\n{console}");
}
