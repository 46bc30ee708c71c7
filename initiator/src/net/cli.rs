//! `pxeroot-initiator net-up` (hidden from `--help`): runs only the network phase and prints
//! [`NetUp`](super::NetUp) as JSON (secrets redacted), for debugging a NIC or a DHCP server
//! and for the netns test. It plans from the command line alone (no initramfs files, no
//! iBFT), so the line must configure an iSCSI root, e.g. `netroot=dhcp`.

use std::path::PathBuf;

use crate::config;
use crate::exit;

/// Debug: run only the network phase and print the result as JSON.
#[derive(Debug, Clone, argh::FromArgs)]
#[argh(subcommand, name = "net-up")]
pub struct NetUpArgs {
    /// plan from this kernel command line instead of /proc/cmdline
    #[argh(option)]
    pub cmdline: Option<String>,
    /// also write the run files (net-IFACE.conf, initramfs/open-iscsi.interface) here
    #[argh(option)]
    pub run_dir: Option<PathBuf>,
}

/// Runs `net-up` on the command line `main` gathered (no initramfs files, no iBFT); returns
/// the exit code.
pub fn run(args: &NetUpArgs, g: &crate::Gathered) -> u8 {
    let fail = |code: u8, msg: &dyn std::fmt::Display| {
        eprintln!("pxeroot-initiator: {msg}");
        code
    };
    let plan = match config::resolve(&g.inputs()) {
        Ok(p) => p,
        Err(e) => return fail(e.exit_code(), &e),
    };
    let up = match super::bring_up(&plan, &mut |line| eprintln!("pxeroot-initiator: {line}")) {
        Ok(up) => up,
        Err(e) => return fail(e.exit_code(), &e),
    };
    if let Some(dir) = &args.run_dir {
        match super::write_run_files(&up, dir) {
            Ok(files) => {
                for f in files {
                    eprintln!("pxeroot-initiator: wrote {}", f.display());
                }
            }
            Err(e) => return fail(exit::INTERNAL, &e),
        }
    }
    match serde_json::to_string_pretty(&up) {
        Ok(json) => {
            println!("{json}");
            exit::OK
        }
        Err(e) => fail(exit::INTERNAL, &e),
    }
}
