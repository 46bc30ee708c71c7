//! The login against an in-process target on 127.0.0.1: a thread that runs proto's
//! `TargetLogin` over each accepted socket.

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use pxeroot_proto::chap::Secret;
use pxeroot_proto::login::{
    Admission, LoginContext, LoginPolicy, TargetAuth, TargetConfig, TargetLogin,
};
use pxeroot_proto::pdu::{LoginResponse, LogoutResponse, Stage, VERSION};
use pxeroot_proto::text::{Key, TextPairs};

use super::*;

const TARGET: &str = "iqn.2026-11.org.example:disk1";
const INITIATOR: &str = "iqn.2013-02.org.example.client:default";
const SECRET: &str = "client-secret-1";
const TARGET_SECRET: &str = "target-secret-1";

struct Policy(TargetAuth);

impl LoginPolicy for Policy {
    fn admit(&self, ctx: &LoginContext<'_>) -> Result<Admission, LoginStatus> {
        if ctx.target_name != Some(TARGET) {
            return Err(LoginStatus::NotFound);
        }
        if ctx.initiator_name != INITIATOR {
            return Err(LoginStatus::AuthorizationFailure);
        }
        Ok(Admission {
            auth: self.0.clone(),
            tsih: 7,
            target_alias: None,
            target_portal_group_tag: 1,
        })
    }
}

/// How the test target misbehaves. Old targets and tgt refuse a CHAP_A list in several ways
/// (a single value is always accepted).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Quirk {
    /// A modern target: lists are fine.
    No,
    /// Login status 0x0201.
    Status,
    /// `CHAP_A=Reject`.
    RejectKey,
    /// Closes the connection.
    Close,
    /// tgt: chooses 7 from the list but expects a SHA-1 response, so refuses a SHA-256
    /// CHAP_R with 0x0200.
    Tgt,
    /// Logs in normally and never answers the logout.
    SilentLogout,
}

#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    chap_a: Vec<String>,
    logged_out: bool,
}

fn target_creds() -> TargetAuth {
    TargetAuth::Chap {
        expected: Credentials::new("client", SECRET.as_bytes()),
        mutual: None,
    }
}

fn mutual_creds(target_secret: &str) -> TargetAuth {
    TargetAuth::Chap {
        expected: Credentials::new("client", SECRET.as_bytes()),
        mutual: Some(Credentials::new("target", target_secret.as_bytes())),
    }
}

/// Serves `conns` connections on 127.0.0.1; the result arrives when the thread ends.
fn serve(auth: TargetAuth, old: Quirk, conns: usize) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut seen = Seen::default();
        for _ in 0..conns {
            let Ok((mut s, _)) = listener.accept() else {
                break;
            };
            seen.connections += 1;
            serve_one(&mut s, addr, &auth, old, &mut seen);
        }
        let _ = tx.send(seen);
    });
    (addr, rx)
}

