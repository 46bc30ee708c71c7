//! `struct iscsi_uevent` and its netlink framing, encoded and decoded as bytes.
//!
//! The layout is the kernel's ABI (`include/scsi/iscsi_if.h`), re-derived from the facts in
//! shared/reference/initiator.md §1.3: a 56-byte, 8-aligned struct in native byte order,
//! `type` (u32) at 0, `iferror` (u32) at 4, `transport_handle` (u64) at 8, the request union at
//! 16 (24 bytes) and the result union at 40 (16 bytes). Requests travel behind a 16-byte
//! `nlmsghdr` whose `nlmsg_type` repeats the event type; a request's payload (a parameter
//! string) follows the struct. Encoding is pure so that every message is unit-tested.

/// `sizeof(struct nlmsghdr)`.
pub const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct iscsi_uevent)`.
pub const UEVENT_LEN: usize = 56;
/// Offset of the request union.
const U: usize = 16;
/// Offset of the result union.
const R: usize = 40;

/// The events this agent sends or reads (`enum iscsi_uevent_e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// ISCSI_UEVENT_CREATE_SESSION.
    CreateSession = 11,
    /// ISCSI_UEVENT_DESTROY_SESSION.
    DestroySession = 12,
    /// ISCSI_UEVENT_CREATE_CONN.
    CreateConn = 13,
    /// ISCSI_UEVENT_DESTROY_CONN.
    DestroyConn = 14,
    /// ISCSI_UEVENT_BIND_CONN.
    BindConn = 15,
    /// ISCSI_UEVENT_SET_PARAM.
    SetParam = 16,
    /// ISCSI_UEVENT_START_CONN.
    StartConn = 17,
    /// ISCSI_UEVENT_STOP_CONN.
    StopConn = 18,
    /// ISCSI_UEVENT_SET_HOST_PARAM.
    SetHostParam = 26,
    /// ISCSI_UEVENT_UNBIND_SESSION.
    UnbindSession = 27,
}

impl Op {
    /// The name used in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Op::CreateSession => "CREATE_SESSION",
            Op::DestroySession => "DESTROY_SESSION",
            Op::CreateConn => "CREATE_CONN",
            Op::DestroyConn => "DESTROY_CONN",
            Op::BindConn => "BIND_CONN",
            Op::SetParam => "SET_PARAM",
            Op::StartConn => "START_CONN",
            Op::StopConn => "STOP_CONN",
            Op::SetHostParam => "SET_HOST_PARAM",
            Op::UnbindSession => "UNBIND_SESSION",
        }
    }

    /// Whether the kernel reports this operation's failure in `r.retcode` (the others report
    /// it as an `ISCSI_KEVENT_IF_ERROR` reply, or fill `r` with results).
    const fn has_retcode(self) -> bool {
        !matches!(self, Op::CreateSession | Op::CreateConn)
    }
}

/// ISCSI_KEVENT_IF_ERROR: the reply type when the kernel refused a request.
pub const KEVENT_IF_ERROR: u32 = 103;

/// `STOP_CONN` flags.
pub const STOP_CONN_TERM: u32 = 1;

/// Session and connection parameters (`enum iscsi_param`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum Param {
    MaxRecvDlength = 0,
    MaxXmitDlength = 1,
    HdrDgstEn = 2,
    DataDgstEn = 3,
    InitialR2tEn = 4,
    MaxR2t = 5,
    ImmDataEn = 6,
    FirstBurst = 7,
    MaxBurst = 8,
    PduInorderEn = 9,
    DataseqInorderEn = 10,
    Erl = 11,
    ExpStatsn = 14,
    TargetName = 15,
    Tpgt = 16,
    PersistentAddress = 17,
    PersistentPort = 18,
    Username = 22,
    UsernameIn = 23,
    Password = 24,
    PasswordIn = 25,
    FastAbort = 26,
    AbortTmo = 27,
    LuResetTmo = 28,
    PingTmo = 30,
    RecvTmo = 31,
    IfaceName = 32,
    Isid = 33,
    InitiatorName = 34,
    TgtResetTmo = 35,
    BootRoot = 39,
}

impl Param {
    /// Whether the value is a secret that must never appear in a message.
    pub const fn is_secret(self) -> bool {
        matches!(self, Param::Password | Param::PasswordIn)
    }
}

/// Host parameters (`enum iscsi_host_param`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum HostParam {
    HwAddress = 0,
    InitiatorName = 1,
    NetdevName = 2,
    IpAddress = 3,
}

