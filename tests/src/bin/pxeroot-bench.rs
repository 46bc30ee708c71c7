//! `pxeroot-bench`: the benchmarks from the command line; `tools/bench` runs it.
//!
//! - `target [--runs N] [--seconds S] [--image-mib M] [--sessions N] [--out FILE]`:
//!   pxeroot-target against tgtd side by side (see [`pxeroot_tests::bench`]); prints the table
//!   as Markdown (and writes it to FILE) and exits 1 when a goal is missed. The server binary is
//!   `$PXEROOT_TARGET` (tools/bench points it at the release build).
//! - `boot [--boots N] [--out FILE]`: boots with pxeroot-initiator against boots with udhcpc +
//!   iscsistart (see [`pxeroot_tests::bench::boot`]); prints the table as Markdown (and writes
//!   it to FILE) and exits 1 when the agent fails or a goal (4x faster, at most 2 MiB) is
//!   missed. The agent is `$PXEROOT_INITIATOR` or `tools/build-agent`'s build.
//! - `pxe [--boots N] [--out FILE]`: full network boots served by pxeroot-target against
//!   dnsmasq + tgtd (see [`pxeroot_tests::bench::pxe`]); exits 1 when a boot fails or
//!   pxeroot-target is slower.
//! - `tftp [--runs N] [--mib M] [--out FILE]`: pxeroot-target's TFTP server against tftpd-hpa
//!   and dnsmasq with curl and atftp (see [`pxeroot_tests::bench::tftp`]); exits 1 when a goal
//!   is missed.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use pxeroot_tests::bench::{
    self, boot::BootOptions, pxe::PxeBenchOptions, tftp::TftpBenchOptions, Options,
};

const USAGE: &str = "usage: pxeroot-bench target [--runs N] [--seconds S] [--image-mib M] \
     [--sessions N] [--out FILE] | boot [--boots N] [--out FILE] | pxe [--boots N] [--out FILE] | tftp [--runs N] [--mib M] [--out FILE]";

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("target") => target(&args[1..]),
        Some("boot") => boot(&args[1..]),
        Some("pxe") => pxe(&args[1..]),
        Some("tftp") => tftp(&args[1..]),
        _ => bail!("{USAGE}"),
    }
}

fn target(args: &[String]) -> Result<ExitCode> {
    let mut options = Options::default();
    let out = flags(args, |flag, n| {
        match flag {
            "--runs" => options.runs = usize::try_from(n)?,
            "--seconds" => options.seconds = n,
            "--image-mib" => options.image_mib = n,
            "--sessions" => options.sessions = usize::try_from(n)?,
            _ => bail!("unknown option {flag}; {USAGE}"),
        }
        Ok(())
    })?;
    let report = bench::target(&options)?;
    finish(
        "pxeroot-target vs tgtd",
        &report.markdown(),
        out,
        report.goals_met(),
        "at least one goal was missed (see MISSED above)",
    )
}

fn boot(args: &[String]) -> Result<ExitCode> {
    let (boots, out) = boots_and_out(args)?;
    let mut options = BootOptions::default();
    if let Some(n) = boots {
        options.boots = n;
    }
    let report = bench::boot::boot(&options)?;
    finish(
        "Boot path: pxeroot-initiator vs udhcpc + iscsistart",
        &report.markdown(),
        out,
        report.goal_met(),
        "the agent failed or the goal was missed (see above)",
    )
}

fn pxe(args: &[String]) -> Result<ExitCode> {
    let (boots, out) = boots_and_out(args)?;
    let mut options = PxeBenchOptions::default();
    if let Some(n) = boots {
        options.boots = n;
    }
    let report = bench::pxe::pxe(&options)?;
    finish(
        "Network boot: pxeroot-target vs dnsmasq + tgtd",
        &report.markdown(),
        out,
        report.goal_met(),
        "pxeroot-target was slower (see above)",
    )
}

fn tftp(args: &[String]) -> Result<ExitCode> {
    let mut options = TftpBenchOptions::default();
    let out = flags(args, |flag, n| {
        match flag {
            "--runs" => options.runs = usize::try_from(n)?,
            "--mib" => options.mib = n,
            _ => bail!("unknown option {flag}; {USAGE}"),
        }
        Ok(())
    })?;
    let report = bench::tftp::tftp(&options)?;
    finish(
        "TFTP: pxeroot-target vs tftpd-hpa and dnsmasq",
        &report.markdown(),
        out,
        report.goals_met(),
        "at least one TFTP goal was missed (see MISSED above)",
    )
}

/// `--boots N` and `--out FILE`, the options of the boot benches.
fn boots_and_out(args: &[String]) -> Result<(Option<usize>, Option<String>)> {
    let mut boots = None;
    let out = flags(args, |flag, n| {
        match flag {
            "--boots" => boots = Some(usize::try_from(n)?),
            _ => bail!("unknown option {flag}; {USAGE}"),
        }
        Ok(())
    })?;
    Ok((boots, out))
}

/// Walks `--flag VALUE` pairs: returns the value of `--out`, and hands every other flag to
/// `set` with its value as a number.
fn flags(args: &[String], mut set: impl FnMut(&str, u64) -> Result<()>) -> Result<Option<String>> {
    let mut out = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        if flag == "--out" {
            out = Some(value.clone());
            continue;
        }
        let n = value
            .parse()
            .with_context(|| format!("{flag}: not a number: {value}"))?;
        set(flag, n)?;
    }
    Ok(out)
}

/// Today's date (UTC) from `date`, for the report heading.
fn bench_date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Prints the report under a dated title, writes it to `out` if given, and exits 1 (with
/// `missed` on stderr) unless the goals were met.
fn finish(
    title: &str,
    markdown: &str,
    out: Option<String>,
    met: bool,
    missed: &str,
) -> Result<ExitCode> {
    let text = format!("## {title} ({})\n\n{markdown}", bench_date());
    println!("{text}");
    if let Some(path) = out {
        std::fs::write(&path, &text).with_context(|| format!("cannot write {path}"))?;
    }
    if met {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("pxeroot-bench: {missed}");
        Ok(ExitCode::from(1))
    }
}
