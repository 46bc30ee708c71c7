//! The iSCSI server: targets built from the configuration, the login policy (ACLs, CHAP, TSIH
//! allocation), the session registry for reinstatement by ISID (RFC 7143 §6.3.5), and the
//! listeners that accept connections on every portal.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pxeroot_proto::login::{Admission, LoginContext, LoginPolicy, TargetAuth};
use pxeroot_proto::pdu::LoginStatus;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use super::backstore::FileBackstore;
use super::connection;
use super::scsi::{Lun, LunConfig, LunSet};
use crate::config::{Acl, Config, TargetConfig};

/// Every normal session gets this target portal group tag.
pub const TPGT: u16 = 1;

/// One served target.
#[derive(Debug)]
pub struct Target {
    /// Its configuration (name, ACLs).
    pub config: TargetConfig,
    /// Its logical units.
    pub luns: Arc<LunSet>,
}

impl Target {
    /// The ACL entry admitting `initiator` from `peer`: an exact name match wins over "*".
    pub fn acl_for(&self, initiator: &str, peer: IpAddr) -> Option<&Acl> {
        let matching = || {
            self.config
                .acls
                .iter()
                .filter(|a| a.matches(initiator, peer))
        };
        matching()
            .find(|a| a.initiator.is_some())
            .or_else(|| matching().next())
    }
}

/// Identifies a session for reinstatement: initiator, ISID and target (RFC 7143 §4.4.1).
type SessionKey = (String, [u8; 6], String);

#[derive(Debug)]
struct Registered {
    id: u64,
    close: Arc<Notify>,
}

/// The whole iSCSI side of pxeroot-target.
#[derive(Debug)]
pub struct Server {
    targets: Vec<Arc<Target>>,
    sessions: Mutex<HashMap<SessionKey, Registered>>,
    next_tsih: AtomicU16,
    next_id: AtomicU64,
    /// Idle time before a NOP-In ping; `None` turns pings off.
    pub nop_interval: Option<Duration>,
}

