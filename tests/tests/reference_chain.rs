//! The reference chain: the stock stack pxeroot replaces, booted for real. A Debian kernel in
//! QEMU logs in with open-iscsi's iscsistart to tgtd, mounts the ext4 image tgtd serves and prints
//! a marker file whose content is fresh for every run.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pxeroot_tests::peers::Chap;
use pxeroot_tests::scenario::{reference_chain, RefOptions, Report, GUEST_IP};
use pxeroot_tests::Lab;

fn chap(user: &str, secret: &str) -> Chap {
    Chap {
        user: user.into(),
        secret: secret.into(),
    }
}

/// The guest printed the disk's marker, and every boot step in order.
fn assert_booted(report: &Report) {
    println!("{}", report.timeline);
    if let Err(e) = report.booted() {
        panic!("{e}");
    }
}

#[test]
fn iscsistart_logs_in_to_tgtd_with_chap_md5_and_reads_the_marker() {
    let lab = Lab::require().unwrap();
    let opts = RefOptions {
        chap: Some(chap("client", "client-secret-1")),
        ..Default::default()
    };
    assert_booted(&reference_chain(&lab, &opts).unwrap());
}

#[test]
fn iscsistart_logs_in_after_udhcpc_gets_the_reserved_address_from_dnsmasq() {
    let lab = Lab::require().unwrap();
    let opts = RefOptions {
        chap: Some(chap("client", "client-secret-1")),
        dhcp: true,
        ..Default::default()
    };
    let report = reference_chain(&lab, &opts).unwrap();
    assert_booted(&report);
    let bound = report.dhcp_bound.as_deref().unwrap_or("");
    assert!(
        bound.starts_with(&format!("bound {GUEST_IP}/24 on eth0 from 10.0.0.2")),
        "udhcpc: {bound:?}"
    );
}

#[test]
fn iscsistart_with_mutual_chap_reads_the_marker() {
    let lab = Lab::require().unwrap();
    let opts = RefOptions {
        chap: Some(chap("client", "client-secret-1")),
        mutual: Some(chap("target", "target-secret-1")),
        ..Default::default()
    };
    assert_booted(&reference_chain(&lab, &opts).unwrap());
}

#[test]
fn tgtd_refuses_a_wrong_chap_secret() {
    let lab = Lab::require().unwrap();
    let opts = RefOptions {
        chap: Some(chap("client", "client-secret-1")),
        initiator_chap: Some(chap("client", "wrong-secret-99")),
        ..Default::default()
    };
    let report = reference_chain(&lab, &opts).unwrap();
    println!("{}", report.timeline);
    if let Err(e) = report.refused_at_login() {
        panic!("{e}");
    }
}