/// A request: the event type, the transport handle, the request union and a payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub op: Op,
    /// `/sys/class/iscsi_transport/tcp/handle`.
    pub handle: u64,
    union: [u8; 24],
    payload: Vec<u8>,
    secret: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("op", &self.op)
            .field("union", &self.union)
            .field(
                "payload",
                &if self.secret {
                    "<redacted>".to_owned()
                } else {
                    String::from_utf8_lossy(&self.payload).into_owned()
                },
            )
            .finish()
    }
}

fn put32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn get32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_ne_bytes(b)
}

impl Request {
    fn new(op: Op, handle: u64) -> Self {
        Request {
            op,
            handle,
            union: [0; 24],
            payload: Vec::new(),
            secret: false,
        }
    }

    fn u32_at(mut self, off: usize, v: u32) -> Self {
        put32(&mut self.union, off, v);
        self
    }

    /// CREATE_SESSION `{initial_cmdsn, cmds_max, queue_depth}`.
    pub fn create_session(
        handle: u64,
        initial_cmdsn: u32,
        cmds_max: u16,
        queue_depth: u16,
    ) -> Self {
        let mut r = Request::new(Op::CreateSession, handle).u32_at(0, initial_cmdsn);
        r.union[4..6].copy_from_slice(&cmds_max.to_ne_bytes());
        r.union[6..8].copy_from_slice(&queue_depth.to_ne_bytes());
        r
    }

    /// DESTROY_SESSION `{sid}`.
    pub fn destroy_session(handle: u64, sid: u32) -> Self {
        Request::new(Op::DestroySession, handle).u32_at(0, sid)
    }

    /// UNBIND_SESSION `{sid}`: removes the SCSI target of the session.
    pub fn unbind_session(handle: u64, sid: u32) -> Self {
        Request::new(Op::UnbindSession, handle).u32_at(0, sid)
    }

    /// CREATE_CONN / DESTROY_CONN / START_CONN `{sid, cid}`.
    pub fn conn(op: Op, handle: u64, sid: u32, cid: u32) -> Self {
        Request::new(op, handle).u32_at(0, sid).u32_at(4, cid)
    }

    /// BIND_CONN `{sid, cid, transport_eph, is_leading}`: `fd` is the logged-in TCP socket.
    pub fn bind_conn(handle: u64, sid: u32, cid: u32, fd: u64, leading: bool) -> Self {
        let mut r = Request::conn(Op::BindConn, handle, sid, cid);
        put64(&mut r.union, 8, fd);
        put32(&mut r.union, 16, u32::from(leading));
        r
    }

    /// STOP_CONN `{sid, cid, conn_handle, flag}`.
    pub fn stop_conn(handle: u64, sid: u32, cid: u32, flag: u32) -> Self {
        let mut r = Request::conn(Op::StopConn, handle, sid, cid);
        put32(&mut r.union, 16, flag);
        r
    }

    /// SET_PARAM `{sid, cid, param, len}` + the value as a NUL-terminated string.
    pub fn set_param(handle: u64, sid: u32, cid: u32, param: Param, value: &[u8]) -> Self {
        let payload = nul_terminated(value);
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let mut r = Request::conn(Op::SetParam, handle, sid, cid)
            .u32_at(8, param as u32)
            .u32_at(12, len);
        r.payload = payload;
        r.secret = param.is_secret();
        r
    }

    /// SET_HOST_PARAM `{host_no, param, len}` + the value as a NUL-terminated string.
    pub fn set_host_param(handle: u64, host_no: u32, param: HostParam, value: &str) -> Self {
        let payload = nul_terminated(value.as_bytes());
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let mut r = Request::new(Op::SetHostParam, handle)
            .u32_at(0, host_no)
            .u32_at(4, param as u32)
            .u32_at(8, len);
        r.payload = payload;
        r
    }

    /// The whole netlink message: `nlmsghdr` + `iscsi_uevent` + payload, padded to 4 bytes.
    pub fn encode(&self, seq: u32, port_id: u32) -> Vec<u8> {
        let body = UEVENT_LEN + self.payload.len();
        let len = NLMSG_HDRLEN + body;
        let mut msg = vec![0u8; (len + 3) & !3];
        put32(&mut msg, 0, u32::try_from(len).unwrap_or(u32::MAX));
        msg[4..6].copy_from_slice(&(self.op as u16).to_ne_bytes());
        // nlmsg_flags (2 bytes at 6) stay 0, as open-iscsi sends them.
        put32(&mut msg, 8, seq);
        put32(&mut msg, 12, port_id);
        let ev = NLMSG_HDRLEN;
        put32(&mut msg, ev, self.op as u32);
        put64(&mut msg, ev + 8, self.handle);
        msg[ev + U..ev + U + 24].copy_from_slice(&self.union);
        msg[ev + UEVENT_LEN..ev + body].copy_from_slice(&self.payload);
        msg
    }
}

