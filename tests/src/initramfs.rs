//! The initramfs builder: busybox, kernel modules with their dependencies in load order (from
//! modules.dep), extra host binaries with their shared libraries, files, and a generated `/init`.
//!
//! The generated `/init` mounts /proc, /sys and /dev, stamps the boot timeline
//! (`PXRT-T <uptime> <label>`, see [`crate::timeline`]), insmods the modules in dependency order,
//! then runs the test's script. `fail MESSAGE` in the script prints `PXRT-FAIL MESSAGE` and powers
//! off, so that a failing guest stops at once with its reason on the console.
//!
//! Modules given to [`Builder::module_tree`] are not loaded by `/init`: they are installed as a
//! module tree `/lib/modules/<release>/` with a `modules.dep` that covers exactly them, the way
//! a distribution initramfs ships them, for a program in the guest (pxeroot-initiator, busybox
//! modprobe) to load itself.
//!
//! [`Builder::build_cached`] reuses an archive built from the same inputs (by this or an earlier
//! process), so a test file that boots many guests from one initramfs builds it once; the cache
//! keeps the 8 most recently used archives.

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
    tree_modules: Vec<String>,
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
            tree_modules: Vec::new(),
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

    /// Kernel modules by name, installed with their dependencies under
    /// `/lib/modules/<release>/` (same relative paths as on the host) with a `modules.dep`,
    /// `modules.order` and `modules.builtin` covering them; `/init` does not load them.
    pub fn module_tree(mut self, names: &[&str]) -> Self {
        self.tree_modules
            .extend(names.iter().map(|s| s.to_string()));
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

    /// Build into `dir` under a name derived from every input (kernel, modules, binaries' size
    /// and modification time, files, script), or return that archive when it already exists.
    /// The staging tree is removed after a build.
    ///
    /// # Errors
    /// As [`Builder::build`], or when a binary cannot be looked at.
    pub fn build_cached(self, dir: &Path) -> Result<PathBuf> {
        // One build at a time in this process: test threads asking for the same archive wait
        // for the first one's build and then reuse it.
        static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _building = BUILDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = self.cache_key()?;
        let out = dir.join(format!("initrd-{key:016x}.cpio"));
        if out.is_file() {
            // Mark it used, so that pruning keeps it.
            if let Ok(f) = fs::File::options().append(true).open(&out) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
            return Ok(out);
        }
        let work = dir.join(format!("initrd-{key:016x}.{}.work", std::process::id()));
        fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
        // Build beside the final name and rename, so a concurrent or killed build never leaves
        // a half-written archive under the cached name.
        let partial = work.join("initrd.cpio");
        let built = self.build(&work, &partial);
        let done = built.and_then(|p| {
            fs::rename(&p, &out)
                .with_context(|| format!("cannot move {} to {}", p.display(), out.display()))
        });
        let _ = fs::remove_dir_all(&work);
        done?;
        prune_cache(dir, CACHE_KEEP);
        Ok(out)
    }

    fn cache_key(&self) -> Result<u64> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.kernel.version.hash(&mut h);
        self.kernel.vmlinuz.hash(&mut h);
        self.modules.hash(&mut h);
        self.tree_modules.hash(&mut h);
        for bin in self.binaries.iter().chain([&PathBuf::from("/bin/busybox")]) {
            let meta =
                fs::metadata(bin).with_context(|| format!("cannot look at {}", bin.display()))?;
            bin.hash(&mut h);
            meta.len().hash(&mut h);
            meta.modified()?.hash(&mut h);
        }
        self.files.hash(&mut h);
        self.script.hash(&mut h);
        Ok(h.finish())
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
        if !self.tree_modules.is_empty() {
            install_module_tree(
                &self.kernel.modules,
                &root.join("lib/modules").join(&self.kernel.version),
                &self.tree_modules,
            )?;
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

/// Archives [`Builder::build_cached`] keeps (each agent build makes a new one).
const CACHE_KEEP: usize = 8;

/// Remove all but the `keep` most recently used archives in a cache folder (best effort).
fn prune_cache(dir: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut archives: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("initrd-") && n.ends_with(".cpio"))
        })
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    archives.sort_by_key(|a| std::cmp::Reverse(a.0));
    for (_, old) in archives.iter().skip(keep) {
        let _ = fs::remove_file(old);
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

/// Copy `wanted` modules and their dependencies from `from` (a host `lib/modules/<release>`)
/// to `to`, keeping their relative paths, with `modules.dep` and `modules.order` restricted to
/// them and the kernel's `modules.builtin`.
fn install_module_tree(from: &Path, to: &Path, wanted: &[String]) -> Result<()> {
    let order = resolve_modules(from, wanted)?;
    let set: HashSet<&str> = order.iter().map(String::as_str).collect();
    for rel in &order {
        copy(&from.join(rel), &to.join(rel))?;
    }
    let restrict = |name: &str| -> Result<String> {
        let path = from.join(name);
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(text
            .lines()
            .filter(|l| {
                let module = l.split(':').next().unwrap_or(l).trim();
                set.contains(module)
            })
            .map(|l| format!("{l}\n"))
            .collect())
    };
    fs::write(to.join("modules.dep"), restrict("modules.dep")?)?;
    fs::write(to.join("modules.order"), restrict("modules.order")?)?;
    copy(&from.join("modules.builtin"), &to.join("modules.builtin"))?;
    Ok(())
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
    for lib in shared_libraries(bin)? {
        copy(&lib, &root.join(lib.strip_prefix("/").unwrap_or(&lib)))?;
    }
    Ok(())
}

/// The shared libraries `ldd` lists for `bin`, the dynamic loader included (none for a static
/// binary; the vDSO has no file and is left out).
///
/// # Errors
/// When ldd cannot run.
pub fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .context("cannot run ldd")?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// Library paths from ldd's output.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            // "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line.split_whitespace().next(),
            }
        })
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
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
    fn module_tree_keeps_paths_and_restricts_modules_dep() {
        let from = deps_dir(
            "kernel/s/sd_mod.ko: kernel/s/scsi_mod.ko kernel/s/scsi_common.ko\n\
             kernel/s/scsi_mod.ko: kernel/s/scsi_common.ko\n\
             kernel/s/scsi_common.ko:\n\
             kernel/n/virtio_net.ko: kernel/n/failover.ko\n\
             kernel/n/failover.ko:\n",
        );
        fs::write(
            from.join("modules.order"),
            "kernel/s/scsi_common.ko\nkernel/n/failover.ko\nkernel/s/sd_mod.ko\n",
        )
        .unwrap();
        fs::write(
            from.join("modules.builtin"),
            "kernel/crypto/crc32c_generic.ko\n",
        )
        .unwrap();
        fs::create_dir_all(from.join("kernel/s")).unwrap();
        fs::create_dir_all(from.join("kernel/n")).unwrap();
        for m in [
            "sd_mod",
            "scsi_mod",
            "scsi_common",
            "virtio_net",
            "failover",
        ] {
            let dir = if m.contains("virtio") || m == "failover" {
                "n"
            } else {
                "s"
            };
            fs::write(from.join(format!("kernel/{dir}/{m}.ko")), m).unwrap();
        }
        let to = from.join("out/lib/modules/9.9");
        install_module_tree(&from, &to, &["sd_mod".into()]).unwrap();
        assert_eq!(
            fs::read_to_string(to.join("modules.dep")).unwrap(),
            "kernel/s/sd_mod.ko: kernel/s/scsi_mod.ko kernel/s/scsi_common.ko\n\
             kernel/s/scsi_mod.ko: kernel/s/scsi_common.ko\n\
             kernel/s/scsi_common.ko:\n"
        );
        assert_eq!(
            fs::read_to_string(to.join("modules.order")).unwrap(),
            "kernel/s/scsi_common.ko\nkernel/s/sd_mod.ko\n"
        );
        assert_eq!(
            fs::read_to_string(to.join("kernel/s/scsi_mod.ko")).unwrap(),
            "scsi_mod"
        );
        assert!(to.join("modules.builtin").is_file());
        assert!(!to.join("kernel/n/virtio_net.ko").exists());
        fs::remove_dir_all(from).unwrap();
    }

    #[test]
    fn ldd_output_gives_library_paths_without_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffc)\n\
                    \tlibkmod.so.2 => /lib/x86_64-linux-gnu/libkmod.so.2 (0x00007f8d)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f8d)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libkmod.so.2"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tstatically linked\n").is_empty());
    }

    #[test]
    fn cache_pruning_keeps_the_most_recently_used() {
        let dir = std::env::temp_dir().join(format!("pxrt-prune-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let base = std::time::SystemTime::now();
        for i in 0..4u64 {
            let p = dir.join(format!("initrd-{i}.cpio"));
            fs::write(&p, b"x").unwrap();
            let f = fs::File::options().append(true).open(&p).unwrap();
            f.set_modified(base - std::time::Duration::from_secs(100 - i))
                .unwrap();
        }
        fs::write(dir.join("other.txt"), b"kept").unwrap();
        prune_cache(&dir, 2);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["initrd-2.cpio", "initrd-3.cpio", "other.txt"]);
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
