//! Where the lab keeps its files: everything lives under `build/lab/` in the workspace, next to
//! Cargo's output, so that `git clean` or removing `build/` resets the lab.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The workspace root (the folder holding the virtual `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `build/lab`: the kernel cache, per-run folders and build artefacts of the lab.
pub fn lab_dir() -> PathBuf {
    workspace_root().join("build").join("lab")
}

/// Per-namespace run folders (consoles, images, logs). Removed with their namespace.
pub fn runs_dir() -> PathBuf {
    lab_dir().join("runs")
}

/// A Debian kernel unpacked by `tools/setup`: the bootable image and its module tree.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The kernel release, e.g. `6.1.0-56-cloud-amd64`.
    pub version: String,
    /// The bootable bzImage.
    pub vmlinuz: PathBuf,
    /// `lib/modules/<version>` holding `modules.dep`.
    pub modules: PathBuf,
}

impl Kernel {
    /// The kernel that `tools/setup` recorded in `build/lab/kernel/current`.
    ///
    /// # Errors
    /// When setup has not run, or its cache is incomplete; the message says what is missing.
    pub fn locate() -> Result<Kernel> {
        let dir = lab_dir().join("kernel");
        let current = dir.join("current");
        let version = std::fs::read_to_string(&current)
            .with_context(|| format!("no kernel cache at {} (run tools/setup)", current.display()))?
            .trim()
            .to_string();
        let root = dir.join(&version);
        let kernel = Kernel {
            vmlinuz: root.join("boot").join(format!("vmlinuz-{version}")),
            modules: root.join("lib/modules").join(&version),
            version,
        };
        for needed in [&kernel.vmlinuz, &kernel.modules.join("modules.dep")] {
            if !needed.exists() {
                bail!(
                    "kernel cache incomplete: {} is missing (run tools/setup)",
                    needed.display()
                );
            }
        }
        Ok(kernel)
    }
}
