//! Network namespaces for the lab, with RAII removal.
//!
//! Every test network lives inside a namespace of its own, named `pxrt-<pid>.<start>-<n>` after
//! the process that made it (its pid and its start time, so that pid reuse is told apart, and
//! so that any checkout of the project can tell a live run's namespace from a leftover without
//! looking at another checkout's files). All lab processes (QEMU, tgtd, dnsmasq, pxeroot-target) run inside it
//! through `ip netns exec`, so dropping the guard kills whatever still runs there and deletes the
//! namespace; and if the owning process was killed with SIGKILL and never dropped its guards,
//! [`cleanup_leftovers`] finds the namespace through its dead owner and does the same.
//!
//! Each namespace has a run folder `build/lab/runs/<name>/` (consoles, images, logs) in the
//! checkout that made it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::paths::runs_dir;
use crate::process::{alive, run, run_stdout, start_time};

/// Prefix of every namespace the lab creates.
pub const PREFIX: &str = "pxrt-";

/// The run folder's list of outside files to delete with the namespace.
const CLEANUP_LIST: &str = "cleanup-files";

/// A network namespace that is removed, with every process inside it, on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    run_dir: PathBuf,
}

impl Netns {
    /// Create a fresh namespace with loopback up and an empty run folder.
    ///
    /// # Errors
    /// When `ip netns add` fails or the run folder cannot be written.
    pub fn create() -> Result<Netns> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let own_start = start_time(pid as i32).unwrap_or(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{pid}.{own_start}-{seq}");
        let run_dir = runs_dir().join(&name);
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir)?;
        }
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("cannot create {}", run_dir.display()))?;
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name, run_dir };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run folder for this namespace's files.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Run `ip ARGS` inside the namespace.
    ///
    /// # Errors
    /// When ip fails; the message carries its stderr.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name]).args(args);
        run_stdout(&mut cmd)
    }

    /// A tap device for QEMU, with `cidr` (e.g. `10.0.0.2/24`) on the host side, link up.
    ///
    /// # Errors
    /// When the device cannot be created.
    pub fn add_tap(&self, dev: &str, cidr: &str) -> Result<()> {
        self.ip(&["tuntap", "add", "dev", dev, "mode", "tap"])?;
        self.ip(&["addr", "add", cidr, "dev", dev])?;
        self.ip(&["link", "set", dev, "up"])?;
        Ok(())
    }

    /// A veth pair inside this namespace, both ends up; `cidr_a` is set on `a` when given.
    ///
    /// # Errors
    /// When the pair cannot be created.
    pub fn add_veth(&self, a: &str, b: &str, cidr_a: Option<&str>) -> Result<()> {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b])?;
        if let Some(cidr) = cidr_a {
            self.ip(&["addr", "add", cidr, "dev", a])?;
        }
        self.ip(&["link", "set", a, "up"])?;
        self.ip(&["link", "set", b, "up"])?;
        Ok(())
    }

    /// Record a file outside the run folder (a daemon's control socket) to delete when the
    /// namespace is removed, by this guard or by [`cleanup_leftovers`].
    ///
    /// # Errors
    /// When the record cannot be written.
    pub fn remove_with_namespace(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.run_dir.join(CLEANUP_LIST))?;
        writeln!(f, "{}", path.display())?;
        Ok(())
    }

    /// Pids of the processes running inside the namespace.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.name, &self.run_dir) {
            eprintln!("lab: cannot remove namespace {}: {e:#}", self.name);
        }
    }
}

/// The namespaces that exist now with the lab's prefix.
pub fn lab_namespaces() -> Vec<String> {
    let out = run_stdout(Command::new("ip").args(["netns", "list"])).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

fn pids_in(name: &str) -> Vec<i32> {
    run_stdout(Command::new("ip").args(["netns", "pids", name]))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kill everything in the namespace, wait for it to die, delete the namespace and its folder.
fn remove(name: &str, run_dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live: Vec<i32> = pids_in(name).into_iter().filter(|p| alive(*p)).collect();
        if live.is_empty() {
            break;
        }
        for pid in &live {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if Instant::now() > deadline {
            anyhow::bail!("processes {live:?} in {name} survive SIGKILL");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if lab_namespaces().iter().any(|n| n == name) {
        // Another cleanup may delete it at the same moment; only a namespace that stays is
        // an error.
        if let Err(e) = run(Command::new("ip").args(["netns", "del", name])) {
            if lab_namespaces().iter().any(|n| n == name) {
                return Err(e);
            }
        }
    }
    if let Ok(list) = std::fs::read_to_string(run_dir.join(CLEANUP_LIST)) {
        for path in list.lines().filter(|l| !l.is_empty()) {
            let _ = std::fs::remove_file(path);
        }
    }
    if run_dir.exists() {
        unmount_below(run_dir);
        std::fs::remove_dir_all(run_dir)
            .with_context(|| format!("cannot remove {}", run_dir.display()))?;
    }
    Ok(())
}

/// Detach whatever a killed run left mounted inside its folder (`tools/provision` mounts /proc,
/// /sys and /run in the client's tree, and `--refresh` the client's disk), deepest first, so
/// that removing the folder never reaches into a mounted filesystem.
fn unmount_below(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else { return };
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let mut points: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        // /proc/mounts escapes space, tab, newline and backslash in octal.
        .map(|p| {
            PathBuf::from(
                p.replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\012", "\n")
                    .replace("\\134", "\\"),
            )
        })
        .filter(|p| p.starts_with(&dir) && p != &dir)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(&p).status();
    }
}

/// Whether the process a namespace or run folder is named after (`pxrt-<pid>.<start>-<n>`) is
/// still running. Names that do not parse belong to nobody.
fn owner_alive(name: &str) -> bool {
    let owner = name
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .map(|(o, _)| o);
    let parsed = owner
        .and_then(|o| o.split_once('.'))
        .and_then(|(pid, start)| Some((pid.parse::<i32>().ok()?, start.parse::<u64>().ok()?)));
    match parsed {
        Some((pid, start)) => alive(pid) && start_time(pid) == Some(start),
        None => false,
    }
}

/// Remove the namespaces (with their processes) and run folders whose owner is dead: what a
/// test run killed with SIGKILL left behind. Returns the names removed.
///
/// # Errors
/// When a leftover cannot be removed.
pub fn cleanup_leftovers() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in lab_namespaces() {
        let dir = runs_dir().join(&name);
        if !owner_alive(&name) {
            remove(&name, &dir)?;
            removed.push(name);
        }
    }
    if let Ok(entries) = std::fs::read_dir(runs_dir()) {
        for entry in entries.flatten() {
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && !owner_alive(&name) && !removed.contains(&name) {
                remove(&name, &dir)?;
                removed.push(name);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_recognised_by_pid_and_start_time() {
        let pid = std::process::id();
        let start = start_time(pid as i32).unwrap();
        assert!(owner_alive(&format!("{PREFIX}{pid}.{start}-0")));
        assert!(
            !owner_alive(&format!("{PREFIX}{pid}.{}-0", start + 1)),
            "a reused pid is not the owner"
        );
        assert!(
            !owner_alive(&format!("{PREFIX}{pid}-0")),
            "old-style names belong to nobody"
        );
        assert!(!owner_alive("pxrt-garbage"));
    }
}