fn nul_terminated(value: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = value.iter().copied().filter(|&b| b != 0).collect();
    v.push(0);
    v
}

/// The kernel's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// `r` as four u32 words (offsets 40, 44, 48, 52).
    pub r: [u32; 4],
}

impl Reply {
    /// `r.c_session_ret.sid` / `r.c_conn_ret.sid`.
    pub fn sid(&self) -> u32 {
        self.r[0]
    }

    /// `r.c_session_ret.host_no` / `r.c_conn_ret.cid`.
    pub fn second(&self) -> u32 {
        self.r[1]
    }
}

/// What one received netlink message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The reply to a request of this type.
    Reply {
        /// `nlmsg_type` (the request's type).
        msg_type: u16,
        /// The sequence number echoed back.
        seq: u32,
        /// The result, or the kernel's errno (positive) for the request.
        result: Result<Reply, i32>,
    },
    /// A netlink error/ack message (`NLMSG_ERROR`, type 2) with its errno (0 = ack).
    Ack {
        /// The errno (positive), 0 for an acknowledgement.
        errno: i32,
        /// The sequence number of the request it answers.
        seq: u32,
    },
    /// Anything else (asynchronous events, `NLMSG_NOOP`, ...).
    Other {
        /// `nlmsg_type`.
        msg_type: u16,
    },
}

/// Why a received datagram could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its header says, or than the struct it must hold.
    #[error("truncated netlink message ({have} bytes, need {need})")]
    Truncated {
        /// Bytes present.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
}

/// Splits a received datagram into messages and decodes each. `op_of` tells, for a reply's
/// type, whether it carries a `retcode`.
///
/// # Errors
/// [`DecodeError`] if a message is cut short.
pub fn decode(datagram: &[u8]) -> Result<Vec<Incoming>, DecodeError> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let len = get32(rest, 0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(DecodeError::Truncated {
                have: rest.len(),
                need: len.max(NLMSG_HDRLEN),
            });
        }
        let msg_type = u16::from_ne_bytes([rest[4], rest[5]]);
        let seq = get32(rest, 8);
        let body = &rest[NLMSG_HDRLEN..len];
        out.push(decode_one(msg_type, seq, body)?);
        let next = (len + 3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
    }
    Ok(out)
}

fn decode_one(msg_type: u16, seq: u32, body: &[u8]) -> Result<Incoming, DecodeError> {
    const NLMSG_NOOP: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    match msg_type {
        NLMSG_ERROR => {
            if body.len() < 4 {
                return Err(DecodeError::Truncated {
                    have: body.len(),
                    need: 4,
                });
            }
            let errno = get32(body, 0) as i32;
            Ok(Incoming::Ack {
                errno: errno.saturating_neg(),
                seq,
            })
        }
        NLMSG_NOOP | NLMSG_DONE => Ok(Incoming::Other { msg_type }),
        t if (11..=50).contains(&t) => {
            if body.len() < UEVENT_LEN {
                return Err(DecodeError::Truncated {
                    have: body.len(),
                    need: UEVENT_LEN,
                });
            }
            let ev_type = get32(body, 0);
            let r = [
                get32(body, R),
                get32(body, R + 4),
                get32(body, R + 8),
                get32(body, R + 12),
            ];
            let result = if ev_type == KEVENT_IF_ERROR {
                // iferror holds -errno in a u32.
                Err((get32(body, 4) as i32).saturating_neg())
            } else if has_retcode(t) && r[0] != 0 {
                Err((r[0] as i32).saturating_neg())
            } else {
                Ok(Reply { r })
            };
            Ok(Incoming::Reply {
                msg_type,
                seq,
                result,
            })
        }
        _ => Ok(Incoming::Other { msg_type }),
    }
}

