//! `pxeroot-lab`: the lab from the command line.
//!
//! - `demo`: the main job, a diskless client booting from pxeroot-target, with its boot
//!   timeline; `tools/demo` runs it.
//! - `cleanup`: remove what killed lab runs left behind.
//! - `hold`: set up a namespace with tgtd, dnsmasq and a running guest, print `HELD ...` and wait
//!   to be killed; the cleanup test kills it with SIGKILL.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use pxeroot_tests::initramfs::Builder;
use pxeroot_tests::netns::{self, Netns};
use pxeroot_tests::peers::{Chap, DhcpConfig, Dnsmasq, Tgtd};
use pxeroot_tests::qemu::{Boot, Qemu, Spec};
use pxeroot_tests::scenario::{self, RefOptions, Server};
use pxeroot_tests::Lab;

fn main() -> Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("demo") => demo(),
        Some("cleanup") => {
            let removed = netns::cleanup_leftovers()?;
            println!(
                "removed {} leftover namespace(s) {removed:?}",
                removed.len()
            );
            Ok(())
        }
        Some("hold") => hold(),
        _ => bail!("usage: pxeroot-lab demo | cleanup | hold"),
    }
}

fn demo() -> Result<()> {
    let lab = Lab::require()?;
    println!("pxeroot demo: a diskless QEMU client boots its root disk from pxeroot-target.");
    println!("Until issues 4 and 5 land, the client logs in with open-iscsi's iscsistart and gets");
    println!("its address from dnsmasq; pxeroot-target serves the disk with CHAP.\n");
    let chap = Chap {
        user: "client".into(),
        secret: "client-secret-1".into(),
    };
    let opts = RefOptions {
        server: Server::Pxeroot,
        chap: Some(chap),
        dhcp: true,
        ..Default::default()
    };
    let report = scenario::reference_chain(&lab, &opts)?;
    println!("{}", report.timeline);
    match report.booted() {
        Ok(()) => {
            println!(
                "root disk mounted over iSCSI; marker read back: {}",
                report.marker_expected
            );
            Ok(())
        }
        Err(e) => bail!("boot failed: {e}"),
    }
}

fn hold() -> Result<()> {
    let lab = Lab::require()?;
    let ns = Netns::create()?;
    ns.add_tap("tap0", "10.0.0.2/24")?;
    let image = ns.run_dir().join("disk.img");
    pxeroot_tests::image::ext4_with_files(ns.run_dir(), &image, 8, &[("marker", b"held")])?;
    let tgtd = Tgtd::start(&ns)?;
    tgtd.add_target(1, scenario::TARGET_IQN, &image, &[])?;
    let dnsmasq = Dnsmasq::start(&ns, &DhcpConfig::lab(&[]))?;
    let initrd = Builder::new(&lab.kernel)
        .script("stamp held\nwhile true; do sleep 1; done\n")
        .build(ns.run_dir(), &ns.run_dir().join("initrd.cpio"))?;
    let qemu = Qemu::spawn(
        &ns,
        "held",
        &Spec::new(Boot::Kernel {
            kernel: lab.kernel.vmlinuz.clone(),
            initrd,
            append: "console=ttyS0 quiet panic=-1".into(),
        }),
    )?;
    qemu.wait_for("PXRT-T", scenario::FAILURES, Duration::from_secs(60))?;
    println!(
        "HELD {} {} {} {}",
        ns.name(),
        qemu.pid(),
        tgtd.pid(),
        dnsmasq.pid()
    );
    std::io::stdout().flush()?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
