//! The two files Debian's initramfs hook copies into the initramfs:
//!
//! * `/etc/iscsi.initramfs`: shell variable assignments that Debian's script sources
//!   (`ISCSI_INITIATOR`, `ISCSI_TARGET_NAME`, `ISCSI_TARGET_IP`, `ISCSI_TARGET_PORT`,
//!   `ISCSI_TARGET_GROUP`, `ISCSI_USERNAME`, `ISCSI_PASSWORD`, `ISCSI_IN_USERNAME`,
//!   `ISCSI_IN_PASSWORD`, and `ISCSI_AUTO`). It is the right place for CHAP secrets: unlike
//!   the kernel command line it is not readable by every user of the booted system.
//! * `/etc/initiatorname.iscsi`: `InitiatorName=iqn....`.
//!
//! The file is not run through a shell: assignments `[export ]NAME=VALUE` are read with the
//! shell's quoting (`'...'`, `"..."` with `\` escapes, `\` outside quotes, `#` comments), and
//! a value that needs expansion (`$`, backquotes) is an error rather than a surprise. Other
//! lines are ignored with a warning. Errors name the file, line and variable, never the value.

use super::super::cmdline::{self, CmdlineError, IscsiArgs};

/// A problem in one of the configuration files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {problem}")]
pub struct FileError {
    /// The file's path.
    pub file: &'static str,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (names the variable, never its value).
    pub problem: String,
}

/// Path of Debian's variable file inside the initramfs.
pub const ISCSI_INITRAMFS: &str = "/etc/iscsi.initramfs";
/// Path of the initiator name file inside the initramfs.
pub const INITIATORNAME: &str = "/etc/initiatorname.iscsi";

/// Splits one shell word (the value of an assignment); `Err` holds the reason.
fn shell_value(raw: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("unterminated single quote"),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                        Some('\n') => {}
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("unterminated double quote"),
                    },
                    Some('$' | '`') => {
                        return Err("variable or command expansion is not supported")
                    }
                    Some(c) => out.push(c),
                    None => return Err("unterminated double quote"),
                }
            },
            '\\' => match chars.next() {
                Some(c) => out.push(c),
                None => return Err("trailing backslash"),
            },
            '$' | '`' => return Err("variable or command expansion is not supported"),
            '#' if out.is_empty() => break,
            c if c.is_whitespace() => {
                // End of the word; only a comment may follow.
                let rest = chars.as_str().trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
                return Err("more than one word after '=' (quote the value)");
            }
            ';' => {
                let rest = chars.as_str().trim();
                if rest.is_empty() {
                    break;
                }
                return Err("several commands on one line are not supported");
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Reads `/etc/iscsi.initramfs`. Returns the settings and warnings for ignored lines.
///
/// # Errors
/// [`FileError`] for a malformed assignment to a known variable or a bad value.
pub fn parse_iscsi_initramfs(text: &str) -> Result<(IscsiArgs, Vec<String>), FileError> {
    let mut args = IscsiArgs::default();
    let mut warnings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let err = |problem: String| FileError {
            file: ISCSI_INITRAMFS,
            line: line_no,
            problem,
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
        let Some((name, raw)) = t.split_once('=') else {
            warnings.push(format!(
                "{ISCSI_INITRAMFS} line {line_no}: not an assignment, ignored"
            ));
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            warnings.push(format!(
                "{ISCSI_INITRAMFS} line {line_no}: not an assignment, ignored"
            ));
            continue;
        }
        let key = match name {
            "ISCSI_INITIATOR" => "iscsi_initiator",
            "ISCSI_TARGET_NAME" => "iscsi_target_name",
            "ISCSI_TARGET_IP" => "iscsi_target_ip",
            "ISCSI_TARGET_PORT" => "iscsi_target_port",
            "ISCSI_TARGET_GROUP" => "iscsi_target_group",
            "ISCSI_USERNAME" => "iscsi_username",
            "ISCSI_PASSWORD" => "iscsi_password",
            "ISCSI_IN_USERNAME" => "iscsi_in_username",
            "ISCSI_IN_PASSWORD" => "iscsi_in_password",
            "ISCSI_AUTO" => "iscsi_auto",
            _ => continue,
        };
        let value = shell_value(raw).map_err(|p| err(format!("{name}: {p}")))?;
        if value.is_empty() {
            // `ISCSI_PASSWORD=` is how the template leaves a variable unset.
            continue;
        }
        let value = if key == "iscsi_auto" {
            match value.as_str() {
                "true" | "yes" | "1" | "y" => "1".to_owned(),
                _ => "0".to_owned(),
            }
        } else {
            value
        };
        let mut one = IscsiArgs::default();
        cmdline::set_iscsi_arg(&mut one, key, Some(&value))
            .map_err(|CmdlineError { problem, .. }| err(format!("{name}: {problem}")))?;
        merge_iscsi(&mut args, one);
    }
    Ok((args, warnings))
}

/// Overlays the values `top` sets onto `base`.
pub(crate) fn merge_iscsi(base: &mut IscsiArgs, top: IscsiArgs) {
    fn set<T>(b: &mut Option<T>, t: Option<T>) {
        if t.is_some() {
            *b = t;
        }
    }
    set(&mut base.initiator, top.initiator);
    set(&mut base.target_name, top.target_name);
    set(&mut base.target_ips, top.target_ips);
    set(&mut base.target_port, top.target_port);
    set(&mut base.target_group, top.target_group);
    set(&mut base.username, top.username);
    set(&mut base.password, top.password);
    set(&mut base.in_username, top.in_username);
    set(&mut base.in_password, top.in_password);
    set(&mut base.use_ibft, top.use_ibft);
    set(&mut base.login_retry_max, top.login_retry_max);
    base.params.extend(top.params);
}

/// Reads `/etc/initiatorname.iscsi`: the last `InitiatorName=` line.
///
/// # Errors
/// [`FileError`] if the name is not a valid iSCSI name.
pub fn parse_initiatorname(text: &str) -> Result<Option<String>, FileError> {
    let mut name = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("InitiatorName=") {
            let v = v.trim();
            name = Some(
                cmdline::parse_iscsi_name("InitiatorName", v).map_err(|e| FileError {
                    file: INITIATORNAME,
                    line: n + 1,
                    problem: format!("InitiatorName: {}", e.problem),
                })?,
            );
        }
    }
    Ok(name)
}
