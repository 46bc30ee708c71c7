//! `pxeroot-lab`: the lab from the command line.
//!
//! - `demo`: the main job, a diskless client network-booting from pxeroot-target alone (DHCP,
//!   TFTP, iSCSI), with its boot timeline; `tools/demo` runs it.
//! - `agent [--server pxeroot|tgtd] [--auth none|chap|mutual] [--params debian|root|netroot|dhcp]
//!   [--down] [--delay SECONDS] [--wrong-secret] [--timeout SECONDS] [-- EXTRA CMDLINE...]`: one
//!   agent boot (see [`scenario::agent_chain`]); prints the timeline, the console from the
//!   agent's start and the host logs; exits 1 unless the guest booted.
//! - `cleanup`: remove what killed lab runs left behind.
//! - `hold`: set up a namespace with tgtd, dnsmasq and a running guest, print `HELD ...` and wait
//!   to be killed; the cleanup test kills it with SIGKILL.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pxeroot_tests::initramfs::Builder;
use pxeroot_tests::netns::{self, Netns};
use pxeroot_tests::peers::{DhcpConfig, Dnsmasq, Tgtd};
use pxeroot_tests::qemu::{Boot, Qemu, Spec};
use pxeroot_tests::scenario::{
    self, AgentOptions, Auth, Loader, Params, PxeOptions, Server, Stack,
};
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
        Some("agent") => agent(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => bail!("usage: pxeroot-lab demo | agent [OPTIONS] [-- CMDLINE] | cleanup | hold"),
    }
}

fn demo() -> Result<()> {
    let lab = Lab::require()?;
    println!("pxeroot demo: a diskless QEMU client network-boots from pxeroot-target alone.");
    println!("One [[client]] entry gives it its DHCP reservation, pxelinux and its generated");
    println!(
        "pxelinux.cfg/01-<mac> over TFTP, the kernel and an initramfs with pxeroot-initiator,"
    );
    println!(
        "which gets its CHAP secret from DHCP, logs in and hands the session to the kernel.\n"
    );
    let opts = PxeOptions {
        loader: Loader::Pxelinux,
        stack: Stack::Pxeroot,
        auth: Auth::Chap,
        ..Default::default()
    };
    let pxe = scenario::pxe_chain(&lab, &opts)?;
    let report = &pxe.report;
    println!("{}", pxe.timeline());
    println!("{}", report.timeline);
    for line in report.agent_console().lines() {
        if line.contains("pxeroot-initiator:") {
            println!("{line}");
        }
    }
    match report.booted() {
        Ok(()) => {
            println!(
                "\nroot disk mounted over iSCSI; marker read back: {}",
                report.marker_expected
            );
            Ok(())
        }
        Err(e) => bail!("boot failed: {e}\n{}", report.agent_console()),
    }
}

fn agent(args: &[String]) -> Result<()> {
    let mut opts = AgentOptions::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(String::as_str)
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--server" => {
                opts.server = match value()? {
                    "pxeroot" => Server::Pxeroot,
                    "tgtd" => Server::Tgtd,
                    v => bail!("--server: pxeroot or tgtd, not {v}"),
                }
            }
            "--auth" => {
                opts.auth = match value()? {
                    "none" => Auth::None,
                    "chap" => Auth::Chap,
                    "mutual" => Auth::Mutual,
                    v => bail!("--auth: none, chap or mutual, not {v}"),
                }
            }
            "--params" => {
                opts.params = match value()? {
                    "debian" => Params::Debian,
                    "root" => Params::RootIscsi,
                    "netroot" => Params::Netroot,
                    "dhcp" => Params::NetrootDhcp,
                    v => bail!("--params: debian, root, netroot or dhcp, not {v}"),
                }
            }
            "--delay" => opts.target_delay = Some(Duration::from_secs(value()?.parse()?)),
            "--timeout" => opts.guest_timeout = Duration::from_secs(value()?.parse()?),
            "--down" => opts.target_down = true,
            "--wrong-secret" => opts.wrong_secret = true,
            "--" => {
                opts.extra_cmdline = it.by_ref().cloned().collect::<Vec<_>>().join(" ");
            }
            f => bail!("unknown option {f}"),
        }
    }
    let lab = Lab::require()?;
    let report = scenario::agent_chain(&lab, &opts)?;
    println!("{}", report.timeline);
    println!("agent exit {:?}", report.agent_exit);
    println!("{}", report.agent_console());
    match report.booted() {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("pxeroot-lab: the agent boot failed: {e}");
            std::process::exit(1);
        }
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
