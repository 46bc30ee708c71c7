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

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use pxeroot_tests::bench::{self, boot::BootOptions, Options};

const USAGE: &str = "usage: pxeroot-bench target [--runs N] [--seconds S] [--image-mib M] \
     [--sessions N] [--out FILE] | boot [--boots N] [--out FILE]";

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("target") => target(&args[1..]),
        Some("boot") => boot(&args[1..]),
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
    let text = format!(
        "## pxeroot-target vs tgtd ({})\n\n{}",
        bench_date(),
        report.markdown()
    );
    println!("{text}");
    if let Some(path) = out {
        std::fs::write(&path, &text).with_context(|| format!("cannot write {path}"))?;
    }
    if report.goals_met() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("pxeroot-bench: at least one goal was missed (see MISSED above)");
        Ok(ExitCode::from(1))
    }
}

fn boot(args: &[String]) -> Result<ExitCode> {
    let mut options = BootOptions::default();
    let mut out = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--boots" => {
                options.boots = value
                    .parse()
                    .with_context(|| format!("{flag}: not a number: {value}"))?;
            }
            "--out" => out = Some(value.clone()),
            _ => bail!("unknown option {flag}; {USAGE}"),
        }
    }
    let report = bench::boot::boot(&options)?;
    let text = format!(
        "## Boot path: pxeroot-initiator vs udhcpc + iscsistart ({})\n\n{}",
        bench_date(),
        report.markdown()
    );
    println!("{text}");
    if let Some(path) = out {
        std::fs::write(&path, &text).with_context(|| format!("cannot write {path}"))?;
    }
    if report.goal_met() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("pxeroot-bench: the agent failed or the goal was missed (see above)");
        Ok(ExitCode::from(1))
    }
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
