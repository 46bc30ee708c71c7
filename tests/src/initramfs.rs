//! The initramfs builder: busybox, kernel modules with their dependencies in load order (from
//! modules.dep), extra host binaries with their shared libraries, files, and a generated `/init`.
//!
//! The generated `/init` mounts /proc, /sys and /dev, stamps the boot timeline
//! (`PXRT-T <uptime> <label>`, see [`crate::timeline`]), insmods the modules in dependency order,
//! then runs the test's script. `fail MESSAGE` in the script prints `PXRT-FAIL MESSAGE` and powers
//! off, so that a failing guest stops at once with its reason on the console.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::paths::Kernel;
use crate::process::run_stdout;

/// The console marker of a failed guest step.
pub const FAIL: &str = "PXRT-FAIL";

/// Builds one initramfs.
#[derive(Debug)]
pub struct Builder<'k> {
    kernel: &'k Kernel,
    modules: Vec<String>,
    binaries: Vec<PathBuf>,
    files: Vec<(String, Vec<u8>, u32)>,
    script: String,
}

impl<'k> Builder<'k> {
    /// An initramfs for `kernel` with busybox and nothing else.
    pub fn new(kernel: &'k Kernel) -> Self {
        Builder {
            kernel,
            modules: Vec::new(),
            binaries: Vec::new(),
            files: Vec::new(),
            script: String::new(),
        }
    }

    /// Kernel modules by name (`iscsi_tcp`, `virtio_net`, ...); their dependencies are added.
    pub fn modules(mut self, names: &[&str]) -> Self {
        self.modules.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// A host binary, copied to the same path with every shared library `ldd` lists.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binaries.push(path.into());
        self
    }

    /// A file at `path` (absolute, inside the initramfs) with the given mode.
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files.push((path.to_string(), contents.into(), mode));
        self
    }

    /// The test's steps, run by `/init` after the modules are loaded (busybox sh).
    pub fn script(mut self, script: &str) -> Self {
        self.script.push_str(script);
        self.script.push('\n');
        self
    }

    /// Write the staging tree under `work` and the newc cpio archive at `out`.
    ///
    /// # Errors
    /// When a module, binary or library is missing, or cpio fails.
    pub fn build(self, work: &Path, out: &Path) -> Result<PathBuf> {
        let root = work.join("initramfs-root");
        if root.exists() {
            fs::remove_dir_all(&root)?;
        }
        for dir in [
            "bin",
            "sbin",
            "etc",
            "proc",
            "sys",
            "dev",
            "run",
            "tmp",
            "mnt",
            "root",
            "lib/modules",
        ] {
            fs::create_dir_all(root.join(dir))?;
        }
        install_busybox(&root)?;
        let order = resolve_modules(&self.kernel.modules, &self.modules)?;
        let mut names = Vec::new();
        for rel in &order {
            let name = module_name(rel);
            copy(
                &self.kernel.modules.join(rel),
                &root.join("lib/modules").join(format!("{name}.ko")),
            )?;
            names.push(name);
        }
        for bin in &self.binaries {
            install_binary(&root, bin)?;
        }
        for (path, contents, mode) in &self.files {
            write_file(&root, path, contents, *mode)?;
        }
        write_file(
            &root,
            "/init",
            init_script(&names, &self.script).as_bytes(),
            0o755,
        )?;
        let file =
            fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
        // find | cpio from inside the tree: newc format, owned by root.
        let list = run_stdout(Command::new("find").arg(".").current_dir(&root))?;
        let mut child = Command::new("cpio")
            .args(["-o", "-H", "newc", "--quiet", "-R", "0:0"])
            .current_dir(&root)
            .stdin(std::process::Stdio::piped())
            .stdout(file)
            .spawn()
            .context("cannot start cpio")?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(list.as_bytes())?;
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("cpio failed ({status}) building {}", out.display());
        }
        Ok(out.to_path_buf())
    }
}

/// The `/init` script: prelude, module loading, the test's steps, power-off.
fn init_script(modules: &[String], script: &str) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         export PATH=/sbin:/bin:/usr/sbin:/usr/bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         stamp() { read up idle < /proc/uptime; echo \"PXRT-T $up $*\"; }\n\
         fail() { echo \"PXRT-FAIL $*\"; poweroff -f; sleep 60; }\n\
         stamp initramfs-start\n",
    );
    for m in modules {
        s.push_str(&format!(
            "insmod /lib/modules/{m}.ko || fail \"insmod {m}\"\n"
        ));
    }
    s.push_str("stamp modules-loaded\n");
    s.push_str(script);
    s.push_str("stamp poweroff\npoweroff -f\nsleep 60\n");
    s
}

/// Module name from a modules.dep path: `kernel/drivers/net/virtio_net.ko` -> `virtio_net`.
fn module_name(rel: &str) -> String {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    file.split(".ko").next().unwrap_or(file).to_string()
}

