//! Disk images: ext4 filesystems made from a directory tree with `mkfs.ext4 -d`, no loop device
//! or mount needed.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::process::run;

/// Make a sparse ext4 image of `size_mib` at `out` holding the tree under `tree`.
///
/// # Errors
/// When the image cannot be made.
pub fn ext4_from_dir(tree: &Path, out: &Path, size_mib: u64) -> Result<()> {
    let file = fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    file.set_len(size_mib * 1024 * 1024)?;
    drop(file);
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "pxeroot-lab", "-d"])
        .arg(tree)
        .arg(out))?;
    Ok(())
}

/// Make an ext4 image holding the given files (path relative to the filesystem root, contents).
///
/// # Errors
/// When the tree or the image cannot be written.
pub fn ext4_with_files(
    work: &Path,
    out: &Path,
    size_mib: u64,
    files: &[(&str, &[u8])],
) -> Result<()> {
    let tree = work.join(format!(
        "{}.tree",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    if tree.exists() {
        fs::remove_dir_all(&tree)?;
    }
    fs::create_dir_all(&tree)?;
    for (path, contents) in files {
        let dest = tree.join(path.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&dest, contents)?;
    }
    ext4_from_dir(&tree, out, size_mib)?;
    fs::remove_dir_all(&tree)?;
    Ok(())
}
