//! [`RootDir`]: files under one folder, and no way out of it.
//!
//! The requested path is checked as text first (no absolute path, no '..' component; '\' is
//! read as '/' because some PXE ROMs send DOS paths, so "..\x" is refused like "../x"), then the
//! joined path is canonicalised (symlinks resolved) and must still lie inside the canonical
//! root, and must be a regular file. The final open uses O_NOFOLLOW on the canonical path, so a
//! symlink swapped in after the check is refused rather than followed, and O_NONBLOCK so that a
//! FIFO never blocks the server (it is then refused as not regular).

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{OpenError, Resolver, RootDir, Source};

impl RootDir {
    /// Serve the files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> RootDir {
        RootDir { root: root.into() }
    }

    /// The relative path `path` names, or why it is refused (text checks only).
    ///
    /// # Errors
    /// [`OpenError::Denied`] for an absolute path or a '..' component.
    pub fn relative(path: &str) -> Result<PathBuf, OpenError> {
        let path = path.replace('\\', "/");
        if path.starts_with('/') {
            return Err(OpenError::Denied("absolute path".into()));
        }
        let mut rel = PathBuf::new();
        for part in path.split('/') {
            match part {
                ".." => return Err(OpenError::Denied("'..' in the path".into())),
                "" | "." => {}
                p => rel.push(p),
            }
        }
        if rel.as_os_str().is_empty() {
            return Err(OpenError::Denied("no file name".into()));
        }
        Ok(rel)
    }
}

fn io_error(e: std::io::Error) -> OpenError {
    match e.kind() {
        ErrorKind::NotFound => OpenError::NotFound,
        ErrorKind::PermissionDenied => OpenError::Denied("permission denied".into()),
        _ => OpenError::Io(e),
    }
}

impl Resolver for RootDir {
    fn open(&self, path: &str, _peer: SocketAddr) -> Result<Source, OpenError> {
        let rel = RootDir::relative(path)?;
        let root = self.root.canonicalize().map_err(OpenError::Io)?;
        let full = root.join(rel).canonicalize().map_err(io_error)?;
        if !full.starts_with(&root) {
            return Err(OpenError::Denied(format!(
                "resolves outside the root, to {}",
                full.display()
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&full)
            .map_err(|e| {
                if e.raw_os_error() == Some(nix::libc::ELOOP) {
                    OpenError::Denied("a symlink appeared during the open".into())
                } else {
                    io_error(e)
                }
            })?;
        if !file.metadata().map_err(OpenError::Io)?.is_file() {
            return Err(OpenError::Denied("not a regular file".into()));
        }
        Ok(Source::File(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn peer() -> SocketAddr {
        "10.0.0.5:2000".parse().unwrap()
    }

    fn denied(r: Result<Source, OpenError>) -> String {
        match r {
            Err(OpenError::Denied(why)) => why,
            other => panic!("not denied: {other:?}"),
        }
    }

    #[test]
    fn serves_files_and_refuses_escapes() {
        let dir = std::env::temp_dir().join(format!("pxeroot-tftp-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("pxelinux.cfg")).unwrap();
        std::fs::write(root.join("pxelinux.cfg/default"), b"hello").unwrap();
        std::fs::write(dir.join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink("pxelinux.cfg/default", root.join("inside")).unwrap();
        let r = RootDir::new(&root);

        for ok in [
            "pxelinux.cfg/default",
            "./pxelinux.cfg//default",
            "pxelinux.cfg\\default",
            "inside",
        ] {
            let Ok(Source::File(mut f)) = r.open(ok, peer()) else {
                panic!("{ok} not served")
            };
            let mut s = String::new();
            f.read_to_string(&mut s).unwrap();
            assert_eq!(s, "hello", "{ok}");
        }
        assert!(denied(r.open("/etc/passwd", peer())).contains("absolute"));
        assert!(denied(r.open("\\etc\\passwd", peer())).contains("absolute"));
        assert!(denied(r.open("../../etc/passwd", peer())).contains(".."));
        assert!(denied(r.open("pxelinux.cfg/../../x", peer())).contains(".."));
        assert!(denied(r.open("pxelinux.cfg\\..\\..\\x", peer())).contains(".."));
        assert!(denied(r.open("escape", peer())).contains("outside the root"));
        assert!(denied(r.open("pxelinux.cfg", peer())).contains("regular"));
        assert!(denied(r.open(".", peer())).contains("no file name"));
        assert!(matches!(
            r.open("missing", peer()),
            Err(OpenError::NotFound)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