/// Resolve `wanted` modules with their dependencies into a load order, from `modules.dep`.
/// Names match with '-' and '_' treated alike, as modprobe does.
///
/// # Errors
/// When a module is not in modules.dep, or is compressed (busybox insmod loads plain .ko only).
pub fn resolve_modules(modules_dir: &Path, wanted: &[String]) -> Result<Vec<String>> {
    let dep_file = modules_dir.join("modules.dep");
    let text = fs::read_to_string(&dep_file)
        .with_context(|| format!("cannot read {}", dep_file.display()))?;
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    let mut by_name: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let Some((module, rest)) = line.split_once(':') else {
            continue;
        };
        deps.insert(
            module.to_string(),
            rest.split_whitespace().map(str::to_string).collect(),
        );
        by_name.insert(module_name(module).replace('-', "_"), module.to_string());
    }
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for name in wanted {
        let Some(path) = by_name.get(&name.replace('-', "_")) else {
            bail!(
                "module {name} is not in {} (built in, or not in this kernel?)",
                dep_file.display()
            );
        };
        visit(path, &deps, &mut seen, &mut order);
    }
    if let Some(c) = order.iter().find(|p| !p.ends_with(".ko")) {
        bail!("module {c} is compressed; the lab loads plain .ko files");
    }
    Ok(order)
}

/// Depth-first: a module's dependencies (transitive lists in modules.dep) load before it.
fn visit(
    path: &str,
    deps: &HashMap<String, Vec<String>>,
    seen: &mut HashSet<String>,
    order: &mut Vec<String>,
) {
    if !seen.insert(path.to_string()) {
        return;
    }
    for dep in deps.get(path).into_iter().flatten() {
        visit(dep, deps, seen, order);
    }
    order.push(path.to_string());
}

fn install_busybox(root: &Path) -> Result<()> {
    copy(Path::new("/bin/busybox"), &root.join("bin/busybox"))?;
    let list = run_stdout(Command::new("/bin/busybox").arg("--list-full"))?;
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let link = root.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        if !link.exists() && applet != "bin/busybox" {
            std::os::unix::fs::symlink("/bin/busybox", &link)?;
        }
    }
    Ok(())
}

/// Copy a binary and the shared libraries `ldd` reports (static binaries have none).
fn install_binary(root: &Path, bin: &Path) -> Result<()> {
    copy(bin, &root.join(bin.strip_prefix("/").unwrap_or(bin)))?;
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .context("cannot run ldd")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            let lib = Path::new(path);
            copy(lib, &root.join(lib.strip_prefix("/").unwrap_or(lib)))?;
        }
    }
    Ok(())
}

fn write_file(root: &Path, path: &str, contents: &[u8], mode: u32) -> Result<()> {
    let dest = root.join(path.trim_start_matches('/'));
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&dest, contents).with_context(|| format!("cannot write {}", dest.display()))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Copy following symlinks, creating parent folders, keeping the mode.
fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    if to.exists() {
        return Ok(());
    }
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps_dir(text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pxrt-deps-{}-{}", std::process::id(), text.len()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("modules.dep"), text).unwrap();
        dir
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let dir = deps_dir(
            "kernel/a/iscsi_tcp.ko: kernel/a/libiscsi_tcp.ko kernel/a/libiscsi.ko kernel/a/scsi_transport_iscsi.ko kernel/s/scsi_mod.ko kernel/s/scsi_common.ko\n\
             kernel/a/libiscsi_tcp.ko: kernel/a/libiscsi.ko kernel/a/scsi_transport_iscsi.ko kernel/s/scsi_mod.ko kernel/s/scsi_common.ko\n\
             kernel/a/libiscsi.ko: kernel/a/scsi_transport_iscsi.ko kernel/s/scsi_mod.ko kernel/s/scsi_common.ko\n\
             kernel/a/scsi_transport_iscsi.ko: kernel/s/scsi_mod.ko kernel/s/scsi_common.ko\n\
             kernel/s/scsi_mod.ko: kernel/s/scsi_common.ko\n\
             kernel/s/scsi_common.ko:\n\
             kernel/s/sd_mod.ko: kernel/s/scsi_mod.ko kernel/s/scsi_common.ko\n",
        );
        let order = resolve_modules(&dir, &["iscsi_tcp".into(), "sd-mod".into()]).unwrap();
        let names: Vec<String> = order.iter().map(|p| module_name(p)).collect();
        assert_eq!(
            names,
            [
                "scsi_common",
                "scsi_mod",
                "scsi_transport_iscsi",
                "libiscsi",
                "libiscsi_tcp",
                "iscsi_tcp",
                "sd_mod"
            ]
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_module_is_named() {
        let dir = deps_dir("kernel/s/scsi_common.ko:\n");
        let err = resolve_modules(&dir, &["nope".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("module nope is not in"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn init_loads_modules_then_runs_script() {
        let s = init_script(&["a".into(), "b".into()], "echo hi\n");
        let a = s.find("insmod /lib/modules/a.ko").unwrap();
        let b = s.find("insmod /lib/modules/b.ko").unwrap();
        let hi = s.find("echo hi").unwrap();
        assert!(a < b && b < hi && s.ends_with("poweroff -f\nsleep 60\n"));
    }
}
