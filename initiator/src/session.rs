//! iSCSI login over TCP, in userspace, before the socket is handed to the kernel.
//!
//! [`connect_and_login`] opens one TCP connection to one portal (optionally bound to the boot
//! NIC with `SO_BINDTODEVICE`), drives proto's sans-IO [`InitiatorLogin`] over it with blocking
//! reads and writes bounded by the caller's deadline, and returns the logged-in socket with
//! the negotiated parameters. Nothing is buffered on our side: every read asks for exactly the
//! bytes of the next PDU, so when login succeeds the socket holds nothing unread and can be
//! given to the kernel's iscsi_tcp (BIND_CONN) or used by `probe` for SCSI commands.
//!
//! CHAP offers SHA-256 and MD5 (`CHAP_A=7,5`). Some old targets refuse a list (LIO before
//! 3.15, some NAS firmware: open-iscsi issue #180); when the target refuses right after the
//! `CHAP_A` offer, we reconnect once offering MD5 alone.
//!
//! Failures are [`AttemptError`]s whose `Display` names the portal and the cause, never a
//! secret, and which tell the caller whether to retry and which exit code to use.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use pxeroot_proto::bhs::{Isid, BHS_LEN};
use pxeroot_proto::chap::{ChapAlgorithm, ChapError, Credentials};
use pxeroot_proto::digest::DigestKind;
use pxeroot_proto::frame::{self, Frame, FrameLimits};
use pxeroot_proto::login::{
    InitiatorAuth, InitiatorConfig, InitiatorLogin, LoginError, LoginOutcome, LoginState,
};
use pxeroot_proto::negotiate::LocalParams;
use pxeroot_proto::pdu::{LoginStatus, LogoutReason, LogoutRequest, LogoutResponseCode, Pdu};
use pxeroot_proto::{Random, SerialNumber};

use crate::plan::Auth;

/// What [`Wire::during`] says while logging in.
const LOGIN: &str = "login";
/// The Initiator Task Tag of every Login Request.
const LOGIN_ITT: u32 = 0;
/// The Initiator Task Tag of the Logout Request.
const LOGOUT_ITT: u32 = 0x4c4f_4754;
/// CmdSN of the first Login Request (RFC 7143 leaves it to the initiator).
const INITIAL_CMD_SN: SerialNumber = SerialNumber(1);

/// What to log in to and how. See [`connect_and_login`].
#[derive(Debug, Clone)]
pub struct LoginSpec<'a> {
    /// InitiatorName.
    pub initiator_name: &'a str,
    /// TargetName (a normal session).
    pub target_name: &'a str,
    /// Authentication.
    pub auth: &'a Auth,
    /// ISID, chosen by the caller (keep it across retries so the target sees one session).
    pub isid: Isid,
    /// Operational preferences; see [`default_params`].
    pub params: LocalParams,
    /// Limit for each TCP connect.
    pub connect_timeout: Duration,
    /// Limit for the whole login exchange on one connection.
    pub login_timeout: Duration,
    /// Bind the socket to this interface (`SO_BINDTODEVICE`), e.g. the boot NIC.
    pub bind_device: Option<&'a str>,
}

/// The operational parameters the boot agent offers: what suits the kernel's iscsi_tcp.
///
/// * MaxRecvDataSegmentLength 262144, MaxBurstLength 16776192, FirstBurstLength 262144,
///   ImmediateData=Yes, InitialR2T=No: large transfers with few R2Ts, what open-iscsi offers.
/// * Digests: we offer `None,CRC32C` for both. `None` first, because on a LAN the Ethernet
///   CRC and TCP checksum already cover the data, open-iscsi defaults to it, and the kernel
///   then needs no crc32c module; CRC32C second, so that a target that insists on digests
///   still boots (iscsi_tcp computes them in the kernel after BIND_CONN, and probe checks them
///   in userspace through proto's framing). The negotiated choice is in the
///   [`LoginOutcome`]'s `conn` and must be passed to the kernel (HDRDGST_EN/DATADGST_EN).
/// * ErrorRecoveryLevel 0, MaxConnections 1, DataPDUInOrder and DataSequenceInOrder Yes,
///   MaxOutstandingR2T 1: what iscsi_tcp implements.
pub fn default_params() -> LocalParams {
    LocalParams {
        header_digest: vec![DigestKind::None, DigestKind::Crc32c],
        data_digest: vec![DigestKind::None, DigestKind::Crc32c],
        initial_r2t: false,
        immediate_data: true,
        max_recv_data_segment_length: 262_144,
        max_burst_length: 16_776_192,
        first_burst_length: 262_144,
        // The rest are RFC 7143's defaults, which is what iscsi_tcp implements.
        ..LocalParams::default()
    }
}

