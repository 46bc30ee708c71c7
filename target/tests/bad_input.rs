//! Bad input against a live, in-process target (issue 3, "Bad input, each a test").
//!
//! Each test starts [`Server::serve_on`] on a loopback listener bound to port 0 and speaks raw
//! TCP to it with pxeroot-proto's codec and [`InitiatorLogin`]. Login refusals are checked
//! byte-level through the Login Response status; feature-phase garbage must earn a Reject or a
//! closed connection. Every feature-phase test keeps a session that logged in *before* the bad
//! one and checks that it still completes INQUIRY and READ CAPACITY afterwards. Two more
//! tests bound what one session can make the target hold (Data-In nobody reads, writes whose
//! data never comes), and two check that `serve_on` returns on shutdown. A panic hook counts
//! panics on tokio's threads, where the server runs and where tokio would otherwise swallow
//! them, and each test ends by asserting there were none.
// The helpers below are test code too: failing loudly is their job (clippy's allow-*-in-tests
// covers only #[test] functions themselves).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use pxeroot_proto::chap::{ChapAlgorithm, Credentials, Random};
use pxeroot_proto::frame::{encode_pdu, Frame, FrameLimits};
use pxeroot_proto::login::{
    InitiatorAuth, InitiatorConfig, InitiatorLogin, LoginOutcome, LoginState,
};
use pxeroot_proto::negotiate::LocalParams;
use pxeroot_proto::pdu::{
    LoginRequest, LoginStatus, LogoutReason, LogoutRequest, NopOut, Reject, RejectReason,
    ScsiCommand, Stage, TaskAttr, VERSION,
};
use pxeroot_proto::{Isid, Lun, Pdu, SerialNumber};
use pxeroot_target::config::Config;
use pxeroot_target::iscsi::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const DISK: &str = "iqn.2026-11.org.example:disk1";
const CHAP_DISK: &str = "iqn.2026-11.org.example:chapdisk";
const INITIATOR: &str = "iqn.2013-02.org.example.client:default";
const CHAP_USER: &str = "client";
const CHAP_SECRET: &[u8] = b"client-secret-1";
/// Image size: 2048 blocks of 512 bytes.
const IMAGE_LEN: usize = 1 << 20;
/// How long to wait for a PDU that should come.
const WAIT: Duration = Duration::from_secs(5);
/// How long to wait to be sure a PDU does not come.
const QUIET: Duration = Duration::from_millis(400);
const RESERVED_TAG: u32 = 0xffff_ffff;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Count every panic in the process, including those in server tasks.
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Test threads are named after their test; the server runs on tokio's threads.
            if std::thread::current()
                .name()
                .is_none_or(|n| n.starts_with("tokio"))
            {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

fn assert_no_panics() {
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a server thread panicked (see the output above)"
    );
}

/// A zero-filled image file, removed on drop.
struct TempImage(PathBuf);

impl TempImage {
    fn new() -> TempImage {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pxrt-bad-input-{}-{n}.img", std::process::id()));
        std::fs::write(&path, vec![0u8; IMAGE_LEN]).unwrap();
        TempImage(path)
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running server on a loopback port.
struct Harness {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    serve: JoinHandle<()>,
    _images: [TempImage; 2],
}

async fn start() -> Harness {
    count_panics();
    let images = [TempImage::new(), TempImage::new()];
    let text = format!(
        r#"[iscsi]
listen = ["127.0.0.1:3260"]
nop_interval = 0

[[target]]
name = "{DISK}"
[[target.lun]]
id = 0
path = "{}"
[[target.acl]]
initiator = "{INITIATOR}"

[[target]]
name = "{CHAP_DISK}"
[[target.lun]]
id = 0
path = "{}"
[[target.acl]]
initiator = "{INITIATOR}"
chap = {{ user = "{CHAP_USER}", secret = "client-secret-1" }}
"#,
        images[0].0.display(),
        images[1].0.display()
    );
    let checked = Config::parse(&text);
    assert!(
        checked
            .problems
            .iter()
            .all(|p| !p.to_string().contains("error")),
        "{:?}",
        checked.problems
    );
    let config = checked.config.expect("config");
    let server = Arc::new(Server::new(&config).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, rx) = watch::channel(false);
    let serve = tokio::spawn(server.serve_on(vec![listener], rx));
    Harness {
        addr,
        shutdown,
        serve,
        _images: images,
    }
}

impl Harness {
    /// Stop the server and check that `serve_on` returns promptly.
    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(WAIT, self.serve)
            .await
            .expect("serve did not return after shutdown")
            .unwrap();
        assert_no_panics();
    }
}

/// Deterministic CHAP randomness for the initiator side.
struct Counter(u8);

impl Random for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0;
            self.0 = self.0.wrapping_add(29);
        }
    }
}

