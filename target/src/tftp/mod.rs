//! The TFTP server: read requests only, RFC 1350 with options (RFC 2347), blksize (2348), tsize and
//! timeout (2349) and windowsize (7440). Files come from a [`Resolver`]: the root folder, or boot
//! configuration generated per client.
//!
//! Layout: [`packet`] (wire codec), [`options`] (negotiation policy), [`transfer`] (the sans-IO
//! read-transfer state machine) are pure and fuzzed; [`server`] (with `io.rs`) is the thin adapter and
//! `root.rs` the file system side of [`RootDir`].
//!
//! Write requests are refused with error 2. A "netascii" read is served as octet: the bytes
//! go out unchanged (no LF to CR LF translation), because boot files are binary and a
//! translated size would break tsize; "mail" and unknown modes are refused with error 4.
//!
//! CONTRACT (filled in by the TFTP work; `main` builds [`Settings`] and runs [`Server::serve`]).
//! Names here are the interface; add items if needed, do not rename.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod io;
pub mod options;
pub mod packet;
mod root;
pub mod server;
pub mod transfer;

pub use server::{Bound, Server};

/// Server settings from `[server]` and `[tftp]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where requests arrive (server address, port 69).
    pub listen: SocketAddr,
    /// Bind to this interface (SO_BINDTODEVICE) when set.
    pub interface: Option<String>,
    /// Transfers in flight at most; further requests get an error packet.
    pub max_transfers: usize,
    /// Largest blksize granted.
    pub max_blksize: u16,
    /// Largest windowsize granted.
    pub max_window: u16,
    /// Retransmission timeout when the client asks for none.
    pub timeout: Duration,
    /// Retransmissions before a transfer is abandoned.
    pub retries: u32,
}

/// What a read request is answered with.
#[derive(Debug)]
pub enum Source {
    /// A file opened inside the root.
    File(std::fs::File),
    /// Content generated in memory (per-client boot configuration).
    Bytes(Arc<[u8]>),
}

/// Why a file cannot be served (each maps to a TFTP error code and a log line).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Error 1.
    #[error("not found")]
    NotFound,
    /// Error 2, with the reason logged (never sent in more detail than "access violation").
    #[error("access denied: {0}")]
    Denied(String),
    /// Error 0 with the message.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Maps a requested path to its content.
pub trait Resolver: Send + Sync + std::fmt::Debug + 'static {
    /// Open `path` (as the client sent it) for `peer`.
    fn open(&self, path: &str, peer: SocketAddr) -> Result<Source, OpenError>;
}

/// Files under one folder, with no way out of it ('..', absolute paths and symlinks that leave
/// the root are refused).
#[derive(Debug, Clone)]
pub struct RootDir {
    /// The folder.
    pub root: PathBuf,
}
