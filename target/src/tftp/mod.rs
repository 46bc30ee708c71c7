//! The TFTP server: read requests only, RFC 1350 with options (RFC 2347), blksize (2348), tsize and
//! timeout (2349) and windowsize (7440). Files come from a [`Resolver`]: the root folder, or boot
//! configuration generated per client.
//!
//! CONTRACT (filled in by the TFTP work; `main` builds [`Settings`] and runs [`Server::serve`]).
//! Names here are the interface; add items if needed, do not rename.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

// ---- STUB until the TFTP work (branch `tftp`) lands; that branch replaces everything below. ----

impl Resolver for RootDir {
    fn open(&self, _path: &str, _peer: SocketAddr) -> Result<Source, OpenError> {
        Err(OpenError::Denied("the TFTP server is not built yet".into()))
    }
}

/// The TFTP server.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A server for `settings`, answering from `resolver`.
    pub fn new(_settings: Settings, _resolver: Arc<dyn Resolver>) -> Server {
        Server
    }

    /// Serve until `stop` turns true.
    pub async fn serve(self, _stop: tokio::sync::watch::Receiver<bool>) -> std::io::Result<()> {
        Err(std::io::Error::other("the TFTP server is not built yet"))
    }
}
