//! libiscsi's conformance suite (`iscsi-test-cu`) as a peer: run it against a target and count
//! what passed for real, what was skipped and what failed.
//!
//! CUnit counts a skipped test as passed, so the summary line cannot tell them apart: a test is
//! counted as skipped here when its output carries `[SKIPPED]`, and as failed when it carries
//! `FAILED`.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::netns::Netns;

/// The outcome of one suite run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests run.
    pub total: usize,
    /// Tests that failed (suite.test names).
    pub failed: Vec<String>,
    /// Tests that skipped themselves (suite.test names).
    pub skipped: Vec<String>,
}

impl Summary {
    /// Tests that passed without being skipped.
    pub fn passed(&self) -> usize {
        self.total - self.failed.len() - self.skipped.len()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tests: {} passed, {} skipped, {} failed",
            self.total,
            self.passed(),
            self.skipped.len(),
            self.failed.len()
        )?;
        if !self.failed.is_empty() {
            write!(f, " ({})", self.failed.join(", "))?;
        }
        Ok(())
    }
}

/// Parse iscsi-test-cu's output.
pub fn parse(output: &str) -> Summary {
    let mut summary = Summary::default();
    let mut suite = String::new();
    let mut current: Option<(String, bool, bool)> = None;
    let finish = |summary: &mut Summary, t: Option<(String, bool, bool)>| {
        if let Some((name, failed, skipped)) = t {
            summary.total += 1;
            if failed {
                summary.failed.push(name);
            } else if skipped {
                summary.skipped.push(name);
            }
        }
    };
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("Suite: ") {
            finish(&mut summary, current.take());
            suite = rest.trim().to_string();
        } else if let Some(rest) = line.trim_start().strip_prefix("Test: ") {
            if line.starts_with("  Test: ") {
                finish(&mut summary, current.take());
                let name = rest.split(" ...").next().unwrap_or(rest).trim();
                current = Some((format!("{suite}.{name}"), false, false));
            }
        } else if line.starts_with("Run Summary:") {
            finish(&mut summary, current.take());
        }
        if let Some((_, failed, skipped)) = current.as_mut() {
            // CUnit's own verdict is a bare "FAILED" ending the test's line or on a line of
            // its own; libiscsi's "[FAILED] ..." log lines are not verdicts (its clean-up after
            // a test may log one while CUnit counts the test as passed).
            let verdict = line.replace("[FAILED]", "");
            *failed |= verdict.trim_end().ends_with("FAILED");
            *skipped |= line.contains("[SKIPPED]");
        }
    }
    finish(&mut summary, current.take());
    summary
}

/// Run `iscsi-test-cu -d --test=<test> <url>` inside `ns` and parse its output (which is
/// also saved in the run folder).
///
/// # Errors
/// When the suite cannot run or runs past `timeout`.
pub fn run(ns: &Netns, test: &str, url: &str, timeout: Duration) -> Result<Summary> {
    let mut cmd = ns.command("timeout");
    cmd.arg(timeout.as_secs().to_string()).args([
        "iscsi-test-cu",
        "-d",
        &format!("--test={test}"),
        url,
    ]);
    let out = cmd_output(&mut cmd)?;
    let log = ns
        .run_dir()
        .join(format!("iscsi-test-cu-{}.log", test.replace('/', "_")));
    std::fs::write(&log, &out)?;
    Ok(parse(&out))
}

fn cmd_output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().context("cannot run iscsi-test-cu")?;
    if out.status.code() == Some(124) {
        anyhow::bail!("iscsi-test-cu ran past its timeout");
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_and_failed_tests_are_told_apart() {
        let out = "Suite: Read10\n  Test: Simple ...passed\n  Test: Rdprotect ...    [SKIPPED] no PI\npassed\n\
                   Suite: iSCSIdatasn\n  Test: iSCSIDataSnInvalid ...    [FAILED] WRITE10\nFAILED\n    1. x.c:116  - CU_ASSERT\n\
                   Suite: Reserve6\n  Test: LUNReset ...passed\n    [FAILED] PRIN after the test\n\
                   Suite: Nop\n  Test: Bad ...FAILED\n\
                   \nRun Summary:    Type  Total    Ran Passed Failed Inactive\n";
        let s = parse(out);
        assert_eq!(s.total, 5);
        assert_eq!(s.passed(), 2);
        assert_eq!(s.skipped, ["Read10.Rdprotect"]);
        assert_eq!(s.failed, ["iSCSIdatasn.iSCSIDataSnInvalid", "Nop.Bad"]);
    }
}
