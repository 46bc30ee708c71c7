//! The whole Debian flow, slow (several minutes): `tools/provision` builds a bookworm client in
//! one command (debootstrap, hooks and agent installed, initramfs built in the chroot by
//! Debian's own update-initramfs or by dracut, kernel and initrd in the TFTP folder, the
//! `[[client]]` entry added and checked), then the client boots from its iSCSI disk served by
//! pxeroot-target up to systemd's multi-user.target, where a unit in the image prints its
//! marker on the serial console. CHAP credentials reach the agent by DHCP option 175 only.
//!
//! Run with `cargo test -p pxeroot-tests --test debian_flow -- --show-output` as root.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pxeroot_tests::scenario::{debian_chain, DebianOptions, DebianReport, Layout, Start};

/// How the clients start.
const START: Start = Start::Pxe;
use pxeroot_tests::Lab;

fn boot(opts: &DebianOptions) -> DebianReport {
    let lab = Lab::require().unwrap();
    let opts = DebianOptions {
        start: START,
        ..opts.clone()
    };
    let report = debian_chain(&lab, &opts).unwrap();
    println!(
        "{:?} layout, {:?}, {:?}:",
        opts.layout, opts.flavour, opts.start
    );
    println!("{}", report.figures());
    if let Err(e) = report.booted() {
        panic!("{e}\nserver log:\n{}", report.server_log);
    }
    check_common(&report);
    report
}

fn check_common(report: &DebianReport) {
    // The root is the LUN.
    let root = report.root_source.clone().unwrap_or_default();
    assert!(!root.is_empty(), "no root source printed");
    // No secret on the command line: CHAP came by DHCP option 175.
    let cmdline = report.cmdline.clone().expect("no /proc/cmdline printed");
    assert!(
        !report.secrets.is_empty(),
        "the client was provisioned without CHAP"
    );
    for s in &report.secrets {
        assert!(
            !cmdline.contains(s.as_str()),
            "a CHAP secret is on the kernel command line"
        );
        assert!(
            !report.console.iter().any(|l| l.text.contains(s.as_str())),
            "a CHAP secret was printed on the console"
        );
    }
    assert!(
        (cmdline.contains("iscsi_target_name=") || cmdline.contains("root=iscsi:"))
            && !cmdline.contains("iscsi_password"),
        "{cmdline}"
    );
    // What the agent left in /run: readable by root only.
    let files = &report.run_files;
    for want in [
        "/run/pxeroot",
        "/run/pxeroot/root-device",
        "/run/pxeroot/session.env",
    ] {
        assert!(
            files.iter().any(|f| f.path == want),
            "{want} missing from {files:?}"
        );
    }
    assert!(
        files.iter().any(|f| f.path.starts_with("/run/net-")),
        "no /run/net-IFACE.conf in {files:?}"
    );
    for f in files {
        assert_eq!(f.owner, "root", "{f:?}");
        assert_eq!(
            f.mode & 0o077,
            0,
            "{} is readable by others: {:o}",
            f.path,
            f.mode
        );
    }
    assert!(
        !files.iter().any(|f| f.path.contains("pxeroot.log")),
        "local-bottom left the initramfs log behind: {files:?}"
    );
    // The initramfs the distribution built lists the agent and the iSCSI modules.
    let listing = &report.initramfs_listing;
    for want in [
        "sbin/pxeroot-initiator",
        "/iscsi_tcp.ko",
        "/libiscsi.ko",
        "/libiscsi_tcp.ko",
        "/scsi_transport_iscsi.ko",
        "/virtio_net.ko",
    ] {
        assert!(
            listing.iter().any(|l| l.ends_with(want)),
            "the initramfs does not list {want} ({} entries)",
            listing.len()
        );
    }
    assert!(
        !listing.iter().any(|l| l.ends_with("/iscsistart")),
        "iscsistart is in the initramfs"
    );
}