/// Errors building the server from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A LUN's backing file could not be opened.
    #[error("target {target} LUN {lun}: cannot open {path}: {source}")]
    Backstore {
        /// Target name.
        target: String,
        /// LUN id.
        lun: u64,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A portal could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The portal.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl Server {
    /// Open every LUN of the configuration.
    ///
    /// # Errors
    /// When a backing file cannot be opened.
    pub fn new(config: &Config) -> Result<Server, ServerError> {
        let mut targets = Vec::new();
        for t in &config.targets {
            let mut luns = LunSet::new();
            for l in &t.luns {
                let store = FileBackstore::open(&l.path, l.read_only).map_err(|source| {
                    ServerError::Backstore {
                        target: t.name.clone(),
                        lun: l.id,
                        path: l.path.display().to_string(),
                        source,
                    }
                })?;
                let serial = l
                    .serial
                    .clone()
                    .unwrap_or_else(|| default_serial(&t.name, l.id));
                let mut lc = LunConfig::new(l.id, &t.name, &serial);
                lc.read_only = l.read_only;
                lc.write_cache = l.write_cache;
                lc.removable = l.removable;
                luns.insert(Arc::new(Lun::new(lc, Arc::new(store))));
            }
            targets.push(Arc::new(Target {
                config: t.clone(),
                luns: Arc::new(luns),
            }));
        }
        Ok(Server {
            targets,
            sessions: Mutex::new(HashMap::new()),
            next_tsih: AtomicU16::new(1),
            next_id: AtomicU64::new(1),
            nop_interval: (config.iscsi.nop_interval > 0)
                .then(|| Duration::from_secs(config.iscsi.nop_interval)),
        })
    }

    /// The target with this name (case-insensitive).
    pub fn target(&self, name: &str) -> Option<&Arc<Target>> {
        self.targets
            .iter()
            .find(|t| t.config.name.eq_ignore_ascii_case(name))
    }

    /// Targets `initiator` connecting from `peer` may see in SendTargets.
    pub fn visible_targets(
        &self,
        initiator: &str,
        peer: IpAddr,
    ) -> impl Iterator<Item = &Arc<Target>> {
        let initiator = initiator.to_string();
        self.targets
            .iter()
            .filter(move |t| t.acl_for(&initiator, peer).is_some())
    }

    /// The login policy for a connection from `peer`.
    pub fn policy(self: &Arc<Self>, peer: IpAddr) -> AclPolicy {
        AclPolicy {
            server: Arc::clone(self),
            peer,
        }
    }

    /// Register a logged-in session; an older session with the same initiator, ISID and
    /// target is told to close (reinstatement). Returns the registration id.
    pub fn register(
        &self,
        initiator: &str,
        isid: [u8; 6],
        target: &str,
        close: Arc<Notify>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let key = (
            initiator.to_ascii_lowercase(),
            isid,
            target.to_ascii_lowercase(),
        );
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = sessions.insert(key, Registered { id, close }) {
            info!(
                initiator,
                target, "session reinstated: closing the previous one with the same ISID"
            );
            old.close.notify_one();
        }
        id
    }

    /// Forget a session registration (if it is still the current one for its key).
    pub fn unregister(&self, initiator: &str, isid: [u8; 6], target: &str, id: u64) {
        let key = (
            initiator.to_ascii_lowercase(),
            isid,
            target.to_ascii_lowercase(),
        );
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.get(&key).is_some_and(|r| r.id == id) {
            sessions.remove(&key);
        }
    }

    /// Bind every portal, then accept connections until `shutdown` turns true.
    ///
    /// # Errors
    /// When a portal cannot be bound.
    pub async fn serve(
        self: Arc<Self>,
        listen: &[SocketAddr],
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), ServerError> {
        let mut listeners = Vec::new();
        for addr in listen {
            let l = bind(*addr).map_err(|source| ServerError::Listen {
                addr: *addr,
                source,
            })?;
            info!(portal = %addr, "iSCSI portal listening");
            listeners.push(l);
        }
        self.serve_on(listeners, shutdown).await;
        Ok(())
    }

    /// Accept connections on listeners bound by the caller (tests bind port 0 and read the
    /// port back) until `shutdown` turns true, then wait for open connections to close.
    pub async fn serve_on(
        self: Arc<Self>,
        listeners: Vec<TcpListener>,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut tasks = tokio::task::JoinSet::new();
        for listener in listeners {
            tasks.spawn(Arc::clone(&self).accept_loop(listener, shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let server = Arc::clone(&self);
                        let shutdown = shutdown.clone();
                        conns.spawn(async move { connection::serve(server, stream, peer, shutdown).await });
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        // Let in-flight connections finish their commands and close.
        while conns.join_next().await.is_some() {}
    }
}

/// A listening socket; IPv6 portals are v6-only so that "0.0.0.0" and "[::]" can both be listed.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => {
            let s = tokio::net::TcpSocket::new_v6()?;
            let fd = std::os::fd::AsFd::as_fd(&s);
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv6V6Only, &true)?;
            s
        }
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A unit serial derived from the target name and LUN (stable across restarts).
fn default_serial(target: &str, lun: u64) -> String {
    // FNV-1a: short, stable, no dependency; uniqueness only matters within one server.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in target.to_ascii_lowercase().bytes().chain(lun.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("PXR{h:016X}")
}

/// ACLs and CHAP for one connection.
#[derive(Debug)]
pub struct AclPolicy {
    server: Arc<Server>,
    peer: IpAddr,
}

impl LoginPolicy for AclPolicy {
    fn admit(&self, ctx: &LoginContext<'_>) -> Result<Admission, LoginStatus> {
        let tsih = match self.server.next_tsih.fetch_add(1, Ordering::Relaxed) {
            0 => self.server.next_tsih.fetch_add(1, Ordering::Relaxed),
            t => t,
        };
        let admission = |auth, alias: Option<String>| Admission {
            auth,
            tsih,
            target_alias: alias,
            target_portal_group_tag: TPGT,
        };
        if ctx.discovery {
            // Discovery is open; SendTargets lists only the targets this initiator may use.
            return Ok(admission(TargetAuth::None, None));
        }
        let Some(name) = ctx.target_name else {
            return Err(LoginStatus::MissingParameter);
        };
        let Some(target) = self.server.target(name) else {
            info!(initiator = ctx.initiator_name, target = name, peer = %self.peer, "login refused: no such target");
            return Err(LoginStatus::NotFound);
        };
        let Some(acl) = target.acl_for(ctx.initiator_name, self.peer) else {
            info!(initiator = ctx.initiator_name, target = name, peer = %self.peer, "login refused: initiator not in the ACL");
            return Err(LoginStatus::AuthorizationFailure);
        };
        let auth = match &acl.chap {
            None => TargetAuth::None,
            Some(expected) => TargetAuth::Chap {
                expected: expected.clone(),
                mutual: acl.mutual_chap.clone(),
            },
        };
        Ok(admission(auth, target.config.alias.clone()))
    }
}
