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

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use pxeroot_tests::bench::{self, boot::BootOptions, pxe::PxeBenchOptions, Options};

const USAGE: &str = "usage: pxeroot-bench target [--runs N] [--seconds S] [--image-mib M] \
     [--sessions N] [--out FILE] | boot [--boots N] [--out FILE] | pxe [--boots N] [--out FILE]";

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("target") => target(&args[1..]),
        Some("boot") => boot(&args[1..]),
        Some("pxe") => pxe(&args[1..]),
        _ => bail!("{USAGE}"),
    }
}

fn target(args: &[String]) -> Result<ExitCode> {
    let mut options = Options::default();
    let mut out = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        let number = || -> Result<u64> {
            value
                .parse()
                .with_context(|| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--runs" => options.runs = usize::try_from(number()?)?,
            "--seconds" => options.seconds = number()?,
            "--image-mib" => options.image_mib = number()?,
            "--sessions" => options.sessions = usize::try_from(number()?)?,
            "--out" => out = Some(value.clone()),
            _ => bail!("unknown option {flag}; {USAGE}"),
        }
    }
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

/// `--boots N` and `--out FILE`, the options of the boot benches.
fn boots_and_out(args: &[String]) -> Result<(Option<usize>, Option<String>)> {
    let (mut boots, mut out) = (None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--boots" => {
                boots = Some(
                    value
                        .parse()
                        .with_context(|| format!("{flag}: not a number: {value}"))?,
                );
            }
            "--out" => out = Some(value.clone()),
            _ => bail!("unknown option {flag}; {USAGE}"),
        }
    }
    Ok((boots, out))
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