/// A logged-in connection in FullFeaturePhase.
#[derive(Debug)]
pub struct LoggedIn {
    /// The socket: blocking, TCP_NODELAY set, no read or write timeout, nothing unread in it.
    pub stream: TcpStream,
    /// The portal it is connected to.
    pub portal: SocketAddr,
    /// Negotiated parameters and sequence numbers. A caller that sends commands on the
    /// session keeps `cmd_sn` and `exp_stat_sn` current, so that [`logout`] uses the right
    /// ones.
    pub outcome: LoginOutcome,
    /// The CHAP algorithm the target chose (`None` without CHAP).
    pub chap: Option<ChapAlgorithm>,
    /// Time spent on TCP connect and login, including a CHAP_A fallback reconnect.
    pub elapsed: Duration,
}

/// Why an attempt on one portal failed. `Display` names the portal and the cause, never a
/// secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum AttemptError {
    /// The TCP connect failed (refused, unreachable, ...).
    Connect {
        /// The portal.
        portal: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The TCP connect did not complete in time.
    ConnectTimeout {
        /// The portal.
        portal: SocketAddr,
        /// How long we waited.
        after: Duration,
    },
    /// `SO_BINDTODEVICE` failed (no such interface, no CAP_NET_RAW).
    BindDevice {
        /// The portal.
        portal: SocketAddr,
        /// The interface.
        device: String,
        /// The OS error.
        source: io::Error,
    },
    /// The target did not finish the login in time.
    LoginTimeout {
        /// The portal.
        portal: SocketAddr,
        /// How long we waited.
        after: Duration,
    },
    /// The target did not answer something other than the login in time (logout, a SCSI
    /// command of `probe`).
    Timeout {
        /// The portal.
        portal: SocketAddr,
        /// What we were waiting for.
        during: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The target closed the connection during the login or logout.
    Closed {
        /// The portal.
        portal: SocketAddr,
        /// What we were doing.
        during: &'static str,
    },
    /// A socket error after connecting (reset, broken pipe).
    Io {
        /// The portal.
        portal: SocketAddr,
        /// What we were doing.
        during: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The target answered with a non-zero login status.
    Rejected {
        /// The portal.
        portal: SocketAddr,
        /// The status.
        status: LoginStatus,
        /// TargetAddress of a redirection, if sent.
        address: Option<String>,
    },
    /// Mutual CHAP: the target failed to prove its identity.
    MutualChap {
        /// The portal.
        portal: SocketAddr,
        /// What was wrong.
        cause: ChapError,
    },
    /// CHAP failed on our side for another reason (no common algorithm, bad encoding, a
    /// configuration error such as the same secret both ways).
    Chap {
        /// The portal.
        portal: SocketAddr,
        /// What was wrong.
        cause: ChapError,
    },
    /// The target broke the protocol (bad PDU, bad negotiation, unexpected PDU).
    Protocol {
        /// The portal.
        portal: SocketAddr,
        /// What was wrong.
        cause: LoginError,
    },
    /// The logout was answered with a failure code.
    Logout {
        /// The portal.
        portal: SocketAddr,
        /// The response code.
        response: LogoutResponseCode,
    },
    /// The system random number generator failed (CHAP challenges).
    Random {
        /// The portal.
        portal: SocketAddr,
    },
}

/// Seconds for messages: "3 s", "0.2 s".
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_millis() == 0 {
            write!(f, "{} s", self.0.as_secs())
        } else {
            write!(f, "{:.1} s", self.0.as_secs_f64())
        }
    }
}

