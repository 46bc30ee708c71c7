//! pxeroot-initiator boots the guest: the static agent in a busybox initramfs brings up the NIC
//! with DHCP from dnsmasq, logs in to the target, hands the session to the kernel and reports the
//! root block device, which the guest mounts to print the disk's per-run marker. Every parameter
//! style (Debian, root=iscsi:, netroot=iscsi:, netroot=dhcp) and every kind of authentication
//! (none, CHAP, mutual CHAP) against both targets (pxeroot-target, tgtd).
//!
//! Run with `cargo test -p pxeroot-tests --test agent_boot -- --show-output` as root. The agent
//! comes from `build/x86_64-unknown-linux-gnu/agent/pxeroot-initiator` (`tools/build-agent`, or
//! `$PXEROOT_INITIATOR`); boots run one at a time whatever the thread count.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pxeroot_tests::scenario::{agent_chain, AgentOptions, Auth, Params, Report, Server, GUEST_IP};
use pxeroot_tests::Lab;

/// Boot with `opts`; print the timeline; fail with the agent's console unless the guest read
/// the marker from the device the agent reported, with every step in order.
fn boot(opts: AgentOptions) -> Report {
    let lab = Lab::require().unwrap();
    let report = agent_chain(&lab, &opts).unwrap();
    println!("{}", report.timeline);
    if let Err(e) = report.booted() {
        panic!(
            "{e}\nagent exit {:?}; console from the agent's start:\n{}",
            report.agent_exit,
            report.agent_console()
        );
    }
    let device = report.root_device.as_deref().unwrap_or("");
    assert!(device.starts_with("/dev/"), "root device {device:?}");
    if let Some(s) = report.agent_seconds() {
        println!("agent: {s:.2} s from start to root device {device}");
    }
    report
}

/// The agent's DHCP used the reservation for the guest's MAC, and /run/net-eth0.conf (what
/// initramfs-tools sources after klibc ipconfig) records it.
fn assert_reserved_address(report: &Report) {
    let addr = report.guest_address.as_deref().unwrap_or("");
    assert!(
        addr.contains(&format!("inet {GUEST_IP}/24")),
        "eth0 after the agent: {addr:?}\n{}",
        report.agent_console()
    );
    let recorded = report
        .net_conf
        .iter()
        .any(|l| l.starts_with("IPV4ADDR=") && l.contains(GUEST_IP));
    assert!(
        recorded,
        "/run/net-eth0.conf has no IPV4ADDR={GUEST_IP}: {:?}",
        report.net_conf
    );
}

fn debian(server: Server, auth: Auth) {
    let report = boot(AgentOptions {
        server,
        auth,
        params: Params::Debian,
        ..Default::default()
    });
    assert_reserved_address(&report);
}

#[test]
fn debian_parameters_boot_from_pxeroot_target_without_auth() {
    debian(Server::Pxeroot, Auth::None);
}

#[test]
fn debian_parameters_boot_from_pxeroot_target_with_chap() {
    debian(Server::Pxeroot, Auth::Chap);
}

#[test]
fn debian_parameters_boot_from_pxeroot_target_with_mutual_chap() {
    debian(Server::Pxeroot, Auth::Mutual);
}

#[test]
fn debian_parameters_boot_from_tgtd_without_auth() {
    debian(Server::Tgtd, Auth::None);
}

#[test]
fn debian_parameters_boot_from_tgtd_with_chap() {
    debian(Server::Tgtd, Auth::Chap);
}

#[test]
fn debian_parameters_boot_from_tgtd_with_mutual_chap() {
    debian(Server::Tgtd, Auth::Mutual);
}

#[test]
fn root_iscsi_with_mutual_chap_in_the_root_path_boots_from_pxeroot_target() {
    let report = boot(AgentOptions {
        params: Params::RootIscsi,
        auth: Auth::Mutual,
        ..Default::default()
    });
    assert_reserved_address(&report);
}

#[test]
fn dracut_netroot_with_chap_boots_from_tgtd_lun_1() {
    let report = boot(AgentOptions {
        server: Server::Tgtd,
        params: Params::Netroot,
        auth: Auth::Chap,
        ..Default::default()
    });
    assert_reserved_address(&report);
}

#[test]
fn netroot_dhcp_alone_takes_the_root_path_from_dhcp_option_17() {
    let report = boot(AgentOptions {
        params: Params::NetrootDhcp,
        ..Default::default()
    });
    assert_reserved_address(&report);
}

/// Two portals, the first without a host behind it: the agent says why it failed and logs in
/// through the second.
#[test]
fn a_dead_first_portal_is_reported_and_the_second_one_used() {
    let report = boot(AgentOptions {
        extra_cmdline: "iscsi_target_ip=10.0.0.9,10.0.0.2".into(),
        ..Default::default()
    });
    let console = report.agent_console();
    assert!(
        console.contains("10.0.0.9:3260"),
        "no message about the first portal\n{console}"
    );
    assert!(
        console.contains("at 10.0.0.2:3260"),
        "not logged in through the second portal\n{console}"
    );
}
