//! Small helpers to run host commands with errors that carry the command line and its stderr.

use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

/// Render a command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Run to completion; fail with the command line and its stderr unless it exits 0.
///
/// # Errors
/// When the command cannot start or exits non-zero.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Run and return stdout as text.
///
/// # Errors
/// As [`run`].
pub fn run_stdout(cmd: &mut Command) -> Result<String> {
    Ok(String::from_utf8_lossy(&run(cmd)?.stdout).into_owned())
}

/// Whether an executable with this name is on PATH (or is this absolute path).
pub fn have_tool(name: &str) -> bool {
    if name.starts_with('/') {
        return std::path::Path::new(name).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Whether a process is alive (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name, which may itself contain ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        }
        Err(_) => false,
    }
}

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), used with the
/// pid to recognise the same process across pid reuse.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts at field 3 (state); field 22 is index 19 there.
    rest.split_whitespace().nth(19)?.parse().ok()
}
