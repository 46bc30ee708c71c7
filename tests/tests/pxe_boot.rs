//! The whole network boot from pxeroot-target alone: QEMU with no disk powers on, its NIC's iPXE
//! ROM gets the client's reservation from pxeroot-target's DHCP server, then either Debian's
//! pxelinux.0 + ldlinux.c32 + the generated `pxelinux.cfg/01-<mac>` or the generated iPXE script,
//! then the kernel and an initramfs with pxeroot-initiator over TFTP; the agent gets its CHAP
//! secret from DHCP option 175 (it is on no command line), logs in, and the guest mounts the root
//! and prints the disk's per-run marker. Each test prints the boot timeline.
//!
//! Run with `cargo test -p pxeroot-tests --test pxe_boot -- --show-output` as root.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pxeroot_tests::scenario::{
    client_chap, pxe_chain, Auth, Loader, PxeOptions, PxeReport, Stack, GUEST_MAC,
};
use pxeroot_tests::Lab;

fn boot(loader: Loader, auth: Auth) -> PxeReport {
    let lab = Lab::require().unwrap();
    let opts = PxeOptions {
        loader,
        stack: Stack::Pxeroot,
        auth,
        ..Default::default()
    };
    let pxe = pxe_chain(&lab, &opts).unwrap();
    println!("{}", pxe.timeline());
    let report = &pxe.report;
    if let Err(e) = report.booted() {
        panic!(
            "{e}\nconsole from the agent's start:\n{}\nrun folder: {}",
            report.agent_console(),
            pxe.run_dir.display()
        );
    }
    for step in [
        "DHCP bound (firmware)",
        "boot configuration fetched",
        "kernel fetched",
        "initramfs fetched",
        "kernel started",
        "root device ready",
        "root mounted, marker read",
    ] {
        assert!(
            pxe.event(step).is_some(),
            "no {step:?} in the timeline:\n{}\n{}",
            pxe.timeline(),
            report.host_logs
        );
    }
    let cmdline = report.cmdline.clone().unwrap_or_default();
    let bootif = format!("BOOTIF=01-{}", GUEST_MAC.replace(':', "-"));
    assert!(cmdline.contains(&bootif), "no {bootif} in {cmdline:?}");
    assert!(
        cmdline.contains("iscsi_target_name=iqn.2026-11.org.pxeroot:client"),
        "{cmdline:?}"
    );
    assert!(
        !cmdline.contains(&client_chap().secret),
        "the CHAP secret is on the kernel command line: {cmdline:?}"
    );
    pxe
}

#[test]
fn pxelinux_chain_from_pxeroot_target_alone_boots_the_iscsi_root() {
    let pxe = boot(Loader::Pxelinux, Auth::Chap);
    let log = &pxe.report.server_log;
    for file in [
        "pxelinux.0",
        "ldlinux.c32",
        "pxelinux.cfg/01-52-54-00-12-34-56",
    ] {
        assert!(log.contains(file), "{file} was not served:\n{log}");
    }
}

#[test]
fn ipxe_script_chain_from_pxeroot_target_alone_boots_the_iscsi_root() {
    let pxe = boot(Loader::IpxeScript, Auth::Mutual);
    let log = &pxe.report.server_log;
    assert!(
        log.contains("pxeroot/01-52-54-00-12-34-56.ipxe"),
        "the iPXE script was not served:\n{log}"
    );
    assert!(!log.contains("pxelinux.0"), "pxelinux was served:\n{log}");
}