#[test]
fn provisioned_plain_ext4_client_boots_to_multi_user_with_debians_own_initramfs() {
    // open-iscsi too: its initramfs hook and local-top script are in the image, and the root
    // is still logged in once, by the agent.
    let report = boot(&DebianOptions {
        packages: "open-iscsi",
        ..Default::default()
    });
    let root = report.root_source.clone().unwrap();
    assert!(root.starts_with("/dev/sd"), "root is {root}");
    assert!(
        report.client_entry.contains("append = \"root=UUID="),
        "{}",
        report.client_entry
    );
    let listing = &report.initramfs_listing;
    for script in [
        "local-top/pxeroot",
        "local-bottom/pxeroot",
        "local-top/iscsi",
    ] {
        assert!(
            listing.iter().any(|l| l.ends_with(script)),
            "no scripts/{script} in the initramfs"
        );
    }
    let logins = report
        .console
        .iter()
        .filter(|l| l.text.contains("pxeroot-initiator: ") && l.text.contains("logged in to"))
        .count();
    assert_eq!(logins, 1, "the agent logged in {logins} times");
    for bad in ["iscsistart", "session exists"] {
        assert!(
            !report.console.iter().any(|l| l.text.contains(bad)),
            "{bad:?} on the console"
        );
    }
}

#[test]
fn provisioned_volume_group_client_boots_with_root_and_swap_volumes() {
    let report = boot(&DebianOptions {
        layout: Layout::Lvm,
        mutual: true,
        size: "3G",
        ..Default::default()
    });
    let root = report.root_source.clone().unwrap();
    assert_eq!(root, "/dev/mapper/client-root");
    assert!(
        report
            .swaps
            .iter()
            .any(|s| s.starts_with("/dev/dm-") || s.starts_with("/dev/mapper/client-swap")),
        "no swap volume active: {:?}",
        report.swaps
    );
    assert!(
        report.client_entry.contains("mutual_chap = {"),
        "{}",
        report.client_entry
    );
}

#[test]
fn root_iscsi_names_the_lun_and_the_local_top_script_sets_root_to_its_device() {
    let lab = Lab::require().unwrap();
    let report = debian_chain(
        &lab,
        &DebianOptions {
            start: Start::Direct,
            root_iscsi: true,
            ..Default::default()
        },
    )
    .unwrap();
    println!("{}", report.figures());
    if let Err(e) = report.booted() {
        panic!("{e}");
    }
    let cmdline = report.cmdline.clone().unwrap_or_default();
    assert!(
        cmdline.starts_with("root=iscsi:10.0.0.2::3260:0:iqn.2026-11.org.pxeroot:client ")
            && !cmdline.contains("iscsi_target_name="),
        "{cmdline}"
    );
    assert_eq!(report.root_source.as_deref(), Some("/dev/sda"));
    check_common(&report);
}

#[test]
fn without_its_target_the_debian_initramfs_stops_with_the_agents_failure() {
    let lab = Lab::require().unwrap();
    let report = debian_chain(
        &lab,
        &DebianOptions {
            start: Start::Direct,
            no_target: true,
            append: "pxeroot.timeout=5",
            timeout: std::time::Duration::from_secs(120),
            ..Default::default()
        },
    )
    .unwrap();
    let failure = report.failure.clone().unwrap_or_default();
    assert!(
        failure.contains("pxeroot: no iSCSI root (pxeroot-initiator exit 12): ")
            && failure.contains("FAILED:")
            && failure.contains("connection refused"),
        "{failure:?}\n{}",
        report.booted().err().unwrap_or_default()
    );
    assert_eq!(report.marker_seen, None);
}

#[test]
fn the_same_client_moved_to_dracut_boots_with_a_dracut_initramfs() {
    let report = boot(&DebianOptions {
        then_dracut: true,
        ..Default::default()
    });
    let first = report.earlier.first().expect("no first boot");
    println!("first boot, update-initramfs:\n{}", first.figures());
    first.booted().unwrap();
    check_common(first);
    // The second boot is the same client (same entry, same disk, same marker) with the
    // initramfs dracut built.
    assert_eq!(report.cmdline, first.cmdline);
    let root = report.root_source.clone().unwrap();
    assert!(root.starts_with("/dev/sd"), "root is {root}");
    assert!(
        report
            .console
            .iter()
            .any(|l| l.text.contains("dracut-initqueue") && l.text.contains("pxeroot-initiator: ")),
        "the agent did not run from dracut's initqueue; the console's agent and initqueue \
         lines:\n{}",
        report
            .console
            .iter()
            .filter(|l| l.text.contains("pxeroot") || l.text.contains("initqueue"))
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        report
            .initramfs_listing
            .iter()
            .any(|l| l.contains("modules.d/95pxeroot") || l.ends_with("/pxeroot-login")),
        "the dracut image has no pxeroot module files ({} entries listed)",
        report.initramfs_listing.len()
    );
}