fn has_retcode(msg_type: u16) -> bool {
    let ops = [
        Op::CreateSession,
        Op::DestroySession,
        Op::CreateConn,
        Op::DestroyConn,
        Op::BindConn,
        Op::SetParam,
        Op::StartConn,
        Op::StopConn,
        Op::SetHostParam,
        Op::UnbindSession,
    ];
    ops.iter()
        .find(|o| **o as u16 == msg_type)
        .is_some_and(|o| o.has_retcode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne32(b: &[u8], at: usize) -> u32 {
        get32(b, at)
    }

    #[test]
    fn create_session_layout() {
        let m = Request::create_session(0xdead_beef_0000_1234, 7, 128, 32).encode(5, 99);
        assert_eq!(m.len(), NLMSG_HDRLEN + UEVENT_LEN);
        assert_eq!(ne32(&m, 0) as usize, m.len());
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 11);
        assert_eq!(ne32(&m, 8), 5);
        assert_eq!(ne32(&m, 12), 99);
        let ev = &m[NLMSG_HDRLEN..];
        assert_eq!(ne32(ev, 0), 11);
        assert_eq!(ne32(ev, 4), 0);
        assert_eq!(&ev[8..16], &0xdead_beef_0000_1234u64.to_ne_bytes());
        assert_eq!(ne32(ev, 16), 7);
        assert_eq!(u16::from_ne_bytes([ev[20], ev[21]]), 128);
        assert_eq!(u16::from_ne_bytes([ev[22], ev[23]]), 32);
        assert!(ev[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn bind_conn_layout() {
        let m = Request::bind_conn(1, 3, 0, 17, true).encode(1, 0);
        let ev = &m[NLMSG_HDRLEN..];
        assert_eq!(ne32(ev, 0), 15);
        assert_eq!(ne32(ev, 16), 3);
        assert_eq!(ne32(ev, 20), 0);
        assert_eq!(&ev[24..32], &17u64.to_ne_bytes());
        assert_eq!(ne32(ev, 32), 1);
    }

    #[test]
    fn set_param_carries_a_nul_terminated_value_and_pads() {
        let m = Request::set_param(1, 2, 0, Param::TargetName, b"iqn.x").encode(1, 0);
        assert_eq!(ne32(&m, 0) as usize, NLMSG_HDRLEN + UEVENT_LEN + 6);
        assert_eq!(m.len() % 4, 0);
        let ev = &m[NLMSG_HDRLEN..];
        assert_eq!(ne32(ev, 16), 2);
        assert_eq!(ne32(ev, 24), 15);
        assert_eq!(ne32(ev, 28), 6);
        assert_eq!(&ev[UEVENT_LEN..UEVENT_LEN + 6], b"iqn.x\0");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let r = Request::set_param(1, 2, 0, Param::Password, b"hunter2hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
        let r = Request::set_param(1, 2, 0, Param::Username, b"alice");
        assert!(format!("{r:?}").contains("alice"));
    }

    fn reply(msg_type: u16, ev_type: u32, iferror: u32, r: [u32; 4]) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN + UEVENT_LEN];
        let len = m.len() as u32;
        put32(&mut m, 0, len);
        m[4..6].copy_from_slice(&msg_type.to_ne_bytes());
        put32(&mut m, 8, 42);
        put32(&mut m, NLMSG_HDRLEN, ev_type);
        put32(&mut m, NLMSG_HDRLEN + 4, iferror);
        for (i, w) in r.iter().enumerate() {
            put32(&mut m, NLMSG_HDRLEN + R + 4 * i, *w);
        }
        m
    }

    #[test]
    fn replies_decode_results_and_errors() {
        let ok = decode(&reply(11, 11, 0, [4, 9, 0, 0])).unwrap();
        assert_eq!(
            ok,
            vec![Incoming::Reply {
                msg_type: 11,
                seq: 42,
                result: Ok(Reply { r: [4, 9, 0, 0] })
            }]
        );
        let Incoming::Reply { result: Ok(r), .. } = ok[0] else {
            panic!()
        };
        assert_eq!((r.sid(), r.second()), (4, 9));
        // IF_ERROR carries -errno in iferror.
        let e = decode(&reply(16, KEVENT_IF_ERROR, (-107i32) as u32, [0; 4])).unwrap();
        assert!(matches!(
            e[0],
            Incoming::Reply {
                result: Err(107),
                ..
            }
        ));
        // BIND_CONN reports failure in retcode.
        let e = decode(&reply(15, 15, 0, [(-17i32) as u32, 0, 0, 0])).unwrap();
        assert!(matches!(
            e[0],
            Incoming::Reply {
                result: Err(17),
                ..
            }
        ));
        // CREATE_CONN's first word is the sid, not a retcode.
        let e = decode(&reply(13, 13, 0, [3, 0, 0, 0])).unwrap();
        assert!(matches!(e[0], Incoming::Reply { result: Ok(_), .. }));
    }

    #[test]
    fn truncated_and_foreign_messages() {
        let mut m = reply(11, 11, 0, [1, 2, 0, 0]);
        m.truncate(40);
        assert!(decode(&m).is_err());
        let mut short = reply(11, 11, 0, [0; 4]);
        put32(&mut short, 0, 20);
        short.truncate(20);
        assert!(decode(&short).is_err());
        let async_ev = reply(101, 101, 0, [0; 4]);
        assert_eq!(
            decode(&async_ev).unwrap(),
            vec![Incoming::Other { msg_type: 101 }]
        );
        assert!(decode(&[1, 2, 3]).unwrap().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