fn serve_one(s: &mut TcpStream, addr: SocketAddr, auth: &TargetAuth, old: Quirk, seen: &mut Seen) {
    let mut t = TargetLogin::new(TargetConfig {
        params: LocalParams::default(),
        chap_algorithms: ChapAlgorithm::ALL.to_vec(),
        stat_sn: SerialNumber(100),
        cmd_window: 32,
        policy: Box::new(Policy(auth.clone())),
    });
    let mut rng = OsRandom::default();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut wire = Wire {
        stream: s,
        portal: addr,
        limits: FrameLimits::default(),
        during: "test target",
        budget: Duration::from_secs(5),
    };
    loop {
        let Ok(pdu) = wire.recv(deadline) else { return };
        if let Pdu::LoginRequest(req) = &pdu {
            let text = TextPairs::parse(&req.data).unwrap();
            if let Some(a) = text.get(&Key::ChapA) {
                seen.chap_a.push(a.to_owned());
                if a.contains(',') && !matches!(old, Quirk::No | Quirk::Tgt) {
                    let mut rsp = LoginResponse {
                        transit: false,
                        cont: false,
                        csg: Stage::SecurityNegotiation,
                        nsg: Stage::SecurityNegotiation,
                        version_max: VERSION,
                        version_active: VERSION,
                        isid: req.isid,
                        tsih: 0,
                        itt: req.itt,
                        stat_sn: SerialNumber(101),
                        exp_cmd_sn: req.cmd_sn,
                        max_cmd_sn: req.cmd_sn,
                        status: LoginStatus::Success,
                        data: Vec::new(),
                    };
                    match old {
                        Quirk::Status => rsp.status = LoginStatus::AuthenticationFailure,
                        Quirk::RejectKey => rsp.data = b"CHAP_A=Reject\0".to_vec(),
                        _ => return,
                    }
                    let _ = wire.send(&rsp.into(), deadline);
                    return;
                }
            }
        }
        if let Pdu::LoginRequest(req) = &pdu {
            let text = TextPairs::parse(&req.data).unwrap();
            let listed = seen.chap_a.last().is_some_and(|a| a.contains(','));
            if old == Quirk::Tgt && listed && text.get(&Key::ChapR).is_some() {
                let rsp = LoginResponse {
                    transit: false,
                    cont: false,
                    csg: Stage::SecurityNegotiation,
                    nsg: Stage::SecurityNegotiation,
                    version_max: VERSION,
                    version_active: VERSION,
                    isid: req.isid,
                    tsih: 0,
                    itt: req.itt,
                    stat_sn: SerialNumber(102),
                    exp_cmd_sn: req.cmd_sn,
                    max_cmd_sn: req.cmd_sn,
                    status: LoginStatus::InitiatorError,
                    data: Vec::new(),
                };
                let _ = wire.send(&rsp.into(), deadline);
                return;
            }
        }
        if let Pdu::LogoutRequest(req) = &pdu {
            seen.logged_out = true;
            if old == Quirk::SilentLogout {
                // Wait for the initiator to give up and close.
                let _ = wire.recv(deadline);
                return;
            }
            let rsp = LogoutResponse {
                response: LogoutResponseCode::Closed,
                itt: req.itt,
                stat_sn: req.exp_stat_sn,
                exp_cmd_sn: req.cmd_sn,
                max_cmd_sn: req.cmd_sn,
                time2wait: 0,
                time2retain: 0,
            };
            let _ = wire.send(&rsp.into(), deadline);
            return;
        }
        let failed = t.handle_pdu(&pdu, &mut rng).is_err();
        while let Some(rsp) = t.poll_transmit() {
            if wire.send(&rsp.into(), deadline).is_err() {
                return;
            }
        }
        if failed {
            return;
        }
    }
}

fn chap() -> Auth {
    Auth::Chap {
        user: "client".into(),
        secret: Secret::new(SECRET),
    }
}

fn mutual() -> Auth {
    Auth::MutualChap {
        user: "client".into(),
        secret: Secret::new(SECRET),
        target_user: "target".into(),
        target_secret: Secret::new(TARGET_SECRET),
    }
}

fn spec(auth: &Auth) -> LoginSpec<'_> {
    LoginSpec {
        initiator_name: INITIATOR,
        target_name: TARGET,
        auth,
        isid: Isid::random(0x12_3456, 0),
        params: default_params(),
        connect_timeout: Duration::from_secs(3),
        login_timeout: Duration::from_secs(5),
        bind_device: None,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Neither Display nor Debug of an error shows a secret.
fn assert_no_secret(e: &AttemptError) {
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains(TARGET_SECRET), "{text}");
    }
}

#[test]
fn no_auth_logs_in_and_out() {
    let (addr, seen) = serve(TargetAuth::None, Quirk::No, 1);
    let auth = Auth::None;
    let mut li = connect_and_login(addr, &spec(&auth), soon()).unwrap();
    assert_eq!(li.portal, addr);
    assert_eq!(li.chap, None);
    assert!(li.stream.nodelay().unwrap());
    assert_eq!(li.stream.read_timeout().unwrap(), None);
    assert_eq!(li.stream.write_timeout().unwrap(), None);
    assert_eq!(li.outcome.tsih, 7);
    // InitialR2T is an OR: the test target keeps the RFC default Yes.
    assert!(li.outcome.session.initial_r2t);
    assert!(li.outcome.session.immediate_data);
    assert_eq!(li.outcome.conn.header_digest, DigestKind::None);
    // The target declared 262144 (its default); we declared 262144.
    assert_eq!(li.outcome.conn.max_send_data_segment_length, 262_144);
    assert!(li.elapsed < Duration::from_secs(5));
    logout(&mut li, Duration::from_secs(2)).unwrap();
    let seen = seen.recv().unwrap();
    assert!(seen.logged_out);
    assert!(seen.chap_a.is_empty());
}