enum Recv {
    Pdu(Pdu),
    /// EOF or reset.
    Closed,
    /// Nothing within the time allowed.
    Silent,
}

impl std::fmt::Debug for Recv {
    /// Opcode and ITT only: a PDU with its data would flood the test output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recv::Pdu(p) => write!(
                f,
                "{:?} (ITT {:#x}, {} data bytes)",
                p.opcode(),
                p.itt(),
                p.data_len()
            ),
            Recv::Closed => f.write_str("a closed connection"),
            Recv::Silent => f.write_str("silence"),
        }
    }
}

/// A raw iSCSI connection: bytes in, PDUs out.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, pdu: &Pdu) {
        let mut out = Vec::new();
        encode_pdu(pdu, &FrameLimits::default(), &mut out).unwrap();
        self.send_raw(&out).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        // The server may already have closed: that is for `recv` to report.
        let _ = self.stream.write_all(bytes).await;
    }

    async fn recv_within(&mut self, wait: Duration) -> Recv {
        let limits = FrameLimits {
            max_data_segment_len: 1 << 24,
            ..FrameLimits::default()
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Ok(frame) = Frame::split(&self.buf, &limits) {
                let len = frame.len;
                let pdu = frame
                    .parse()
                    .expect("the target sent a PDU we cannot parse");
                self.buf.drain(..len);
                return Recv::Pdu(pdu);
            }
            self.buf.reserve(64 * 1024);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Recv::Silent,
                Ok(Ok(0) | Err(_)) => return Recv::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    async fn recv(&mut self) -> Recv {
        self.recv_within(WAIT).await
    }

    /// Expect the server to close this connection, skipping any PDUs it sends first.
    async fn expect_closed(&mut self) {
        loop {
            match self.recv().await {
                Recv::Closed => return,
                Recv::Silent => panic!("the target neither answered nor closed the connection"),
                Recv::Pdu(_) => {}
            }
        }
    }
}

fn initiator_config(
    initiator: &str,
    target: &str,
    auth: InitiatorAuth,
    qualifier: u16,
) -> InitiatorConfig {
    InitiatorConfig {
        initiator_name: initiator.into(),
        initiator_alias: None,
        target_name: Some(target.into()),
        isid: Isid::random(0x00ba_d1a9, qualifier),
        tsih: 0,
        cid: 0,
        itt: 0x10,
        cmd_sn: SerialNumber(1),
        auth,
        params: LocalParams {
            max_recv_data_segment_length: 65_536,
            ..LocalParams::default()
        },
    }
}

fn chap(secret: &[u8]) -> InitiatorAuth {
    InitiatorAuth::Chap {
        algorithms: vec![ChapAlgorithm::Sha256, ChapAlgorithm::Md5],
        creds: Credentials::new(CHAP_USER, secret.to_vec()),
        mutual: None,
    }
}

/// Drive a login to its end. `Err` carries the status of the final Login Response and the
/// connection, for the caller to check that it closes.
async fn login(addr: SocketAddr, cfg: InitiatorConfig) -> Result<Session, (LoginStatus, Client)> {
    let mut client = Client::connect(addr).await;
    let mut fsm = InitiatorLogin::new(cfg).unwrap();
    let mut rng = Counter(3);
    loop {
        while let Some(req) = fsm.poll_transmit() {
            client.send(&req.into()).await;
        }
        let rsp = match client.recv().await {
            Recv::Pdu(Pdu::LoginResponse(r)) => r,
            other => panic!("expected a Login Response, got {other:?}"),
        };
        let status = rsp.status;
        if let Err(e) = fsm.handle_pdu(&Pdu::LoginResponse(rsp), &mut rng) {
            assert_ne!(
                status,
                LoginStatus::Success,
                "initiator refused a successful response: {e}"
            );
            return Err((status, client));
        }
        if fsm.state() == LoginState::FullFeature {
            let outcome = fsm.outcome().cloned().unwrap();
            return Ok(Session::new(client, &outcome));
        }
    }
}

async fn login_ok(addr: SocketAddr, qualifier: u16) -> Session {
    match login(
        addr,
        initiator_config(INITIATOR, DISK, InitiatorAuth::None, qualifier),
    )
    .await
    {
        Ok(s) => s,
        Err((status, _)) => panic!("login refused with {status:?}"),
    }
}

/// A logged-in session.
struct Session {
    client: Client,
    cmd_sn: SerialNumber,
    exp_stat_sn: SerialNumber,
    next_itt: u32,
    /// The target's MaxRecvDataSegmentLength.
    target_mrdsl: u32,
}

/// What a SCSI command returned.
#[derive(Debug)]
struct Completion {
    status: u8,
    data: Vec<u8>,
    exp_cmd_sn: SerialNumber,
}

impl Session {
    fn new(client: Client, o: &LoginOutcome) -> Session {
        Session {
            client,
            cmd_sn: o.cmd_sn,
            exp_stat_sn: o.exp_stat_sn,
            next_itt: 1,
            target_mrdsl: o.conn.max_send_data_segment_length,
        }
    }

    fn itt(&mut self) -> u32 {
        self.next_itt += 1;
        self.next_itt
    }

    fn scsi_command(&mut self, cdb: &[u8], read_len: u32, cmd_sn: SerialNumber) -> ScsiCommand {
        let mut c = [0u8; 16];
        c[..cdb.len()].copy_from_slice(cdb);
        ScsiCommand {
            immediate: false,
            fin: true,
            read: read_len > 0,
            write: false,
            attr: TaskAttr::Simple,
            lun: Lun::ZERO,
            itt: self.itt(),
            expected_data_transfer_length: read_len,
            cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            cdb: c,
            data: Vec::new(),
        }
    }

    /// Wait for the status of task `itt`, gathering its Data-In.
    async fn completion(&mut self, itt: u32) -> Completion {
        self.completions(&[itt]).await.remove(&itt).unwrap()
    }

    /// Wait for the status of every task in `itts`, in whatever order they finish.
    async fn completions(&mut self, itts: &[u32]) -> HashMap<u32, Completion> {
        let mut data: HashMap<u32, Vec<u8>> = itts.iter().map(|i| (*i, Vec::new())).collect();
        let mut done = HashMap::new();
        while done.len() < itts.len() {
            let (itt, status, exp_cmd_sn) = match self.client.recv().await {
                Recv::Pdu(Pdu::DataIn(d)) if data.contains_key(&d.itt) => {
                    data.entry(d.itt).or_default().extend_from_slice(&d.data);
                    let Some(status) = d.status else { continue };
                    self.exp_stat_sn = SerialNumber(d.stat_sn.0.wrapping_add(1));
                    (d.itt, status, d.exp_cmd_sn)
                }
                Recv::Pdu(Pdu::ScsiResponse(r)) if data.contains_key(&r.itt) => {
                    self.exp_stat_sn = SerialNumber(r.stat_sn.0.wrapping_add(1));
                    (r.itt, r.status, r.exp_cmd_sn)
                }
                other => panic!("waiting for tasks {itts:x?}, got {other:?}"),
            };
            let data = data.remove(&itt).unwrap_or_default();
            done.insert(
                itt,
                Completion {
                    status,
                    data,
                    exp_cmd_sn,
                },
            );
        }
        done
    }

    /// Run a non-immediate read-type command with the next CmdSN.
    async fn run(&mut self, cdb: &[u8], read_len: u32) -> Completion {
        let cmd = self.scsi_command(cdb, read_len, self.cmd_sn);
        self.cmd_sn = SerialNumber(self.cmd_sn.0.wrapping_add(1));
        let itt = cmd.itt;
        self.client.send(&Pdu::ScsiCommand(cmd)).await;
        self.completion(itt).await
    }

    /// INQUIRY and READ CAPACITY (10) complete with GOOD and sensible data.
    async fn assert_alive(&mut self) {
        let inquiry = self.run(&[0x12, 0, 0, 0, 96, 0], 96).await;
        assert_eq!(inquiry.status, 0, "INQUIRY: {inquiry:?}");
        assert!(inquiry.data.len() >= 36, "INQUIRY: {inquiry:?}");
        assert_eq!(
            inquiry.data[0] & 0x1f,
            0,
            "not a direct-access device: {inquiry:?}"
        );
        let cap = self.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8).await;
        assert_eq!(cap.status, 0, "READ CAPACITY: {cap:?}");
        assert_eq!(
            cap.data,
            [0, 0, 0x07, 0xff, 0, 0, 2, 0],
            "READ CAPACITY: 2048 blocks of 512"
        );
    }

    /// A well-formed NOP-Out header with `data`, as bytes, using the next CmdSN (immediate).
    fn nop_out_bytes(&mut self, data: &[u8]) -> Vec<u8> {
        let nop = NopOut {
            immediate: true,
            lun: Lun::ZERO,
            itt: self.itt(),
            ttt: RESERVED_TAG,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            data: data.to_vec(),
        };
        let mut out = Vec::new();
        encode_pdu(
            &Pdu::NopOut(nop),
            &FrameLimits {
                max_data_segment_len: 1 << 24,
                ..FrameLimits::default()
            },
            &mut out,
        )
        .unwrap();
        out
    }

    /// Log out cleanly.
    async fn logout(mut self) {
        let itt = self.itt();
        let l = LogoutRequest {
            immediate: true,
            reason: LogoutReason::CloseSession,
            itt,
            cid: 0,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
        };
        self.client.send(&Pdu::LogoutRequest(l)).await;
        match self.client.recv().await {
            Recv::Pdu(Pdu::LogoutResponse(r)) => assert_eq!(r.itt, itt),
            other => panic!("expected a Logout Response, got {other:?}"),
        }
        self.client.expect_closed().await;
    }
}

