//! The Linux kernel initiator boots from pxeroot-target: open-iscsi's iscsistart in a QEMU guest
//! logs in (no CHAP, CHAP, mutual CHAP), mounts the ext4 image pxeroot-target serves as LUN 0
//! and prints its per-run marker; a wrong secret is refused; and qemu-img (libiscsi) copies the
//! LUN byte for byte.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pxeroot_tests::image::ext4_with_files;
use pxeroot_tests::netns::Netns;
use pxeroot_tests::peers::{pxeroot_config, Chap, PxerootTarget};
use pxeroot_tests::process::run;
use pxeroot_tests::scenario::{
    fresh_marker, reference_chain, RefOptions, Server, INITIATOR_IQN, TARGET_IQN,
};
use pxeroot_tests::Lab;

fn chap(user: &str, secret: &str) -> Chap {
    Chap {
        user: user.into(),
        secret: secret.into(),
    }
}

fn boot(opts: RefOptions) {
    let lab = Lab::require().unwrap();
    let report = reference_chain(
        &lab,
        &RefOptions {
            server: Server::Pxeroot,
            ..opts
        },
    )
    .unwrap();
    println!("{}", report.timeline);
    if let Err(e) = report.booted() {
        panic!("{e}");
    }
}

#[test]
fn iscsistart_boots_from_pxeroot_target_without_auth() {
    boot(RefOptions::default());
}

#[test]
fn iscsistart_boots_from_pxeroot_target_with_chap() {
    boot(RefOptions {
        chap: Some(chap("client", "client-secret-1")),
        ..Default::default()
    });
}

#[test]
fn iscsistart_boots_from_pxeroot_target_with_mutual_chap() {
    boot(RefOptions {
        chap: Some(chap("client", "client-secret-1")),
        mutual: Some(chap("target", "target-secret-1")),
        ..Default::default()
    });
}

#[test]
fn iscsistart_boots_from_pxeroot_target_with_crc32c_header_and_data_digests() {
    let lab = Lab::require().unwrap();
    let opts = RefOptions {
        server: Server::Pxeroot,
        chap: Some(chap("client", "client-secret-1")),
        digests: true,
        ..Default::default()
    };
    let report = reference_chain(&lab, &opts).unwrap();
    println!("{}", report.timeline);
    if let Err(e) = report.booted() {
        panic!("{e}");
    }
    assert!(
        report
            .server_log
            .contains("header_digest=Crc32c data_digest=Crc32c"),
        "the session did not run with digests:\n{}",
        report.server_log
    );
}

#[test]
fn pxeroot_target_refuses_a_wrong_chap_secret() {
    let lab = Lab::require().unwrap();
    let opts = RefOptions {
        server: Server::Pxeroot,
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

#[test]
fn qemu_img_copies_the_lun_byte_for_byte_with_and_without_header_digest() {
    Lab::require().unwrap();
    let ns = Netns::create().unwrap();
    ns.add_veth("pxa", "pxb", Some("10.0.0.2/24")).unwrap();
    let image = ns.run_dir().join("disk.img");
    let marker = fresh_marker();
    ext4_with_files(ns.run_dir(), &image, 32, &[("marker", marker.as_bytes())]).unwrap();
    let secret = chap("client", "client-secret-1");
    let config = pxeroot_config(
        "10.0.0.2:3260",
        TARGET_IQN,
        &image,
        "*",
        Some(&secret),
        None,
    );
    let target = PxerootTarget::start(&ns, &config).unwrap();
    let original = std::fs::read(&image).unwrap();
    let copy = ns.run_dir().join("copy.img");

    // The iscsi:// URL form.
    let url = format!("iscsi://client%client-secret-1@10.0.0.2/{TARGET_IQN}/0");
    let mut cmd = ns.command("qemu-img");
    cmd.args(["convert", "-O", "raw", &url])
        .arg(&copy)
        .env("LIBISCSI_INITIATOR_NAME", INITIATOR_IQN);
    run(&mut cmd).unwrap();
    let copied = std::fs::read(&copy).unwrap();
    assert_eq!(copied.len(), original.len(), "copy size");
    assert!(copied == original, "the copy differs from the image");
    std::fs::remove_file(&copy).unwrap();

    // qemu's own options, with CRC32C header digests on every PDU.
    let opts = format!(
        "driver=iscsi,transport=tcp,portal=10.0.0.2:3260,target={TARGET_IQN},lun=0,\
         user=client,password-secret=sec0,header-digest=crc32c"
    );
    let mut cmd = ns.command("qemu-img");
    cmd.args([
        "convert",
        "-O",
        "raw",
        "--object",
        "secret,id=sec0,data=client-secret-1",
        "--image-opts",
        &opts,
    ])
    .arg(&copy);
    run(&mut cmd).unwrap();
    let copied = std::fs::read(&copy).unwrap();
    assert!(
        copied == original,
        "the copy with header digests differs from the image"
    );
    let log = target.log_text();
    assert!(
        log.contains("header_digest=Crc32c"),
        "no session ran with header digests:\n{log}"
    );
}