#[test]
fn unanswered_logout_times_out() {
    let (addr, seen) = serve(TargetAuth::None, Quirk::SilentLogout, 1);
    let auth = Auth::None;
    let mut li = connect_and_login(addr, &spec(&auth), soon()).unwrap();
    let start = Instant::now();
    let e = logout(&mut li, Duration::from_millis(300)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(
        e.to_string(),
        format!("{addr}: no answer to logout within 0.3 s")
    );
    assert!(e.retryable() && !e.is_auth());
    drop(li);
    assert!(seen.recv().unwrap().logged_out);
}

#[test]
fn chap_prefers_sha256() {
    let (addr, seen) = serve(target_creds(), Quirk::No, 1);
    let auth = chap();
    let li = connect_and_login(addr, &spec(&auth), soon()).unwrap();
    assert_eq!(li.chap, Some(ChapAlgorithm::Sha256));
    drop(li);
    assert_eq!(seen.recv().unwrap().chap_a, ["7,5"]);
}

#[test]
fn mutual_chap() {
    let (addr, _seen) = serve(mutual_creds(TARGET_SECRET), Quirk::No, 1);
    let auth = mutual();
    let li = connect_and_login(addr, &spec(&auth), soon()).unwrap();
    assert_eq!(li.chap, Some(ChapAlgorithm::Sha256));
}

#[test]
fn impostor_target_fails_mutual_chap() {
    let (addr, _seen) = serve(mutual_creds("impostor-secret"), Quirk::No, 1);
    let auth = mutual();
    let e = connect_and_login(addr, &spec(&auth), soon()).unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert!(!e.retryable());
    assert_eq!(e.exit_code(), 14);
    assert_eq!(
        e.to_string(),
        format!("{addr}: mutual CHAP: the target's response did not match")
    );
    assert_no_secret(&e);
}

#[test]
fn wrong_secret_is_auth_failure() {
    let (addr, seen) = serve(target_creds(), Quirk::No, 2);
    let auth = Auth::Chap {
        user: "client".into(),
        secret: Secret::new("wrong-secret-42"),
    };
    let e = connect_and_login(addr, &spec(&auth), soon()).unwrap_err();
    assert!(e.is_auth());
    assert!(!e.retryable());
    assert_eq!(e.exit_code(), 14);
    assert_eq!(
        e.to_string(),
        format!("{addr}: login rejected: authentication failed (status 0x0201)")
    );
    assert!(!format!("{e} {e:?}").contains("wrong-secret-42"));
    // A refused SHA-256 response looks like tgt's SHA-1 mix-up: one more try with MD5, no more.
    let seen = seen.recv().unwrap();
    assert_eq!(seen.connections, 2);
    assert_eq!(seen.chap_a, ["7,5", "5"]);
}

#[test]
fn unknown_target_and_acl() {
    let (addr, _seen) = serve(TargetAuth::None, Quirk::No, 2);
    let auth = Auth::None;
    let mut s = spec(&auth);
    s.target_name = "iqn.2026-11.org.example:nope";
    let e = connect_and_login(addr, &s, soon()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{addr}: login rejected: target not found (status 0x0203)")
    );
    assert!(!e.is_auth() && !e.retryable());
    assert_eq!(e.exit_code(), 13);
    let mut s = spec(&auth);
    s.initiator_name = "iqn.2026-11.org.example:stranger";
    let e = connect_and_login(addr, &s, soon()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{addr}: login rejected: initiator not authorized (status 0x0202)")
    );
    assert_eq!(e.exit_code(), 13);
}

#[test]
fn refused_port_is_retryable() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is gone: nothing listens on addr now.
    let auth = Auth::None;
    let e = connect_and_login(addr, &spec(&auth), soon()).unwrap_err();
    assert_eq!(e.to_string(), format!("{addr}: connection refused"));
    assert!(e.retryable() && !e.is_auth());
    assert_eq!(e.exit_code(), 12);
}