/// The outcome the brief allows for feature-phase garbage: a Reject (whose header echoes the
/// bad PDU's opcode, if `opcode` is given) or a closed connection. Returns the Reject.
async fn expect_reject_or_close(client: &mut Client, opcode: Option<u8>) -> Option<Reject> {
    match client.recv().await {
        Recv::Closed => None,
        Recv::Pdu(Pdu::Reject(r)) => {
            assert_eq!(
                r.header.len(),
                48,
                "a Reject carries the rejected BHS: {r:?}"
            );
            if let Some(op) = opcode {
                assert_eq!(
                    r.header[0] & 0x3f,
                    op,
                    "the Reject echoes another header: {r:?}"
                );
            }
            Some(r)
        }
        other => panic!("expected a Reject or a closed connection, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Login refusals
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_chap_response_gets_0201_and_the_connection_closes() {
    let h = start().await;
    // Positive control: the right secret logs in, so the refusal below is about the secret.
    let good = login(
        h.addr,
        initiator_config(INITIATOR, CHAP_DISK, chap(CHAP_SECRET), 1),
    )
    .await;
    let mut good = good
        .map_err(|(s, _)| s)
        .expect("CHAP login with the right secret");
    good.assert_alive().await;

    let bad = login(
        h.addr,
        initiator_config(INITIATOR, CHAP_DISK, chap(b"not-the-secret-9"), 2),
    )
    .await;
    let Err((status, mut client)) = bad else {
        panic!("a wrong CHAP response logged in")
    };
    assert_eq!(u16::from(status), 0x0201);
    client.expect_closed().await;

    // No CHAP at all against a CHAP ACL is refused with the same status.
    let none = login(
        h.addr,
        initiator_config(INITIATOR, CHAP_DISK, InitiatorAuth::None, 3),
    )
    .await;
    let Err((status, mut client)) = none else {
        panic!("AuthMethod=None logged in to a CHAP target")
    };
    assert_eq!(u16::from(status), 0x0201);
    client.expect_closed().await;

    good.assert_alive().await;
    good.logout().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_target_name_gets_0203() {
    let h = start().await;
    let r = login(
        h.addr,
        initiator_config(
            INITIATOR,
            "iqn.2026-11.org.example:no-such-disk",
            InitiatorAuth::None,
            1,
        ),
    )
    .await;
    let Err((status, mut client)) = r else {
        panic!("logged in to a target that does not exist")
    };
    assert_eq!(u16::from(status), 0x0203);
    client.expect_closed().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initiator_not_in_the_acl_gets_0202() {
    let h = start().await;
    let intruder = "iqn.2013-02.org.example.client:intruder";
    for target in [DISK, CHAP_DISK] {
        let r = login(
            h.addr,
            initiator_config(intruder, target, InitiatorAuth::None, 1),
        )
        .await;
        let Err((status, mut client)) = r else {
            panic!("{intruder} logged in to {target}")
        };
        assert_eq!(u16::from(status), 0x0202, "{target}");
        client.expect_closed().await;
    }
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Garbage during login
// ---------------------------------------------------------------------------------------------

/// A Login Request (security stage) as bytes, for patching.
fn login_request_bytes() -> Vec<u8> {
    let req = LoginRequest {
        transit: true,
        cont: false,
        csg: Stage::SecurityNegotiation,
        nsg: Stage::LoginOperationalNegotiation,
        version_max: VERSION,
        version_min: VERSION,
        isid: Isid::random(0x0012_3456, 9),
        tsih: 0,
        itt: 1,
        cid: 0,
        cmd_sn: SerialNumber(1),
        exp_stat_sn: SerialNumber(0),
        data: format!(
            "InitiatorName={INITIATOR}\0TargetName={DISK}\0SessionType=Normal\0AuthMethod=None\0"
        )
        .into_bytes(),
    };
    let mut out = Vec::new();
    encode_pdu(&Pdu::LoginRequest(req), &FrameLimits::default(), &mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_during_login_closes_only_that_connection() {
    let h = start().await;
    let mut a = login_ok(h.addr, 1).await;

    let mut oversized = login_request_bytes();
    oversized[5..8].copy_from_slice(&[0x00, 0x20, 0x04]); // DataSegmentLength 8196 > 8192
    let mut huge_ahs = login_request_bytes();
    huge_ahs[4] = 0xff; // TotalAHSLength 1020 bytes, then the real data as "AHS"
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("48 bytes of 0xff", vec![0xff; 48]),
        ("48 zero bytes (a NOP-Out before login)", vec![0; 48]),
        ("a SCSI Command before login", {
            let mut b = login_request_bytes();
            b[0] = 0x01;
            b
        }),
        (
            "Login Request with DataSegmentLength 8196",
            oversized[..48].to_vec(),
        ),
        ("Login Request with TotalAHSLength 255", huge_ahs),
        ("text that is not key=value", {
            let mut b = login_request_bytes();
            for x in &mut b[48..] {
                if *x == b'=' {
                    *x = b'-';
                }
            }
            b
        }),
    ];
    for (name, bytes) in cases {
        let mut c = Client::connect(h.addr).await;
        c.send_raw(&bytes).await;
        let _ = c.stream.shutdown().await;
        // A Login Response with a failure status, or nothing, then the close.
        loop {
            match c.recv().await {
                Recv::Closed => break,
                Recv::Pdu(Pdu::LoginResponse(r)) => {
                    assert_ne!(r.status, LoginStatus::Success, "{name}: {r:?}");
                    assert!(
                        !r.transit || r.nsg != Stage::FullFeaturePhase,
                        "{name}: {r:?}"
                    );
                }
                other => panic!("{name}: expected a refusal or a close, got {other:?}"),
            }
        }
        a.assert_alive().await;
    }
    // A truncated BHS, then the initiator goes away.
    let mut c = Client::connect(h.addr).await;
    c.send_raw(&login_request_bytes()[..20]).await;
    drop(c);
    a.assert_alive().await;
    a.logout().await;
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Garbage in the full feature phase
// ---------------------------------------------------------------------------------------------

/// How a feature-phase connection reacted to a bad PDU.
enum Reaction {
    Closed,
    Rejected(Reject),
    /// A SCSI Response with a non-GOOD status.
    Failed(u8),
    /// Any other PDU (tolerated only where the case says so).
    Answered(Pdu),
    Silent,
}

impl std::fmt::Debug for Reaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reaction::Closed => f.write_str("a closed connection"),
            Reaction::Rejected(r) => write!(f, "Reject {:?}", r.reason),
            Reaction::Failed(status) => write!(f, "SCSI status {status:#04x}"),
            Reaction::Answered(p) => write!(f, "{:?} (ITT {:#x})", p.opcode(), p.itt()),
            Reaction::Silent => f.write_str("silence"),
        }
    }
}

async fn react(client: &mut Client) -> Reaction {
    match client.recv().await {
        Recv::Closed => Reaction::Closed,
        Recv::Silent => Reaction::Silent,
        Recv::Pdu(Pdu::Reject(r)) => Reaction::Rejected(r),
        Recv::Pdu(Pdu::ScsiResponse(r)) if r.status != 0 => Reaction::Failed(r.status),
        Recv::Pdu(p) => Reaction::Answered(p),
    }
}

/// A bad PDU and whether the target may let it pass (answer it or ignore it) instead of
/// refusing it; either way the connection must stay in step afterwards or be closed.
type Case = (&'static str, bool, fn(&mut Session) -> Vec<u8>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bhs_gets_a_reject_or_a_close() {
    let h = start().await;
    let mut a = login_ok(h.addr, 1).await;
    a.assert_alive().await;

    let cases: Vec<Case> = vec![
        ("48 bytes of 0xff", false, |_| vec![0xff; 48]),
        ("a Logout Request with a data segment", false, |s| {
            let mut b = s.nop_out_bytes(b"abcd");
            b[0] = 0x46; // immediate Logout Request
            b[1] = 0x80;
            b
        }),
        ("a Login Request in the full feature phase", false, |_| {
            login_request_bytes()
        }),
        (
            "a write with reserved flag bits and a 4 GiB EDTL",
            false,
            |s| {
                let cmd =
                    s.scsi_command(&[0x2a, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0], 0, SerialNumber(0));
                let mut b = Vec::new();
                encode_pdu(&Pdu::ScsiCommand(cmd), &FrameLimits::default(), &mut b).unwrap();
                b[0] |= 0x40; // immediate, so CmdSN does not matter
                b[1] = 0xff; // F, R, W, reserved bits, ATTR 7
                b[2] = 0xff;
                b[3] = 0xff;
                b[20..24].copy_from_slice(&[0xff; 4]); // EDTL 4 GiB - 1
                b
            },
        ),
        // AHS are not defined for a NOP-Out; the parser skips them. Tolerated if the framing
        // stays in step (the AHS bytes must not be taken for the next PDU).
        (
            "a NOP-Out with TotalAHSLength 255 and garbage AHS",
            true,
            |s| {
                let mut b = s.nop_out_bytes(b"");
                b[4] = 0xff;
                b.extend_from_slice(&[0xa5; 1020]);
                b
            },
        ),
        ("a SCSI Command with an AHS of a reserved type", true, |s| {
            let cmd = s.scsi_command(&[0x12, 0, 0, 0, 96, 0], 96, SerialNumber(0));
            let mut b = Vec::new();
            encode_pdu(&Pdu::ScsiCommand(cmd), &FrameLimits::default(), &mut b).unwrap();
            b[0] |= 0x40;
            b[4] = 1;
            b.extend_from_slice(&[0x00, 0x01, 0x3b, 0x00]);
            b
        }),
        // A Data-Out for a task the target does not know is dropped (it may belong to an
        // aborted task, RFC 7143 §11.7): silence is the expected reaction.
        ("a Data-Out for no task with a huge offset", true, |s| {
            let mut b = s.nop_out_bytes(&[7; 16]);
            b[0] = 0x05;
            b[1] = 0x80;
            b[40..44].copy_from_slice(&[0xff, 0xff, 0xff, 0xf0]); // Buffer Offset
            b
        }),
    ];
    for (i, (name, tolerated, make)) in cases.into_iter().enumerate() {
        let mut b = login_ok(h.addr, 100 + i as u16).await;
        let bytes = make(&mut b);
        b.client.send_raw(&bytes).await;
        let reaction = if tolerated {
            quiet_react(&mut b.client).await
        } else {
            react(&mut b.client).await
        };
        match &reaction {
            Reaction::Closed => eprintln!("{name}: closed"),
            Reaction::Rejected(r) => {
                assert_eq!(&r.header[..], &bytes[..48], "{name}: {r:?}");
                eprintln!("{name}: Reject {:?}", r.reason);
            }
            Reaction::Failed(status) => eprintln!("{name}: SCSI status {status:#04x}"),
            Reaction::Answered(p) if tolerated => {
                eprintln!("{name}: tolerated, answered with {:?}", p.opcode())
            }
            Reaction::Silent if tolerated => eprintln!("{name}: tolerated, ignored"),
            other => panic!("{name}: expected a Reject, an error status or a close, got {other:?}"),
        }
        if !matches!(reaction, Reaction::Closed) {
            // Still in step: the next PDU on the same connection is understood.
            b.assert_alive().await;
        }
        a.assert_alive().await;
    }
    // A BHS cut short, then the initiator goes away.
    let mut b = login_ok(h.addr, 200).await;
    b.client.send_raw(&[0x01, 0x80, 0, 0, 0, 0, 0, 0]).await;
    drop(b);
    a.assert_alive().await;
    a.logout().await;
    h.stop().await;
}

/// Like [`react`] but waits only [`QUIET`] for a reaction that may not come.
async fn quiet_react(client: &mut Client) -> Reaction {
    match client.recv_within(QUIET).await {
        Recv::Closed => Reaction::Closed,
        Recv::Silent => Reaction::Silent,
        Recv::Pdu(Pdu::Reject(r)) => Reaction::Rejected(r),
        Recv::Pdu(Pdu::ScsiResponse(r)) if r.status != 0 => Reaction::Failed(r.status),
        Recv::Pdu(p) => Reaction::Answered(p),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_segment_beyond_the_negotiated_limit_closes_the_connection() {
    let h = start().await;
    let mut a = login_ok(h.addr, 1).await;
    let mut b = login_ok(h.addr, 2).await;
    b.assert_alive().await;
    // The limit itself is accepted: a NOP-Out ping of exactly the target's
    // MaxRecvDataSegmentLength. The echo is cut to *our* MaxRecvDataSegmentLength (64 KiB,
    // RFC 7143 §11.18.6).
    let limit = b.target_mrdsl;
    assert!(limit >= 512, "{limit}");
    let bytes = b.nop_out_bytes(&vec![0x5a; limit as usize]);
    b.client.send_raw(&bytes).await;
    match b.client.recv().await {
        Recv::Pdu(Pdu::NopIn(n)) => assert_eq!(n.data.len(), (limit as usize).min(65_536)),
        other => panic!("expected a NOP-In echo, got {other:?}"),
    }
    b.assert_alive().await;
    // One word more is not: the header alone is enough to refuse it, before any allocation.
    let bytes = b.nop_out_bytes(&vec![0x5a; limit as usize + 4]);
    b.client.send_raw(&bytes[..48]).await;
    if expect_reject_or_close(&mut b.client, Some(0x00))
        .await
        .is_some()
    {
        // A target that rejects instead of closing must skip the whole PDU.
        b.client.send_raw(&bytes[48..]).await;
        b.assert_alive().await;
    }
    // The 24-bit maximum, too.
    let mut c = login_ok(h.addr, 3).await;
    let mut bytes = c.nop_out_bytes(b"");
    bytes[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    c.client.send_raw(&bytes).await;
    assert!(
        expect_reject_or_close(&mut c.client, Some(0x00))
            .await
            .is_none(),
        "16 MiB segment not refused"
    );
    a.assert_alive().await;
    a.logout().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_opcode_gets_a_reject() {
    let h = start().await;
    let mut a = login_ok(h.addr, 1).await;
    let mut b = login_ok(h.addr, 2).await;
    // Vendor-specific 0x1c..0x1e, reserved 0x07..0x0f and 0x11..0x1b: none is implemented.
    for opcode in [0x1c_u8, 0x1e, 0x07, 0x0f, 0x11, 0x1b] {
        let mut bytes = b.nop_out_bytes(b"payload!");
        bytes[0] = 0x40 | opcode;
        b.client.send_raw(&bytes).await;
        let r = expect_reject_or_close(&mut b.client, Some(opcode)).await;
        let r = r.unwrap_or_else(|| {
            panic!("opcode {opcode:#04x}: the connection closed instead of a Reject")
        });
        assert_eq!(
            r.reason,
            RejectReason::CommandNotSupported,
            "opcode {opcode:#04x}"
        );
        assert_eq!(
            &r.header[..],
            &bytes[..48],
            "the Reject carries the whole rejected BHS"
        );
        // The connection carries on after a Reject.
        b.assert_alive().await;
    }
    a.assert_alive().await;
    b.logout().await;
    a.logout().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmd_sn_outside_the_window_is_not_executed() {
    let h = start().await;
    let mut a = login_ok(h.addr, 1).await;
    let mut b = login_ok(h.addr, 2).await;
    let done = b.run(&[0x00, 0, 0, 0, 0, 0], 0).await; // TEST UNIT READY
    assert_eq!(done.status, 0);
    let exp = done.exp_cmd_sn;
    assert_eq!(exp, b.cmd_sn);
    // RFC 7143 §4.2.2.1: a non-immediate command outside [ExpCmdSN, MaxCmdSN] is silently
    // ignored (libiscsi's iSCSI.CmdSN tests expect exactly that). A Reject or a close is
    // tolerated too; executing the command is not.
    for (name, cmd_sn) in [
        (
            "far beyond MaxCmdSN",
            SerialNumber(exp.0.wrapping_add(1000)),
        ),
        (
            "half the serial space away",
            SerialNumber(exp.0.wrapping_add(0x8000_0000)),
        ),
        ("already used", SerialNumber(exp.0.wrapping_sub(1))),
        ("long ago", SerialNumber(exp.0.wrapping_sub(5000))),
    ] {
        let cmd = b.scsi_command(&[0x12, 0, 0, 0, 96, 0], 96, cmd_sn);
        b.client.send(&Pdu::ScsiCommand(cmd)).await;
        match b.client.recv_within(QUIET).await {
            Recv::Silent => {}
            Recv::Closed => {
                panic!("{name}: closed (allowed by the brief, but we expect the RFC's silence)")
            }
            Recv::Pdu(Pdu::Reject(_)) => {}
            other => panic!("{name}: CmdSN {} was executed: {other:?}", cmd_sn.0),
        }
    }
    // The window did not move: the next in-window command runs and reports the same ExpCmdSN + 1.
    let done = b.run(&[0x00, 0, 0, 0, 0, 0], 0).await;
    assert_eq!(done.status, 0);
    assert_eq!(done.exp_cmd_sn, SerialNumber(exp.0.wrapping_add(1)));
    b.assert_alive().await;
    a.assert_alive().await;
    b.logout().await;
    a.logout().await;
    h.stop().await;
}

/// Resident set size of this process (the server runs in it), in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initiator_that_never_reads_cannot_make_the_target_buffer_without_bound() {
    let h = start().await;
    let mut a = login_ok(h.addr, 1).await;
    let mut b = login_ok(h.addr, 2).await;
    // 200 READ(10)s of the whole 1 MiB LUN (200 MiB of Data-In for 10 KiB sent), sent at once
    // and not read: the CmdSN window alone does not bound this, since it moves on as commands
    // are accepted, not as their data leaves.
    const READS: u32 = 200;
    let before = rss();
    let mut bytes = Vec::new();
    let mut itts = Vec::new();
    for _ in 0..READS {
        let cmd = b.scsi_command(&[0x28, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0], 1 << 20, b.cmd_sn);
        b.cmd_sn = SerialNumber(b.cmd_sn.0.wrapping_add(1));
        itts.push(cmd.itt);
        encode_pdu(&Pdu::ScsiCommand(cmd), &FrameLimits::default(), &mut bytes).unwrap();
    }
    b.client.send_raw(&bytes).await;
    let mut peak = before;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss());
    }
    let grown = peak.saturating_sub(before) >> 20;
    eprintln!("RSS grew by {grown} MiB");
    assert!(
        grown < 64,
        "the target buffered {grown} MiB for an initiator that does not read"
    );
    // Other sessions carry on meanwhile, and the reads all complete once b reads.
    a.assert_alive().await;
    for (itt, done) in b.completions(&itts).await {
        assert_eq!(
            (done.status, done.data.len()),
            (0, 1 << 20),
            "task {itt:#x}"
        );
    }
    b.assert_alive().await;
    b.logout().await;
    a.logout().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_waiting_for_data_are_bounded() {
    let h = start().await;
    let mut a = login_ok(h.addr, 1).await;
    let mut b = login_ok(h.addr, 2).await;
    // 200 WRITE(10)s of the whole LUN whose Data-Out never comes: each one would hold a 1 MiB
    // buffer until the session ends. Past the command window the target must refuse them
    // (TASK SET FULL or BUSY) instead of buffering without bound.
    const WRITES: usize = 200;
    let mut bytes = Vec::new();
    let mut itts = Vec::new();
    for _ in 0..WRITES {
        let mut cmd = b.scsi_command(&[0x2a, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0], 0, b.cmd_sn);
        cmd.write = true;
        cmd.expected_data_transfer_length = 1 << 20;
        b.cmd_sn = SerialNumber(b.cmd_sn.0.wrapping_add(1));
        itts.push(cmd.itt);
        encode_pdu(&Pdu::ScsiCommand(cmd), &FrameLimits::default(), &mut bytes).unwrap();
    }
    b.client.send_raw(&bytes).await;
    let (mut waiting, mut refused) = (0, 0);
    while waiting + refused < WRITES {
        match b.client.recv().await {
            Recv::Pdu(Pdu::R2t(r)) if itts.contains(&r.itt) => waiting += 1,
            Recv::Pdu(Pdu::ScsiResponse(r)) if itts.contains(&r.itt) => {
                assert!(
                    matches!(r.status, 0x08 | 0x28),
                    "task {:#x}: status {:#04x}",
                    r.itt,
                    r.status
                );
                b.exp_stat_sn = SerialNumber(r.stat_sn.0.wrapping_add(1));
                refused += 1;
            }
            other => panic!("expected an R2T or a refusal, got {other:?}"),
        }
    }
    eprintln!("{waiting} writes wait for data, {refused} refused");
    assert!(waiting <= 128, "{waiting} writes buffered");
    a.assert_alive().await;
    b.assert_alive().await;
    b.logout().await;
    a.logout().await;
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_makes_serve_return() {
    let h = start().await;
    // A logged-in session, a connection half-way through login and one that never spoke.
    let mut a = login_ok(h.addr, 1).await;
    a.assert_alive().await;
    let mut half = Client::connect(h.addr).await;
    half.send_raw(&login_request_bytes()[..30]).await;
    let mut silent = Client::connect(h.addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = h.addr;
    let started = std::time::Instant::now();
    h.stop().await;
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    a.client.expect_closed().await;
    half.expect_closed().await;
    silent.expect_closed().await;
    // Nobody listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_no_connections_returns_at_once() {
    let h = start().await;
    let started = std::time::Instant::now();
    h.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
