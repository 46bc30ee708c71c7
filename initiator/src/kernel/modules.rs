//! Loading the kernel modules the attach needs, the way modprobe does: dependencies from
//! `/lib/modules/$(uname -r)/modules.dep`, loaded deepest first with `finit_module(2)`.
//! Built-in modules (`modules.builtin`) and modules already present (`/sys/module/NAME`) are
//! skipped. Compressed modules are handed to the kernel's own decompressor; if the kernel
//! lacks it, `modprobe` from the initramfs (kmod or busybox) is tried instead.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

use super::KernelError;

/// `MODULE_INIT_COMPRESSED_FILE` (Linux 5.17).
const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// The module name as the kernel spells it (`-` becomes `_`).
fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a path in modules.dep (`kernel/drivers/scsi/iscsi_tcp.ko.xz` -> `iscsi_tcp`).
fn name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    canonical(stem)
}

/// modules.dep: module name -> (its file, its dependencies' files in modules.dep order).
#[derive(Debug, Default)]
pub struct DepTable {
    entries: HashMap<String, (String, Vec<String>)>,
}

impl DepTable {
    /// Parses the text of modules.dep.
    pub fn parse(text: &str) -> Self {
        let mut entries = HashMap::new();
        for line in text.lines() {
            let Some((module, deps)) = line.split_once(':') else {
                continue;
            };
            let module = module.trim();
            if module.is_empty() {
                continue;
            }
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            entries.insert(name_of(module), (module.to_owned(), deps));
        }
        DepTable { entries }
    }

    /// The files to load for `name`, dependencies first; `None` if modules.dep lacks it.
    pub fn load_order(&self, name: &str) -> Option<Vec<String>> {
        let (file, deps) = self.entries.get(&canonical(name))?;
        // modprobe loads the listed dependencies from the last to the first.
        let mut order: Vec<String> = deps.iter().rev().cloned().collect();
        order.push(file.clone());
        Some(order)
    }
}

/// Whether `modules.builtin` names the module.
fn builtin(text: &str, name: &str) -> bool {
    let want = canonical(name);
    text.lines().any(|l| name_of(l.trim()) == want)
}

/// Whether the running kernel's `modules.builtin` lists any of `names`.
pub fn any_builtin(names: &[&str]) -> bool {
    modules_dir()
        .ok()
        .and_then(|d| std::fs::read_to_string(d.join("modules.builtin")).ok())
        .is_some_and(|text| names.iter().any(|n| builtin(&text, n)))
}

/// Where modules live for the running kernel.
pub fn modules_dir() -> Result<PathBuf, KernelError> {
    let uts = nix::sys::utsname::uname().map_err(|e| KernelError::socket("uname", e))?;
    let release = uts.release().to_string_lossy().into_owned();
    Ok(Path::new("/lib/modules").join(release))
}

/// Makes sure each named module is loaded or built in, loading it and its dependencies if not.
/// `log` receives one line per module loaded.
///
/// # Errors
/// [`KernelError::Module`] naming the module and the cause.
pub fn ensure(names: &[&str], log: &mut dyn FnMut(&str)) -> Result<(), KernelError> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !Path::new("/sys/module").join(canonical(n)).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let dir = modules_dir()?;
    let dep_text = std::fs::read_to_string(dir.join("modules.dep")).unwrap_or_default();
    let builtin_text = std::fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
    let table = DepTable::parse(&dep_text);
    for name in missing {
        if builtin(&builtin_text, name) {
            continue;
        }
        let Some(order) = table.load_order(name) else {
            if modprobe(name).is_ok() {
                log(&format!("{name} (modprobe)"));
                continue;
            }
            return Err(KernelError::Module {
                name: name.to_owned(),
                cause: format!(
                    "not loaded, not built in and not listed in {}",
                    dir.join("modules.dep").display()
                ),
            });
        };
        for file in order {
            let module = name_of(&file);
            if Path::new("/sys/module").join(&module).exists() {
                continue;
            }
            load_file(&dir.join(&file)).map_err(|cause| KernelError::Module {
                name: module.clone(),
                cause,
            })?;
            log(&module);
        }
    }
    Ok(())
}

fn load_file(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let compressed = !path.to_string_lossy().ends_with(".ko");
    let flags = if compressed {
        ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
    } else {
        ModuleInitFlags::empty()
    };
    let params = CString::default();
    match finit_module(&file, &params, flags) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) if compressed => {
            let name = name_of(&path.to_string_lossy());
            modprobe(&name).map_err(|m| {
                format!(
                    "{}: the kernel cannot decompress it ({e}) and modprobe failed: {m}",
                    path.display()
                )
            })
        }
        Err(e) => Err(format!("finit_module {}: {}", path.display(), e.desc())),
    }
}

fn modprobe(name: &str) -> Result<(), String> {
    for prog in ["/sbin/modprobe", "/usr/sbin/modprobe", "/bin/modprobe"] {
        if Path::new(prog).exists() {
            let status = std::process::Command::new(prog)
                .arg(name)
                .status()
                .map_err(|e| format!("{prog}: {e}"))?;
            return if status.success() {
                Ok(())
            } else {
                Err(format!("{prog} {name}: {status}"))
            };
        }
    }
    Err("no modprobe in /sbin, /usr/sbin or /bin".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/scsi/iscsi_tcp.ko: kernel/drivers/scsi/libiscsi_tcp.ko kernel/drivers/scsi/libiscsi.ko kernel/drivers/scsi/scsi_transport_iscsi.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/libiscsi_tcp.ko: kernel/drivers/scsi/libiscsi.ko kernel/drivers/scsi/scsi_transport_iscsi.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/sd_mod.ko.xz: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/crypto/crc32c-generic.ko:
garbage line without colon
";

    #[test]
    fn load_order_puts_dependencies_first() {
        let t = DepTable::parse(DEP);
        let order = t.load_order("iscsi_tcp").unwrap();
        let names: Vec<String> = order.iter().map(|f| name_of(f)).collect();
        assert_eq!(
            names,
            [
                "scsi_common",
                "scsi_mod",
                "scsi_transport_iscsi",
                "libiscsi",
                "libiscsi_tcp",
                "iscsi_tcp"
            ]
        );
        assert_eq!(
            t.load_order("sd_mod").unwrap().last().unwrap(),
            "kernel/drivers/scsi/sd_mod.ko.xz"
        );
        assert_eq!(t.load_order("crc32c_generic").unwrap().len(), 1);
        assert_eq!(t.load_order("crc32c-generic").unwrap().len(), 1);
        assert!(t.load_order("nope").is_none());
    }

    #[test]
    fn builtin_matches_canonical_names() {
        let text = "kernel/crypto/crc32c_generic.ko\nkernel/fs/ext4/ext4.ko\n";
        assert!(builtin(text, "crc32c-generic"));
        assert!(builtin(text, "ext4"));
        assert!(!builtin(text, "iscsi_tcp"));
    }
}