#[test]
fn silent_target_times_out_within_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = Auth::None;
    let mut s = spec(&auth);
    s.login_timeout = Duration::from_millis(300);
    let start = Instant::now();
    let e = connect_and_login(addr, &s, soon()).unwrap_err();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("{addr}: target did not answer the login within 0.3 s")
    );
    assert!(e.retryable());
    assert_eq!(e.exit_code(), 13);
    // The overall deadline wins over a longer login timeout.
    s.login_timeout = Duration::from_secs(30);
    let start = Instant::now();
    let e = connect_and_login(addr, &s, Instant::now() + Duration::from_millis(200)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(matches!(e, AttemptError::LoginTimeout { .. }), "{e}");
    assert!(e.to_string().ends_with(" s"), "{e}");
    assert!(!e.to_string().contains("within 30 s"), "{e}");
    drop(listener);
}

#[test]
fn passed_deadline_does_not_connect() {
    let auth = Auth::None;
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let e = connect_and_login(addr, &spec(&auth), Instant::now()).unwrap_err();
    assert!(matches!(e, AttemptError::ConnectTimeout { .. }), "{e}");
    assert_eq!(e.exit_code(), 12);
    assert!(e.retryable());
}

#[test]
fn old_target_gets_md5_alone_on_a_second_connection() {
    for old in [Quirk::Status, Quirk::RejectKey, Quirk::Close, Quirk::Tgt] {
        let (addr, seen) = serve(target_creds(), old, 2);
        let auth = chap();
        let li = connect_and_login(addr, &spec(&auth), soon()).unwrap();
        assert_eq!(li.chap, Some(ChapAlgorithm::Md5), "{old:?}");
        drop(li);
        let seen = seen.recv().unwrap();
        assert_eq!(seen.connections, 2, "{old:?}");
        assert_eq!(seen.chap_a, ["7,5", "5"], "{old:?}");
    }
}

#[test]
fn old_target_with_wrong_secret_still_fails_as_auth() {
    let (addr, seen) = serve(target_creds(), Quirk::Status, 2);
    let auth = Auth::Chap {
        user: "client".into(),
        secret: Secret::new("wrong-secret-42"),
    };
    let e = connect_and_login(addr, &spec(&auth), soon()).unwrap_err();
    // The listener takes two connections: a third attempt would end in "connection refused".
    assert!(e.is_auth(), "{e}");
    assert_eq!(seen.recv().unwrap().chap_a, ["7,5", "5"]);
}

#[test]
fn bind_device() {
    let (addr, _seen) = serve(TargetAuth::None, Quirk::No, 1);
    let auth = Auth::None;
    let mut s = spec(&auth);
    s.bind_device = Some("no-such-nic0");
    let e = connect_and_login(addr, &s, soon()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{addr}: cannot bind to interface no-such-nic0: ")),
        "{e}"
    );
    assert_eq!(e.exit_code(), 12);
    assert!(!e.retryable());
    // Binding to loopback needs CAP_NET_RAW; where we have it, it must work.
    s.bind_device = Some("lo");
    match connect_and_login(addr, &s, soon()) {
        Ok(li) => assert_eq!(li.portal, addr),
        Err(AttemptError::BindDevice { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(Errno::EPERM as i32))
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn same_secret_both_ways_fails_before_connecting() {
    let auth = Auth::MutualChap {
        user: "client".into(),
        secret: Secret::new(SECRET),
        target_user: "target".into(),
        target_secret: Secret::new(SECRET),
    };
    // Nothing listens here: a connection attempt would say "connection refused".
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = connect_and_login(addr, &spec(&auth), soon()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{addr}: CHAP: the same CHAP secret is used in both directions")
    );
    assert!(e.is_auth() && !e.retryable());
    assert_no_secret(&e);
}

#[test]
fn spec_debug_redacts_secrets() {
    let auth = mutual();
    let text = format!("{:?}", spec(&auth));
    assert!(
        !text.contains(SECRET) && !text.contains(TARGET_SECRET),
        "{text}"
    );
}

#[test]
fn default_params_suit_iscsi_tcp() {
    let p = default_params();
    assert_eq!(p.max_recv_data_segment_length, 262_144);
    assert_eq!(p.max_burst_length, 16_776_192);
    assert_eq!(p.first_burst_length, 262_144);
    assert!(p.immediate_data && !p.initial_r2t);
    assert_eq!(p.header_digest, [DigestKind::None, DigestKind::Crc32c]);
    assert_eq!((p.error_recovery_level, p.max_connections), (0, 1));
}