/// A plain-words name for a login status.
fn status_text(status: LoginStatus) -> &'static str {
    match status {
        LoginStatus::TargetMovedTemporarily => "target moved temporarily",
        LoginStatus::TargetMovedPermanently => "target moved permanently",
        LoginStatus::InitiatorError => "initiator error",
        LoginStatus::AuthenticationFailure => "authentication failed",
        LoginStatus::AuthorizationFailure => "initiator not authorized",
        LoginStatus::NotFound => "target not found",
        LoginStatus::TargetRemoved => "target removed",
        LoginStatus::UnsupportedVersion => "unsupported iSCSI version",
        LoginStatus::TooManyConnections => "too many connections",
        LoginStatus::MissingParameter => "missing parameter",
        LoginStatus::CantIncludeInSession => "connection cannot be included in the session",
        LoginStatus::SessionTypeNotSupported => "session type not supported",
        LoginStatus::SessionDoesNotExist => "session does not exist",
        LoginStatus::InvalidDuringLogin => "invalid request during login",
        LoginStatus::TargetError => "target error",
        LoginStatus::ServiceUnavailable => "service unavailable",
        LoginStatus::OutOfResources => "target out of resources",
        _ => "unknown status",
    }
}

fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        io::ErrorKind::BrokenPipe => "connection broken".to_owned(),
        _ => match e.raw_os_error() {
            Some(n) => Errno::from_raw(n).desc().to_lowercase(),
            None => e.to_string(),
        },
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.portal())?;
        match self {
            AttemptError::Connect { source, .. } => write!(f, "{}", io_text(source)),
            AttemptError::ConnectTimeout { after, .. } => {
                write!(f, "no answer to TCP connect within {}", Secs(*after))
            }
            AttemptError::BindDevice { device, source, .. } => {
                write!(f, "cannot bind to interface {device}: {}", io_text(source))
            }
            AttemptError::LoginTimeout { after, .. } => {
                write!(f, "target did not answer the login within {}", Secs(*after))
            }
            AttemptError::Timeout { during, after, .. } => {
                write!(f, "no answer to {during} within {}", Secs(*after))
            }
            AttemptError::Closed { during, .. } => {
                write!(f, "target closed the connection during {during}")
            }
            AttemptError::Io { during, source, .. } => {
                write!(f, "{} during {during}", io_text(source))
            }
            AttemptError::Rejected {
                status, address, ..
            } => {
                write!(
                    f,
                    "login rejected: {} (status 0x{:04x})",
                    status_text(*status),
                    u16::from(*status)
                )?;
                if let Some(a) = address {
                    write!(f, " to {a}")?;
                }
                Ok(())
            }
            AttemptError::MutualChap { cause, .. } => match cause {
                ChapError::BadResponse => {
                    write!(f, "mutual CHAP: the target's response did not match")
                }
                ChapError::WrongUser => {
                    write!(
                        f,
                        "mutual CHAP: the target answered with an unexpected user name"
                    )
                }
                _ => write!(f, "mutual CHAP: the target did not authenticate itself"),
            },
            AttemptError::Chap { cause, .. } => write!(f, "CHAP: {cause}"),
            AttemptError::Protocol { cause, .. } => write!(f, "login failed: {cause}"),
            AttemptError::Logout { response, .. } => {
                write!(f, "logout refused (response {})", u8::from(*response))
            }
            AttemptError::Random { .. } => {
                write!(f, "the system random number generator failed")
            }
        }
    }
}

