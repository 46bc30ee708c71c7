//! The shell scripts (tools/, hooks/, .ci/): checks that need no lab.
//!
//! Under `set -o pipefail`, `producer | grep -q ...` (or `| head`, or an awk that exits early)
//! fails at random: the reader exits at its first match, the producer then dies of SIGPIPE if it
//! still has output to write, and pipefail turns that into the pipeline's status. That made
//! `tools/provision` report "the initramfs lacks sbin/pxeroot-initiator" on a dracut listing
//! that held it. Scripts use here-strings (`grep -q X <<< "$text"`) instead.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use pxeroot_tests::paths::workspace_root;

/// Every shell script of the repository: files under tools/, hooks/ and .ci/ whose first line
/// is a `sh` or `bash` shebang.
fn scripts() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if std::fs::read_to_string(&p)
                .map(|t| {
                    let first = t.lines().next().unwrap_or("");
                    first.starts_with("#!") && (first.ends_with("sh") || first.ends_with("bash"))
                })
                .unwrap_or(false)
            {
                out.push(p);
            }
        }
    }
    let root = workspace_root();
    let mut out = Vec::new();
    for d in ["tools", "hooks", ".ci"] {
        walk(&root.join(d), &mut out);
    }
    out.sort();
    out
}

/// The reader of each `|` in `line` (not `||`), trimmed, comments cut.
fn pipe_readers(line: &str) -> Vec<String> {
    let code = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    };
    if code.trim_start().starts_with('#') {
        return Vec::new();
    }
    let b = code.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len() {
        let prev = i.checked_sub(1).map(|j| b[j]);
        if b[i] == b'|' && prev != Some(b'|') && b.get(i + 1) != Some(&b'|') {
            out.push(code[i + 1..].trim_start().to_string());
        }
    }
    out
}

fn exits_early(reader: &str) -> bool {
    let first: Vec<&str> = reader.split_whitespace().take(2).collect();
    match first.as_slice() {
        ["grep", opt, ..] => opt.starts_with('-') && !opt.starts_with("--") && opt.contains('q'),
        ["head", ..] => true,
        ["awk", ..] => {
            let end = reader.find(['|', ')']).unwrap_or(reader.len());
            reader[..end].contains("exit")
        }
        _ => false,
    }
}

#[test]
fn the_check_finds_the_pattern_that_broke_provisioning() {
    let bad =
        r#"        printf '%s\n' "$list" | grep -q "$want" || die "the initramfs lacks $want""#;
    assert!(pipe_readers(bad).iter().any(|r| exits_early(r)));
    for bad in [
        "x=$(ls a | head -n1)",
        "v=$(printf '%s\\n' \"$o\" | awk '$1 == \"A\" { print $2; exit }')",
    ] {
        assert!(pipe_readers(bad).iter().any(|r| exits_early(r)), "{bad}");
    }
    for fine in [
        r#"grep -q -- "$want" <<< "$list" || die "lacks $want""#,
        "a | grep -c x",
        "a || head -n1 f",
        "# printf x | grep -q y",
        "a | awk '{ print $1 }'",
    ] {
        assert!(!pipe_readers(fine).iter().any(|r| exits_early(r)), "{fine}");
    }
}

#[test]
fn no_pipefail_script_pipes_into_a_reader_that_stops_early() {
    let scripts = scripts();
    assert!(
        scripts.iter().any(|p| p.ends_with("tools/provision")),
        "no scripts found under {}",
        workspace_root().display()
    );
    let mut found = Vec::new();
    for path in &scripts {
        let text = std::fs::read_to_string(path).unwrap();
        if !text.contains("pipefail") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if pipe_readers(line).iter().any(|r| exits_early(r)) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "under pipefail these pipelines fail when the writer gets SIGPIPE; use a here-string:\n{}",
        found.join("\n")
    );
}