impl std::error::Error for AttemptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AttemptError::Connect { source, .. }
            | AttemptError::BindDevice { source, .. }
            | AttemptError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl AttemptError {
    /// The portal this attempt went to.
    pub fn portal(&self) -> SocketAddr {
        match self {
            AttemptError::Connect { portal, .. }
            | AttemptError::ConnectTimeout { portal, .. }
            | AttemptError::BindDevice { portal, .. }
            | AttemptError::LoginTimeout { portal, .. }
            | AttemptError::Timeout { portal, .. }
            | AttemptError::Closed { portal, .. }
            | AttemptError::Io { portal, .. }
            | AttemptError::Rejected { portal, .. }
            | AttemptError::MutualChap { portal, .. }
            | AttemptError::Chap { portal, .. }
            | AttemptError::Protocol { portal, .. }
            | AttemptError::Logout { portal, .. }
            | AttemptError::Random { portal } => *portal,
        }
    }

    /// An authentication failure (either direction, or a CHAP configuration the login
    /// cannot start with): retrying with the same credentials cannot help, so it is never
    /// retried in a loop. A CHAP protocol error of the target (a malformed key) is not one.
    pub fn is_auth(&self) -> bool {
        match self {
            AttemptError::Rejected { status, .. } => *status == LoginStatus::AuthenticationFailure,
            AttemptError::MutualChap { .. } => true,
            AttemptError::Chap { cause, .. } => {
                cause.is_auth_failure()
                    || matches!(
                        cause,
                        ChapError::SameSecretBothWays | ChapError::UnexpectedAlgorithm(_)
                    )
            }
            _ => false,
        }
    }

    /// Whether another attempt may succeed: refused or timed-out connects, timeouts, resets
    /// and closes, target errors (status class 3) and moves without a new address.
    #[allow(dead_code)] // For the boot flow's retry loop.
    pub fn retryable(&self) -> bool {
        match self {
            AttemptError::Connect { .. }
            | AttemptError::ConnectTimeout { .. }
            | AttemptError::LoginTimeout { .. }
            | AttemptError::Timeout { .. }
            | AttemptError::Closed { .. }
            | AttemptError::Io { .. }
            | AttemptError::Random { .. } => true,
            AttemptError::Rejected {
                status, address, ..
            } => status.class() == 3 || (status.class() == 1 && address.is_none()),
            _ => false,
        }
    }

    /// The process exit code for this failure: 12 TCP connect, 13 login failed or rejected,
    /// 14 authentication.
    pub fn exit_code(&self) -> u8 {
        if self.is_auth() {
            14
        } else {
            match self {
                AttemptError::Connect { .. }
                | AttemptError::ConnectTimeout { .. }
                | AttemptError::BindDevice { .. } => 12,
                _ => 13,
            }
        }
    }
}

/// Waits for the kernel's random generator on a thread of its own (see [`OsRandom`]).
pub fn warm_up_random() {
    std::thread::spawn(|| {
        let mut b = [0u8; 16];
        let _ = rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut b);
    });
}

/// Random bytes for CHAP challenges from the operating system (getrandom). A failure is
/// remembered and ends the login instead of producing weak challenges.
///
/// getrandom(2) waits until the kernel's generator is seeded. Early in a boot without RDRAND
/// (QEMU TCG in the lab) that is about a second after the kernel starts, and a mutual-CHAP
/// login pays it; the boot starts [`warm_up_random`] first thing so that the wait overlaps
/// the network phase. A predictable challenge would let a recorded target response be
/// replayed, so the agent does not fall back to an unseeded generator.
#[derive(Debug, Default)]
pub(crate) struct OsRandom {
    failed: bool,
}

impl Random for OsRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(dest));
        if urandom.is_err() && rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, dest).is_err()
        {
            self.failed = true;
        }
    }
}

/// Remaining time until `deadline`, or `None` when it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Opens a TCP connection to `portal` within `timeout`, bound to `device` if given.
fn connect(
    portal: SocketAddr,
    device: Option<&str>,
    timeout: Duration,
) -> Result<TcpStream, AttemptError> {
    let family = match portal {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let conn_err = |e: Errno| AttemptError::Connect {
        portal,
        source: io::Error::from(e),
    };
    let fd: OwnedFd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(conn_err)?;
    if let Some(dev) = device {
        socket::setsockopt(&fd, sockopt::BindToDevice, &dev.into()).map_err(|e| {
            AttemptError::BindDevice {
                portal,
                device: dev.to_owned(),
                source: io::Error::from(e),
            }
        })?;
    }
    let deadline = Instant::now() + timeout;
    let timed_out = AttemptError::ConnectTimeout {
        portal,
        after: timeout,
    };
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(portal)) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) => loop {
            let Some(left) = remaining(deadline) else {
                return Err(timed_out);
            };
            // Poll in slices of at most 60 s (PollTimeout is an i32 of milliseconds).
            let slice = PollTimeout::try_from(left.min(Duration::from_secs(60)))
                .unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            match nix::poll::poll(&mut fds, slice) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {
                    let err = socket::getsockopt(&fd, sockopt::SocketError).map_err(conn_err)?;
                    if err != 0 {
                        return Err(conn_err(Errno::from_raw(err)));
                    }
                    break;
                }
                Err(e) => return Err(conn_err(e)),
            }
        },
        Err(e) => return Err(conn_err(e)),
    }
    let stream = TcpStream::from(fd);
    let setup = |e| AttemptError::Io {
        portal,
        during: "socket setup",
        source: e,
    };
    stream.set_nonblocking(false).map_err(setup)?;
    stream.set_nodelay(true).map_err(setup)?;
    Ok(stream)
}

/// A blocking PDU reader and writer over a stream, with a deadline for each call.
pub(crate) struct Wire<'a> {
    pub(crate) stream: &'a mut TcpStream,
    pub(crate) portal: SocketAddr,
    pub(crate) limits: FrameLimits,
    /// What we are doing, for error messages ("login", "logout", "READ CAPACITY(16)").
    pub(crate) during: &'static str,
    /// Reported as the wait in a timeout error.
    pub(crate) budget: Duration,
}

impl Wire<'_> {
    fn io_error(&self, e: io::Error) -> AttemptError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut if self.during == LOGIN => {
                AttemptError::LoginTimeout {
                    portal: self.portal,
                    after: self.budget,
                }
            }
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => AttemptError::Timeout {
                portal: self.portal,
                during: self.during,
                after: self.budget,
            },
            io::ErrorKind::UnexpectedEof => AttemptError::Closed {
                portal: self.portal,
                during: self.during,
            },
            _ => AttemptError::Io {
                portal: self.portal,
                during: self.during,
                source: e,
            },
        }
    }

    fn timeout(&self) -> AttemptError {
        self.io_error(io::ErrorKind::TimedOut.into())
    }

    /// Sends one PDU before `deadline`.
    pub(crate) fn send(&mut self, pdu: &Pdu, deadline: Instant) -> Result<(), AttemptError> {
        let mut buf = Vec::with_capacity(pdu.buffer_len() + 8);
        frame::encode_pdu(pdu, &self.limits, &mut buf).map_err(|e| AttemptError::Protocol {
            portal: self.portal,
            cause: e.into(),
        })?;
        let left = remaining(deadline).ok_or_else(|| self.timeout())?;
        self.stream
            .set_write_timeout(Some(left))
            .map_err(|e| self.io_error(e))?;
        self.stream.write_all(&buf).map_err(|e| self.io_error(e))
    }

    fn read_exact(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), AttemptError> {
        let mut done = 0;
        while done < buf.len() {
            let left = remaining(deadline).ok_or_else(|| self.timeout())?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| self.io_error(e))?;
            match self.stream.read(&mut buf[done..]) {
                Ok(0) => return Err(self.io_error(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        Ok(())
    }

    /// Reads exactly one PDU before `deadline` (nothing more is consumed from the socket).
    pub(crate) fn recv(&mut self, deadline: Instant) -> Result<Pdu, AttemptError> {
        let mut buf = vec![0u8; BHS_LEN];
        self.read_exact(&mut buf, deadline)?;
        let protocol = |portal, e: pxeroot_proto::WireError| AttemptError::Protocol {
            portal,
            cause: e.into(),
        };
        let len = frame::pdu_len(&buf, &self.limits).map_err(|e| protocol(self.portal, e))?;
        buf.resize(len, 0);
        self.read_exact(&mut buf[BHS_LEN..], deadline)?;
        let frame = Frame::split(&buf, &self.limits).map_err(|e| protocol(self.portal, e))?;
        frame.parse().map_err(|e| protocol(self.portal, e))
    }
}

/// One connection's failed login, and whether MD5 alone is worth a second connection: the
/// target refused our CHAP_A offer, or (tgt) chose 7 and then failed our SHA-256 response.
struct Failed {
    error: AttemptError,
    offer_refused: bool,
}

fn login_error(portal: SocketAddr, e: LoginError) -> AttemptError {
    match e {
        LoginError::Redirected { status, address } => AttemptError::Rejected {
            portal,
            status,
            address,
        },
        LoginError::Chap(cause @ (ChapError::BadResponse | ChapError::WrongUser))
        | LoginError::Chap(cause @ ChapError::MutualMissing) => {
            AttemptError::MutualChap { portal, cause }
        }
        LoginError::Chap(cause) => AttemptError::Chap { portal, cause },
        other => {
            let status = other.status();
            match other {
                LoginError::Wire(_)
                | LoginError::Negotiation(_)
                | LoginError::UnexpectedPdu(_)
                | LoginError::Protocol(_)
                | LoginError::Finished => AttemptError::Protocol {
                    portal,
                    cause: other,
                },
                // Every remaining variant is a status the target sent.
                _ => AttemptError::Rejected {
                    portal,
                    status,
                    address: None,
                },
            }
        }
    }
}

fn initiator_auth(auth: &Auth, algorithms: &[ChapAlgorithm]) -> InitiatorAuth {
    match auth {
        Auth::None => InitiatorAuth::None,
        Auth::Chap { user, secret } => InitiatorAuth::Chap {
            algorithms: algorithms.to_vec(),
            creds: Credentials {
                user: user.clone(),
                secret: secret.clone(),
            },
            mutual: None,
        },
        Auth::MutualChap {
            user,
            secret,
            target_user,
            target_secret,
        } => InitiatorAuth::Chap {
            algorithms: algorithms.to_vec(),
            creds: Credentials {
                user: user.clone(),
                secret: secret.clone(),
            },
            mutual: Some(Credentials {
                user: target_user.clone(),
                secret: target_secret.clone(),
            }),
        },
    }
}

/// One TCP connection and one login on it.
fn attempt(
    portal: SocketAddr,
    spec: &LoginSpec<'_>,
    deadline: Instant,
    algorithms: &[ChapAlgorithm],
) -> Result<(TcpStream, LoginOutcome, Option<ChapAlgorithm>), Failed> {
    let plain = |error| Failed {
        error,
        offer_refused: false,
    };
    let connect_budget = remaining(deadline)
        .map(|d| d.min(spec.connect_timeout))
        .ok_or_else(|| {
            plain(AttemptError::ConnectTimeout {
                portal,
                after: Duration::ZERO,
            })
        })?;
    // Built first, so that a bad CHAP configuration opens no connection.
    let mut login = InitiatorLogin::new(InitiatorConfig {
        initiator_name: spec.initiator_name.to_owned(),
        initiator_alias: None,
        target_name: Some(spec.target_name.to_owned()),
        isid: spec.isid,
        tsih: 0,
        cid: 0,
        itt: LOGIN_ITT,
        cmd_sn: INITIAL_CMD_SN,
        auth: initiator_auth(spec.auth, algorithms),
        params: spec.params.clone(),
    })
    .map_err(|e| plain(login_error(portal, e)))?;
    let mut stream = connect(portal, spec.bind_device, connect_budget).map_err(plain)?;
    let by_timeout = Instant::now() + spec.login_timeout;
    let (login_deadline, budget) = if deadline < by_timeout {
        (deadline, remaining(deadline).unwrap_or_default())
    } else {
        (by_timeout, spec.login_timeout)
    };
    let mut wire = Wire {
        stream: &mut stream,
        portal,
        limits: FrameLimits::default(),
        during: LOGIN,
        budget,
    };
    let mut rng = OsRandom::default();
    loop {
        while let Some(req) = login.poll_transmit() {
            wire.send(&Pdu::from(req), login_deadline).map_err(plain)?;
        }
        if login.state() == LoginState::FullFeature {
            break;
        }
        let at_offer = login.chap_awaiting_algorithm();
        // tgt (1.0.85, Debian 12) takes CHAP_A=7 for SHA-1, contrary to the IANA registry,
        // so it chooses 7 from our list and then cannot decode our SHA-256 response: it
        // answers 0x0200 (or 0x0201) to CHAP_R. That too calls for MD5 alone.
        let sha256_answered = login.chap_algorithm() == Some(ChapAlgorithm::Sha256)
            && !at_offer
            && login.state() == LoginState::Security;
        let refused = |error: AttemptError| {
            let tgt_sha1 = sha256_answered
                && matches!(
                    &error,
                    AttemptError::Rejected {
                        status: LoginStatus::InitiatorError | LoginStatus::AuthenticationFailure,
                        ..
                    }
                );
            let offer_refused = tgt_sha1
                || at_offer
                    && match &error {
                        AttemptError::Closed { .. } | AttemptError::Io { .. } => true,
                        AttemptError::Rejected { status, .. } => matches!(
                            status,
                            LoginStatus::InitiatorError | LoginStatus::AuthenticationFailure
                        ),
                        AttemptError::Chap { cause, .. } => matches!(
                            cause,
                            ChapError::UnexpectedAlgorithm(_)
                                | ChapError::NoCommonAlgorithm(_)
                                | ChapError::MissingKey(_)
                        ),
                        _ => false,
                    };
            Failed {
                error,
                offer_refused,
            }
        };
        let pdu = wire.recv(login_deadline).map_err(refused)?;
        login
            .handle_pdu(&pdu, &mut rng)
            .map_err(|e| refused(login_error(portal, e)))?;
        if rng.failed {
            return Err(plain(AttemptError::Random { portal }));
        }
    }
    // Hand the socket over as a plain blocking one (the kernel or the next user sets its own
    // limits).
    for clear in [
        stream.set_read_timeout(None),
        stream.set_write_timeout(None),
    ] {
        clear.map_err(|e| {
            plain(AttemptError::Io {
                portal,
                during: "socket setup",
                source: e,
            })
        })?;
    }
    let chap = login.chap_algorithm();
    match login.outcome() {
        Some(outcome) => Ok((stream, outcome.clone(), chap)),
        None => Err(plain(AttemptError::Protocol {
            portal,
            cause: LoginError::Protocol("login finished without an outcome"),
        })),
    }
}

/// Connects to one portal and logs in. With CHAP it offers SHA-256 and MD5 (`CHAP_A=7,5`); if
/// the target refuses that list (an old target: `CHAP_A=Reject`, status 0x0200/0x0201 right
/// after the offer, or the connection closed at that point), it reconnects once offering MD5
/// alone, as open-iscsi issue #180 asks. It does the same when the target chose SHA-256 and
/// then refused our response with 0x0200/0x0201, which is what tgt does (it reads 7 as
/// SHA-1); with a wrong secret such a target therefore sees two failed logins, and the
/// error is still an authentication failure. `deadline` bounds everything; each TCP connect is
/// also bounded by `spec.connect_timeout` and each login by `spec.login_timeout`.
///
/// # Errors
/// [`AttemptError`] for this portal: see [`AttemptError::retryable`] and
/// [`AttemptError::is_auth`] for what the caller should do next.
pub fn connect_and_login(
    portal: SocketAddr,
    spec: &LoginSpec<'_>,
    deadline: Instant,
) -> Result<LoggedIn, AttemptError> {
    const OFFER: [ChapAlgorithm; 2] = [ChapAlgorithm::Sha256, ChapAlgorithm::Md5];
    const FALLBACK: [ChapAlgorithm; 1] = [ChapAlgorithm::Md5];
    let start = Instant::now();
    let result = match attempt(portal, spec, deadline, &OFFER) {
        Err(f) if f.offer_refused && !matches!(spec.auth, Auth::None) => {
            attempt(portal, spec, deadline, &FALLBACK)
        }
        other => other,
    };
    let (stream, outcome, chap) = result.map_err(|f| f.error)?;
    Ok(LoggedIn {
        stream,
        portal,
        outcome,
        chap,
        elapsed: start.elapsed(),
    })
}

/// Sends Logout (reason: close the session) and waits up to `timeout` for the response.
/// NOP-Ins and asynchronous messages that arrive first are skipped. Uses and advances
/// `li.outcome`'s sequence numbers.
///
/// # Errors
/// [`AttemptError`] when the logout cannot be sent, is refused or is not answered in time.
pub fn logout(li: &mut LoggedIn, timeout: Duration) -> Result<(), AttemptError> {
    let deadline = Instant::now() + timeout;
    let req = LogoutRequest {
        immediate: true,
        reason: LogoutReason::CloseSession,
        itt: LOGOUT_ITT,
        cid: 0,
        cmd_sn: li.outcome.cmd_sn,
        exp_stat_sn: li.outcome.exp_stat_sn,
    };
    let portal = li.portal;
    let mut wire = Wire {
        stream: &mut li.stream,
        portal,
        limits: FrameLimits::from(&li.outcome.conn),
        during: "logout",
        budget: timeout,
    };
    wire.send(&Pdu::from(req), deadline)?;
    loop {
        match wire.recv(deadline)? {
            Pdu::LogoutResponse(rsp) if rsp.itt == LOGOUT_ITT => {
                li.outcome.exp_stat_sn = rsp.stat_sn.next();
                return if rsp.response == LogoutResponseCode::Closed {
                    Ok(())
                } else {
                    Err(AttemptError::Logout {
                        portal,
                        response: rsp.response,
                    })
                };
            }
            Pdu::NopIn(_) | Pdu::AsyncMessage(_) => {}
            other => {
                return Err(AttemptError::Protocol {
                    portal,
                    cause: LoginError::UnexpectedPdu(other.opcode()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
