//! One iSCSI connection: framing, the login phase, then the full feature phase (RFC 7143).
//!
//! The reader side runs here: it frames PDUs off the socket ([`pxeroot_proto::frame`]), drives
//! the sans-IO login state machine, and in the full feature phase dispatches each PDU. SCSI
//! commands run on blocking threads (file I/O); their responses are numbered (StatSN) and queued
//! to a writer task under one lock, so the order on the wire is the StatSN order. A bad PDU gets
//! a Reject or closes this connection only: nothing on the wire can panic the server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pxeroot_proto::bhs::{BHS_LEN, RESERVED_TAG};
use pxeroot_proto::chap::{ChapAlgorithm, Random};
use pxeroot_proto::digest::{self, DigestKind};
use pxeroot_proto::frame::{encode, pdu_len, Frame, FrameLimits};
use pxeroot_proto::login::{LoginOutcome, LoginState, TargetConfig, TargetLogin};
use pxeroot_proto::negotiate::LocalParams;
use pxeroot_proto::pdu::{
    DataIn, DataOut, LogoutRequest, LogoutResponse, LogoutResponseCode, NopIn, NopOut, Pdu,
    PduRepr, R2t, Reject, RejectReason, ScsiCommand, ScsiResponse, TaskMgmtFunction,
    TaskMgmtRequest, TaskMgmtResponse, TaskMgmtResponseCode, TextRequest, TextResponse,
};
use pxeroot_proto::text::{Key, TextPairs};
use pxeroot_proto::{Lun as LunField, SerialNumber, WireError};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};
use tracing::{debug, info, warn};

use super::scsi::{sense, ItNexus, LunSet, ScsiResult, ScsiStatus, Sense, SenseKey};
use super::server::{Server, TPGT};

/// Commands the initiator may have outstanding (MaxCmdSN - ExpCmdSN + 1).
const CMD_WINDOW: u32 = 128;
/// The largest Expected Data Transfer Length we buffer for one write.
const MAX_WRITE_BUFFER: u32 = 64 << 20;
/// How long one login step may take.
const LOGIN_STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Response bytes a connection holds for its initiator before it stops reading new PDUs: 16
/// reads of 128 KiB in flight keep a loopback link full, and 16 sessions stay within 32 MiB.
const MAX_BACKLOG: usize = 2 << 20;
/// Buffer bytes all writes still waiting for Data-Out may hold on one connection. Like their
/// number (at most [`CMD_WINDOW`]), this is bounded: the window moves on as commands arrive, so
/// it does not bound them by itself.
const MAX_PENDING_WRITES: usize = 128 << 20;

/// Operating-system randomness for CHAP challenges and the initial StatSN.
struct OsRandom;

impl Random for OsRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, dest);
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Wire(#[from] WireError),
    #[error("login step timed out")]
    Timeout,
    #[error("{0}")]
    Protocol(&'static str),
}

/// What the reader got off the socket.
enum Received {
    Pdu(Pdu),
    /// A whole PDU that did not parse: its header and the reason.
    Bad([u8; BHS_LEN], WireError),
}

struct PduReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    start: usize,
}

impl PduReader {
    /// The next PDU; `Ok(None)` on a clean EOF between PDUs.
    async fn next(&mut self, limits: &FrameLimits) -> Result<Option<Received>, ConnError> {
        loop {
            let have = &self.buf[self.start..];
            let need = pdu_len(have, limits)?;
            if have.len() >= need && have.len() >= BHS_LEN {
                let frame = Frame::split(have, limits)?;
                let len = frame.len;
                let received = match frame.parse() {
                    Ok(pdu) => Received::Pdu(pdu),
                    Err(e) => {
                        let mut header = [0u8; BHS_LEN];
                        header.copy_from_slice(frame.bhs);
                        Received::Bad(header, e)
                    }
                };
                self.start += len;
                return Ok(Some(received));
            }
            if self.start > 0 && self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            } else if self.start > 0 && self.buf.capacity() - self.buf.len() < need - have.len() {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let want = need.max(64 * 1024);
            self.buf.reserve(want);
            let n = self.rd.read_buf(&mut self.buf).await?;
            if n == 0 {
                return if self.start == self.buf.len() {
                    Ok(None)
                } else {
                    Err(ConnError::Protocol(
                        "connection closed in the middle of a PDU",
                    ))
                };
            }
        }
    }
}

/// Serve one TCP connection until logout, error, reinstatement or shutdown.
pub async fn serve(
    server: Arc<Server>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let local = stream.local_addr().ok();
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut reader = PduReader {
        rd,
        buf: Vec::with_capacity(64 * 1024),
        start: 0,
    };
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    let mut stop = shutdown.clone();
    let logged_in = tokio::select! {
        r = login(&server, &mut reader, &mut wr, peer) => r,
        _ = stop.changed() => return,
    };
    let outcome = match logged_in {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return,
        Err(e) => {
            info!(%peer, error = %e, "connection closed during login");
            return;
        }
    };
    for w in &outcome.warnings {
        warn!(%peer, warning = %w, "login warning");
    }
    let initiator = outcome.session.initiator_name.clone().unwrap_or_default();
    let result = if outcome.session.discovery {
        info!(%peer, initiator, "discovery session");
        let (tx, writer) = spawn_writer(wr.into_inner());
        let mut conn = Conn::new(Arc::clone(&server), &outcome, peer, local, tx, None);
        let r = conn
            .run(&mut reader, shutdown, Arc::new(Notify::new()))
            .await;
        drop(conn);
        let _ = writer.await;
        r
    } else {
        let target_name = outcome.session.target_name.clone().unwrap_or_default();
        let Some(target) = server.target(&target_name).cloned() else {
            return;
        };
        info!(
            %peer,
            initiator,
            target = target_name,
            tsih = outcome.tsih,
            header_digest = ?outcome.conn.header_digest,
            data_digest = ?outcome.conn.data_digest,
            "session logged in"
        );
        let close = Arc::new(Notify::new());
        let id = server.register(&initiator, outcome.isid.0, &target_name, Arc::clone(&close));
        let (tx, writer) = spawn_writer(wr.into_inner());
        let mut conn = Conn::new(
            Arc::clone(&server),
            &outcome,
            peer,
            local,
            tx,
            Some(Arc::clone(&target.luns)),
        );
        let r = conn.run(&mut reader, shutdown, close).await;
        conn.finish().await;
        target.luns.nexus_lost(&conn.nexus);
        drop(conn);
        let _ = writer.await;
        server.unregister(&initiator, outcome.isid.0, &target_name, id);
        r
    };
    match result {
        Ok(()) => info!(%peer, initiator, "connection closed"),
        Err(e) => warn!(%peer, initiator, error = %e, "connection dropped"),
    }
}

/// The login phase. `Ok(None)`: the login failed and its final response was sent.
async fn login(
    server: &Arc<Server>,
    reader: &mut PduReader,
    wr: &mut BufWriter<OwnedWriteHalf>,
    peer: SocketAddr,
) -> Result<Option<LoginOutcome>, ConnError> {
    let mut rng = OsRandom;
    let mut sn = [0u8; 4];
    rng.fill_bytes(&mut sn);
    let mut login = TargetLogin::new(TargetConfig {
        params: LocalParams {
            header_digest: vec![DigestKind::Crc32c, DigestKind::None],
            data_digest: vec![DigestKind::Crc32c, DigestKind::None],
            max_recv_data_segment_length: 256 * 1024,
            max_burst_length: 1024 * 1024,
            first_burst_length: 256 * 1024,
            initial_r2t: false,
            immediate_data: true,
            ..LocalParams::default()
        },
        chap_algorithms: vec![
            ChapAlgorithm::Sha3_256,
            ChapAlgorithm::Sha256,
            ChapAlgorithm::Sha1,
            ChapAlgorithm::Md5,
        ],
        stat_sn: SerialNumber(u32::from_be_bytes(sn)),
        cmd_window: CMD_WINDOW,
        policy: Box::new(server.policy(peer.ip())),
    });
    let limits = FrameLimits::default();
    let mut out = Vec::new();
    loop {
        let received = match tokio::time::timeout(LOGIN_STEP_TIMEOUT, reader.next(&limits)).await {
            Err(_) => return Err(ConnError::Timeout),
            Ok(r) => r?,
        };
        let pdu = match received {
            None => return Ok(None),
            Some(Received::Pdu(pdu)) => pdu,
            Some(Received::Bad(_, e)) => return Err(ConnError::Wire(e)),
        };
        let result = login.handle_pdu(&pdu, &mut rng);
        while let Some(resp) = login.poll_transmit() {
            out.clear();
            encode(&resp, &limits, &mut out)?;
            wr.write_all(&out).await?;
        }
        wr.flush().await?;
        if let Err(e) = result {
            info!(%peer, status = ?e.status(), reason = %e, "login refused");
            return Ok(None);
        }
        if login.state() == LoginState::FullFeature {
            return Ok(login.outcome().cloned());
        }
    }
}

/// Bytes held for the initiator: Data-In reserved by running commands plus PDUs queued for the
/// socket. The CmdSN window moves on as commands are accepted, not as their responses leave,
/// so without this an initiator that sends READs and never reads the answers would make the
/// target buffer without bound. Above [`MAX_BACKLOG`] the reader stops taking new PDUs, which
/// pushes back through TCP.
#[derive(Debug, Default)]
struct Backlog {
    bytes: AtomicUsize,
    /// Woken when `bytes` falls below [`MAX_BACKLOG`] or the writer stops.
    drained: Notify,
    /// The writer stopped: nothing will drain any more, so never hold the reader.
    closed: AtomicBool,
}

impl Backlog {
    fn add(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::AcqRel);
    }

    fn sub(&self, n: usize) {
        let sub = |b: usize| Some(b.saturating_sub(n));
        let before = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, sub)
            .unwrap_or_else(|b| b);
        if before >= MAX_BACKLOG && before.saturating_sub(n) < MAX_BACKLOG {
            self.drained.notify_one();
        }
    }

    fn full(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && self.bytes.load(Ordering::Acquire) >= MAX_BACKLOG
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.drained.notify_one();
    }
}

/// Bytes of a [`Backlog`] held until dropped.
struct Reservation(Arc<Backlog>, usize);

impl Reservation {
    fn new(backlog: &Arc<Backlog>, n: usize) -> Reservation {
        backlog.add(n);
        Reservation(Arc::clone(backlog), n)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.sub(self.1);
    }
}

/// One PDU on its way to the socket: its encoded bytes, or for a Data-In its header, a slice of
/// the command's own buffer and the padding and digest after it, so that read data is copied
/// only by the kernel, straight from the buffer the file was read into.
#[derive(Debug)]
struct Out {
    head: Vec<u8>,
    body: Option<(Arc<Vec<u8>>, std::ops::Range<usize>)>,
    tail: ([u8; 7], usize),
}

impl Out {
    fn bytes(head: Vec<u8>) -> Out {
        Out {
            head,
            body: None,
            tail: ([0; 7], 0),
        }
    }

    fn len(&self) -> usize {
        self.head.len() + self.body.as_ref().map_or(0, |(_, r)| r.len()) + self.tail.1
    }

    /// The parts to write, in order.
    fn slices(&self) -> [&[u8]; 3] {
        let body = self
            .body
            .as_ref()
            .and_then(|(buf, r)| buf.get(r.clone()))
            .unwrap_or_default();
        [&self.head, body, &self.tail.0[..self.tail.1]]
    }
}

/// The PDUs one response consists of, queued together, encoded with the connection's limits.
#[derive(Debug)]
struct Batch {
    limits: FrameLimits,
    pdus: Vec<Out>,
}

impl Batch {
    /// Encode a PDU into the batch.
    fn pdu<P: PduRepr>(&mut self, pdu: &P) -> Result<(), WireError> {
        let mut bytes = Vec::new();
        encode(pdu, &self.limits, &mut bytes)?;
        self.pdus.push(Out::bytes(bytes));
        Ok(())
    }
}

/// The writer task's queue.
#[derive(Debug, Clone)]
struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    backlog: Arc<Backlog>,
}

impl Outbox {
    fn push(&self, out: Out) {
        let n = out.len();
        self.backlog.add(n);
        if self.tx.send(out).is_err() {
            self.backlog.sub(n);
        }
    }
}

/// Most PDUs gathered into one `writev`.
const WRITE_BATCH: usize = 64;

/// The writer task: gathers queued PDUs and writes them with vectored writes.
fn spawn_writer(mut wr: OwnedWriteHalf) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let backlog = Arc::new(Backlog::default());
    let drained = Arc::clone(&backlog);
    let handle = tokio::spawn(async move {
        let write = async {
            let mut batch: Vec<Out> = Vec::with_capacity(WRITE_BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(out) => batch.push(out),
                        Err(_) => break,
                    }
                }
                let total: usize = batch.iter().map(Out::len).sum();
                let mut slices: Vec<std::io::IoSlice<'_>> = batch
                    .iter()
                    .flat_map(|o| o.slices())
                    .filter(|s| !s.is_empty())
                    .map(std::io::IoSlice::new)
                    .collect();
                let mut rest = &mut slices[..];
                while !rest.is_empty() {
                    let n = wr.write_vectored(rest).await?;
                    if n == 0 {
                        return Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
                    }
                    std::io::IoSlice::advance_slices(&mut rest, n);
                }
                drop(slices);
                batch.clear();
                drained.sub(total);
            }
            wr.shutdown().await
        };
        let _: std::io::Result<()> = write.await;
        drained.close();
    });
    (Outbox { tx, backlog }, handle)
}

/// Sequence numbers shared by the reader and the command threads.
#[derive(Debug)]
struct Numbers {
    stat_sn: SerialNumber,
    exp_cmd_sn: SerialNumber,
    /// Tasks whose response must not be sent (aborted).
    aborted: Vec<u32>,
    /// Tasks executing now, by ITT, with their LUN.
    running: HashMap<u32, u64>,
}

/// The sending half: numbering and queueing of responses.
#[derive(Debug, Clone)]
struct Sender {
    numbers: Arc<Mutex<Numbers>>,
    tx: Outbox,
    limits: FrameLimits,
}

impl Sender {
    fn lock(&self) -> MutexGuard<'_, Numbers> {
        self.numbers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// ExpCmdSN and MaxCmdSN to advertise.
    fn window(n: &Numbers) -> (SerialNumber, SerialNumber) {
        (
            n.exp_cmd_sn,
            SerialNumber(n.exp_cmd_sn.0.wrapping_add(CMD_WINDOW - 1)),
        )
    }

    /// Queue PDUs built by `build` from (StatSN to use, ExpCmdSN, MaxCmdSN); `build` returns
    /// how many StatSNs it consumed. Runs under the lock, so the wire order is StatSN order.
    fn send_with(
        &self,
        build: impl FnOnce(
            SerialNumber,
            SerialNumber,
            SerialNumber,
            &mut Batch,
        ) -> Result<u32, WireError>,
    ) {
        let mut n = self.lock();
        let (exp, max) = Self::window(&n);
        let mut out = Batch {
            limits: self.limits,
            pdus: Vec::new(),
        };
        match build(n.stat_sn, exp, max, &mut out) {
            Ok(used) => {
                n.stat_sn = SerialNumber(n.stat_sn.0.wrapping_add(used));
                for pdu in out.pdus {
                    self.tx.push(pdu);
                }
            }
            Err(e) => warn!(error = %e, "cannot encode a response"),
        }
    }
}

/// A write waiting for its Data-Out.
#[derive(Debug)]
struct WriteTask {
    lun: u64,
    lun_field: LunField,
    cdb: [u8; 16],
    edtl: u32,
    /// Data-Out the (possibly shortened) CDB consumes.
    needed: u32,
    /// Data-Out the CDB as sent asked for, for the residual.
    spdtl: u32,
    buf: Vec<u8>,
    received: u32,
    /// Next offset to solicit with an R2T.
    next_r2t: u32,
    r2t_sn: u32,
    /// Outstanding R2Ts: TTT and the DataSN expected next in its sequence.
    outstanding: Vec<(u32, u32)>,
    /// DataSN expected next in the unsolicited sequence.
    unsolicited_sn: u32,
}

/// Pending SendTargets response chunks by TTT.
type TextContinuation = (u32, Vec<Vec<u8>>);

struct Conn {
    server: Arc<Server>,
    luns: Option<Arc<LunSet>>,
    nexus: ItNexus,
    initiator: String,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    rx_limits: FrameLimits,
    send: Sender,
    first_burst: u32,
    max_burst: u32,
    initial_r2t: bool,
    immediate_data: bool,
    max_r2t: u32,
    writes: HashMap<u32, WriteTask>,
    next_ttt: u32,
    text: Option<TextContinuation>,
    jobs: tokio::task::JoinSet<()>,
}

impl Conn {
    fn new(
        server: Arc<Server>,
        o: &LoginOutcome,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        tx: Outbox,
        luns: Option<Arc<LunSet>>,
    ) -> Conn {
        let initiator = o.session.initiator_name.clone().unwrap_or_default();
        let isid: String = o.isid.0.iter().map(|b| format!("{b:02x}")).collect();
        let tx_limits = FrameLimits {
            header_digest: o.conn.header_digest,
            data_digest: o.conn.data_digest,
            max_data_segment_len: o.conn.max_send_data_segment_length,
        };
        Conn {
            server,
            luns,
            nexus: ItNexus::new(&format!("{initiator},i,0x{isid}"), TPGT),
            initiator,
            peer,
            local,
            rx_limits: FrameLimits::from(&o.conn),
            send: Sender {
                numbers: Arc::new(Mutex::new(Numbers {
                    stat_sn: o.exp_stat_sn,
                    exp_cmd_sn: o.cmd_sn,
                    aborted: Vec::new(),
                    running: HashMap::new(),
                })),
                tx,
                limits: tx_limits,
            },
            first_burst: o.session.first_burst_length,
            max_burst: o.session.max_burst_length.max(512),
            initial_r2t: o.session.initial_r2t,
            immediate_data: o.session.immediate_data,
            max_r2t: o.session.max_outstanding_r2t.max(1),
            writes: HashMap::new(),
            next_ttt: 1,
            text: None,
            jobs: tokio::task::JoinSet::new(),
        }
    }

    /// Wait for running commands (their responses are still sent).
    async fn finish(&mut self) {
        while self.jobs.join_next().await.is_some() {}
    }

    async fn run(
        &mut self,
        reader: &mut PduReader,
        mut shutdown: watch::Receiver<bool>,
        close: Arc<Notify>,
    ) -> Result<(), ConnError> {
        let mut idle_pings = 0u32;
        let backlog = Arc::clone(&self.send.tx.backlog);
        loop {
            let nop = self
                .server
                .nop_interval
                .unwrap_or(Duration::from_secs(3600));
            let received = tokio::select! {
                r = reader.next(&self.rx_limits), if !backlog.full() => r?,
                () = backlog.drained.notified(), if backlog.full() => continue,
                _ = shutdown.changed() => {
                    info!(peer = %self.peer, "shutting down: closing connection");
                    return Ok(());
                }
                () = close.notified() => return Err(ConnError::Protocol("reinstated by a new login with the same ISID")),
                Some(_) = self.jobs.join_next(), if !self.jobs.is_empty() => continue,
                () = tokio::time::sleep(nop), if self.server.nop_interval.is_some() => {
                    idle_pings += 1;
                    if idle_pings > 2 {
                        return Err(ConnError::Protocol("initiator stopped answering NOP-In pings"));
                    }
                    self.ping();
                    continue;
                }
            };
            idle_pings = 0;
            match received {
                None => return Ok(()),
                Some(Received::Bad(header, e)) => {
                    debug!(peer = %self.peer, error = %e, "bad PDU");
                    let reason = match e {
                        WireError::UnknownOpcode(_) => RejectReason::CommandNotSupported,
                        _ => RejectReason::InvalidPduField,
                    };
                    self.reject(reason, &header);
                }
                Some(Received::Pdu(pdu)) => {
                    if self.dispatch(pdu)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Handle one PDU; `Ok(true)` ends the connection (logout).
    fn dispatch(&mut self, pdu: Pdu) -> Result<bool, ConnError> {
        match pdu {
            Pdu::ScsiCommand(cmd) => self.command(cmd),
            Pdu::DataOut(d) => self.data_out(d)?,
            Pdu::NopOut(n) => self.nop_out(n),
            Pdu::TaskMgmtRequest(t) => self.task_mgmt(&t),
            Pdu::TextRequest(t) => self.text(t),
            Pdu::LogoutRequest(l) => {
                self.logout(&l);
                return Ok(true);
            }
            Pdu::SnackRequest(_) => self.reject_pdu(RejectReason::SnackReject, &pdu),
            Pdu::LoginRequest(_) => self.reject_pdu(RejectReason::ProtocolError, &pdu),
            other => self.reject_pdu(RejectReason::ProtocolError, &other),
        }
        Ok(false)
    }

    fn reject_pdu(&self, reason: RejectReason, pdu: &Pdu) {
        let mut header = [0u8; BHS_LEN];
        if pdu.emit_header(&mut header).is_ok() {
            self.reject(reason, &header);
        }
    }

    fn reject(&self, reason: RejectReason, header: &[u8; BHS_LEN]) {
        self.send.send_with(|stat_sn, exp, max, out| {
            let r = Reject {
                reason,
                stat_sn,
                exp_cmd_sn: exp,
                max_cmd_sn: max,
                data_sn: SerialNumber(0),
                header: header.to_vec(),
            };
            out.pdu(&r)?;
            Ok(1)
        });
    }

    /// CmdSN bookkeeping; `false` when the command is outside the window and must be ignored.
    fn accept_cmd_sn(&self, cmd_sn: SerialNumber, immediate: bool) -> bool {
        let mut n = self.send.lock();
        if immediate {
            return true;
        }
        let (exp, max) = Sender::window(&n);
        if cmd_sn.lt(exp) || cmd_sn.gt(max) {
            debug!(
                cmd_sn = cmd_sn.0,
                exp = exp.0,
                max = max.0,
                "CmdSN outside the window: ignored"
            );
            return false;
        }
        n.exp_cmd_sn = SerialNumber(cmd_sn.0.wrapping_add(1));
        true
    }

    fn command(&mut self, cmd: ScsiCommand) {
        if !self.accept_cmd_sn(cmd.cmd_sn, cmd.immediate) {
            return;
        }
        let Some(luns) = self.luns.clone() else {
            // A discovery session carries no SCSI commands.
            self.reject_pdu(RejectReason::ProtocolError, &Pdu::ScsiCommand(cmd));
            return;
        };
        let lun = LunSet::decode_lun(cmd.lun.0).unwrap_or(u64::MAX);
        let transfer = luns.transfer(lun, &cmd.cdb);
        let edtl = cmd.expected_data_transfer_length;
        let spdtl = transfer.data_out;
        let mut cdb = cmd.cdb;
        let mut needed = spdtl;
        if transfer.exact && edtl != spdtl {
            // COMPARE AND WRITE and WRITE SAME take exactly the data their CDB describes.
            let result = ScsiResult::check(sense::INVALID_FIELD_IN_CDB);
            respond(&self.send, cmd.lun, cmd.itt, edtl, spdtl, result);
            return;
        }
        if spdtl > edtl {
            // The CDB asks for more data than the initiator sends (residual overflow, RFC 7143
            // §11.4.5.1). As FCP-4 says, process the command normally except that data beyond
            // the EDTL is not transferred: a write covers the whole blocks the EDTL carries.
            let blocks = edtl / 512;
            if !shorten_write(&mut cdb, blocks) {
                let result = ScsiResult::check(INVALID_FIELD_IN_IU);
                respond(&self.send, cmd.lun, cmd.itt, edtl, spdtl, result);
                return;
            }
            needed = blocks * 512;
        }
        if !cmd.write || edtl == 0 {
            let write_len = (spdtl > 0).then_some(spdtl);
            self.execute(lun, cmd.lun, cmd.itt, cdb, edtl, write_len, Vec::new());
            return;
        }
        if edtl > MAX_WRITE_BUFFER {
            respond(
                &self.send,
                cmd.lun,
                cmd.itt,
                edtl,
                0,
                ScsiResult::check(sense::INVALID_FIELD_IN_CDB),
            );
            return;
        }
        let imm = if self.immediate_data {
            cmd.data.len().min(edtl as usize)
        } else {
            0
        };
        let pending: usize = self.writes.values().map(|w| w.buf.len()).sum();
        if imm < edtl as usize
            && (self.writes.len() >= CMD_WINDOW as usize
                || pending + edtl as usize > MAX_PENDING_WRITES)
        {
            // Too many writes wait for their data: TASK SET FULL (SAM-5 §5.3), retried later.
            let full = ScsiResult {
                status: ScsiStatus::TaskSetFull,
                data_in: Vec::new(),
                sense: None,
            };
            respond(&self.send, cmd.lun, cmd.itt, edtl, 0, full);
            return;
        }
        let buf = if imm == edtl as usize {
            // Immediate data carries the whole transfer: it is the buffer.
            let mut data = cmd.data;
            data.truncate(imm);
            data
        } else {
            let mut buf = vec![0u8; edtl as usize];
            buf[..imm].copy_from_slice(&cmd.data[..imm]);
            buf
        };
        let unsolicited_end = if self.initial_r2t {
            imm as u32
        } else {
            self.first_burst.min(edtl).max(imm as u32)
        };
        let mut task = WriteTask {
            lun,
            lun_field: cmd.lun,
            cdb,
            edtl,
            needed,
            spdtl,
            buf,
            received: imm as u32,
            next_r2t: unsolicited_end,
            r2t_sn: 0,
            outstanding: Vec::new(),
            unsolicited_sn: 0,
        };
        if task.received >= edtl {
            self.complete_write(cmd.itt, task);
            return;
        }
        self.issue_r2ts(cmd.itt, &mut task);
        self.writes.insert(cmd.itt, task);
    }

    /// Solicit more data while R2Ts may be outstanding and data remains.
    fn issue_r2ts(&mut self, itt: u32, task: &mut WriteTask) {
        while task.next_r2t < task.edtl && (task.outstanding.len() as u32) < self.max_r2t {
            let offset = task.next_r2t;
            let len = (task.edtl - offset).min(self.max_burst);
            let ttt = self.next_ttt;
            self.next_ttt = self.next_ttt.wrapping_add(1).max(1);
            if self.next_ttt == RESERVED_TAG {
                self.next_ttt = 1;
            }
            task.outstanding.push((ttt, 0));
            task.next_r2t += len;
            let r2t_sn = SerialNumber(task.r2t_sn);
            task.r2t_sn += 1;
            let lun = task.lun_field;
            // An R2T carries the current StatSN but does not consume one.
            self.send.send_with(|stat_sn, exp, max, out| {
                let r = R2t {
                    lun,
                    itt,
                    ttt,
                    stat_sn,
                    exp_cmd_sn: exp,
                    max_cmd_sn: max,
                    r2t_sn,
                    buffer_offset: offset,
                    desired_data_transfer_length: len,
                };
                out.pdu(&r)?;
                Ok(0)
            });
        }
    }

    fn data_out(&mut self, d: DataOut) -> Result<(), ConnError> {
        let Some(mut task) = self.writes.remove(&d.itt) else {
            // Data for a task we no longer track (aborted or rejected): drop it.
            debug!(itt = d.itt, "Data-Out for an unknown task dropped");
            return Ok(());
        };
        // DataSN runs from 0 within each sequence (unsolicited, or one per R2T). A gap, an
        // unknown Target Transfer Tag or data past the EDTL cannot be recovered at ERL 0: the
        // task fails with CHECK CONDITION (nothing is written) and the session carries on;
        // later Data-Out for it is dropped as data for an unknown task.
        let expected = if d.ttt == RESERVED_TAG {
            Some(&mut task.unsolicited_sn)
        } else {
            task.outstanding
                .iter_mut()
                .find(|(t, _)| *t == d.ttt)
                .map(|(_, sn)| sn)
        };
        let failure = match expected {
            Some(sn) if *sn == d.data_sn.0 => {
                *sn += 1;
                None
            }
            Some(_) => Some(("DataSN out of sequence", DATA_PHASE_ERROR)),
            None => Some(("unknown Target Transfer Tag", INVALID_TTT)),
        };
        let start = d.buffer_offset as usize;
        let end = start + d.data.len();
        let failure = failure.or_else(|| {
            task.buf.get(start..end).is_none().then_some((
                "data past the Expected Data Transfer Length",
                TOO_MUCH_WRITE_DATA,
            ))
        });
        if let Some((why, sense)) = failure {
            debug!(peer = %self.peer, itt = d.itt, why, "Data-Out refused: the task fails");
            respond(
                &self.send,
                task.lun_field,
                d.itt,
                task.edtl,
                task.spdtl,
                ScsiResult::check(sense),
            );
            return Ok(());
        }
        let Some(dest) = task.buf.get_mut(start..end) else {
            return Ok(());
        };
        dest.copy_from_slice(&d.data);
        task.received = task.received.saturating_add(d.data.len() as u32);
        if d.fin && d.ttt != RESERVED_TAG {
            task.outstanding.retain(|(t, _)| *t != d.ttt);
        }
        if task.received >= task.edtl {
            self.complete_write(d.itt, task);
        } else {
            if d.fin {
                self.issue_r2ts(d.itt, &mut task);
            }
            self.writes.insert(d.itt, task);
        }
        Ok(())
    }

    fn complete_write(&mut self, itt: u32, task: WriteTask) {
        // `command` refused EDTL < needed; extra data beyond what the CDB needs is dropped and
        // reported as underflow.
        let mut buf = task.buf;
        buf.truncate(task.needed as usize);
        self.execute(
            task.lun,
            task.lun_field,
            itt,
            task.cdb,
            task.edtl,
            Some(task.spdtl),
            buf,
        );
    }

    /// Run a command on a blocking thread and send its Data-In and status. `write_len` is the
    /// Data-Out the CDB consumed, for writes.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &mut self,
        lun: u64,
        lun_field: LunField,
        itt: u32,
        cdb: [u8; 16],
        edtl: u32,
        write_len: Option<u32>,
        data_out: Vec<u8>,
    ) {
        let Some(luns) = self.luns.clone() else {
            return;
        };
        if write_len.is_some() && cached_write(&luns, lun, &cdb, data_out.len()) {
            // A small write into the page cache returns in microseconds: handing it to a
            // blocking thread would cost more than doing it here.
            let result = luns.execute(&self.nexus, lun, &cdb, &data_out);
            let spdtl = write_len.unwrap_or(0);
            respond(&self.send, lun_field, itt, edtl, spdtl, result);
            return;
        }
        let nexus = self.nexus.clone();
        let send = self.send.clone();
        send.lock().running.insert(itt, lun);
        // The Data-In a read may return counts against the backlog from now until it is queued.
        let reserved = Reservation::new(
            &send.tx.backlog,
            if write_len.is_none() {
                edtl as usize
            } else {
                0
            },
        );
        self.jobs.spawn_blocking(move || {
            let _reserved = reserved;
            let result = luns.execute(&nexus, lun, &cdb, &data_out);
            {
                let mut n = send.lock();
                n.running.remove(&itt);
                if let Some(pos) = n.aborted.iter().position(|t| *t == itt) {
                    n.aborted.swap_remove(pos);
                    return;
                }
            }
            let spdtl = write_len.unwrap_or(result.data_in.len() as u32);
            respond(&send, lun_field, itt, edtl, spdtl, result);
        });
    }

    fn nop_out(&mut self, n: NopOut) {
        if !self.accept_cmd_sn(n.cmd_sn, n.immediate) || n.itt == RESERVED_TAG {
            // A reply to our ping: nothing to answer.
            return;
        }
        // The echo is limited to the initiator's MaxRecvDataSegmentLength (RFC 7143 §11.18.6);
        // its ping may be as long as ours, which is larger.
        let mut data = n.data;
        data.truncate(self.send.limits.max_data_segment_len as usize);
        self.send.send_with(|stat_sn, exp, max, out| {
            let r = NopIn {
                lun: n.lun,
                itt: n.itt,
                ttt: RESERVED_TAG,
                stat_sn,
                exp_cmd_sn: exp,
                max_cmd_sn: max,
                data,
            };
            out.pdu(&r)?;
            Ok(1)
        });
    }

    fn ping(&mut self) {
        let ttt = self.next_ttt;
        self.next_ttt = self.next_ttt.wrapping_add(1).max(1);
        self.send.send_with(|stat_sn, exp, max, out| {
            let r = NopIn {
                lun: LunField::ZERO,
                itt: RESERVED_TAG,
                ttt,
                stat_sn,
                exp_cmd_sn: exp,
                max_cmd_sn: max,
                data: Vec::new(),
            };
            out.pdu(&r)?;
            Ok(0)
        });
    }

    fn task_mgmt(&mut self, t: &TaskMgmtRequest) {
        if !self.accept_cmd_sn(t.cmd_sn, t.immediate) {
            return;
        }
        let lun = LunSet::decode_lun(t.lun.0);
        let response = match t.function {
            TaskMgmtFunction::AbortTask => {
                let in_writes = self.writes.remove(&t.referenced_task_tag).is_some();
                let mut n = self.send.lock();
                let running = n.running.contains_key(&t.referenced_task_tag);
                if running {
                    n.aborted.push(t.referenced_task_tag);
                }
                if in_writes || running {
                    TaskMgmtResponseCode::FunctionComplete
                } else {
                    TaskMgmtResponseCode::TaskDoesNotExist
                }
            }
            TaskMgmtFunction::AbortTaskSet
            | TaskMgmtFunction::ClearTaskSet
            | TaskMgmtFunction::LogicalUnitReset => {
                let Some(lun) =
                    lun.filter(|l| self.luns.as_ref().is_some_and(|s| s.get(*l).is_some()))
                else {
                    return self.tmf_response(t.itt, TaskMgmtResponseCode::LunDoesNotExist);
                };
                self.abort_lun(Some(lun));
                if t.function == TaskMgmtFunction::LogicalUnitReset {
                    if let Some(luns) = &self.luns {
                        luns.reset(lun, Some(&self.nexus));
                    }
                }
                TaskMgmtResponseCode::FunctionComplete
            }
            TaskMgmtFunction::TargetWarmReset | TaskMgmtFunction::TargetColdReset => {
                self.abort_lun(None);
                if let Some(luns) = &self.luns {
                    luns.reset_all(Some(&self.nexus));
                }
                TaskMgmtResponseCode::FunctionComplete
            }
            TaskMgmtFunction::TaskReassign => TaskMgmtResponseCode::ReassignmentNotSupported,
            _ => TaskMgmtResponseCode::NotSupported,
        };
        self.tmf_response(t.itt, response);
    }

    /// Abort every task of `lun` (or of every LUN): pending writes are dropped, running
    /// commands finish but their responses are not sent.
    fn abort_lun(&mut self, lun: Option<u64>) {
        self.writes.retain(|_, w| lun.is_some_and(|l| l != w.lun));
        let mut n = self.send.lock();
        let victims: Vec<u32> = n
            .running
            .iter()
            .filter(|(_, l)| lun.is_none_or(|x| x == **l))
            .map(|(itt, _)| *itt)
            .collect();
        n.aborted.extend(victims);
    }

    fn tmf_response(&self, itt: u32, response: TaskMgmtResponseCode) {
        self.send.send_with(|stat_sn, exp, max, out| {
            out.pdu(&TaskMgmtResponse {
                response,
                itt,
                stat_sn,
                exp_cmd_sn: exp,
                max_cmd_sn: max,
            })?;
            Ok(1)
        });
    }

    fn logout(&mut self, l: &LogoutRequest) {
        self.accept_cmd_sn(l.cmd_sn, l.immediate);
        self.send.send_with(|stat_sn, exp, max, out| {
            let r = LogoutResponse {
                response: LogoutResponseCode::Closed,
                itt: l.itt,
                stat_sn,
                exp_cmd_sn: exp,
                max_cmd_sn: max,
                time2wait: 0,
                time2retain: 0,
            };
            out.pdu(&r)?;
            Ok(1)
        });
    }

    fn text(&mut self, t: TextRequest) {
        if !self.accept_cmd_sn(t.cmd_sn, t.immediate) {
            return;
        }
        // A continuation of an earlier long response.
        if t.ttt != RESERVED_TAG {
            match self.text.take() {
                Some((ttt, chunks)) if ttt == t.ttt => {
                    return self.text_chunks(t.itt, t.lun, chunks)
                }
                _ => return self.reject_pdu(RejectReason::InvalidPduField, &Pdu::TextRequest(t)),
            }
        }
        let mut reply = TextPairs::new();
        match TextPairs::parse(&t.data) {
            Err(_) => return self.reject_pdu(RejectReason::ProtocolError, &Pdu::TextRequest(t)),
            Ok(pairs) => {
                for (key, value) in pairs.iter() {
                    match key {
                        Key::SendTargets => self.send_targets(value, &mut reply),
                        other => reply.push(other.clone(), pxeroot_proto::text::NOT_UNDERSTOOD),
                    }
                }
            }
        }
        let bytes = reply.to_bytes().unwrap_or_default();
        let max = self.send.limits.max_data_segment_len.max(512) as usize;
        let chunks: Vec<Vec<u8>> = if bytes.is_empty() {
            vec![Vec::new()]
        } else {
            bytes.chunks(max).map(<[u8]>::to_vec).collect()
        };
        self.text_chunks(t.itt, t.lun, chunks);
    }

    fn text_chunks(&mut self, itt: u32, lun: LunField, mut chunks: Vec<Vec<u8>>) {
        let data = if chunks.is_empty() {
            Vec::new()
        } else {
            chunks.remove(0)
        };
        let more = !chunks.is_empty();
        let ttt = if more {
            let ttt = self.next_ttt;
            self.next_ttt = self.next_ttt.wrapping_add(1).max(1);
            self.text = Some((ttt, chunks));
            ttt
        } else {
            RESERVED_TAG
        };
        self.send.send_with(|stat_sn, exp, max, out| {
            let r = TextResponse {
                fin: !more,
                cont: more,
                lun,
                itt,
                ttt,
                stat_sn,
                exp_cmd_sn: exp,
                max_cmd_sn: max,
                data,
            };
            out.pdu(&r)?;
            Ok(1)
        });
    }

    /// SendTargets=All (discovery) or =<name> / empty (this session's target).
    fn send_targets(&self, value: &str, reply: &mut TextPairs) {
        let Some(local) = self.local else { return };
        let address = match local {
            SocketAddr::V4(a) => format!("{}:{},{TPGT}", a.ip(), a.port()),
            SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                Some(v4) => format!("{v4}:{},{TPGT}", a.port()),
                None => format!("[{}]:{},{TPGT}", a.ip(), a.port()),
            },
        };
        for target in self.server.visible_targets(&self.initiator, self.peer.ip()) {
            let name = &target.config.name;
            if value == "All" || value.eq_ignore_ascii_case(name) {
                reply.push(Key::TargetName, name.clone());
                reply.push(Key::TargetAddress, address.clone());
            }
        }
    }
}

/// Writes up to this size may run on the connection's task (see [`cached_write`]).
const INLINE_WRITE_MAX: usize = 64 * 1024;

/// Whether a command is a small WRITE (6/10/12/16) that lands in the page cache without waiting
/// for the disk: no FUA, and the LUN's write cache on (write-through LUNs sync every write).
fn cached_write(luns: &LunSet, lun: u64, cdb: &[u8; 16], len: usize) -> bool {
    let plain_write = match cdb[0] {
        0x0a => true,
        0x2a | 0xaa | 0x8a => cdb[1] & 0x08 == 0,
        _ => false,
    };
    plain_write && len <= INLINE_WRITE_MAX && luns.get(lun).is_some_and(|l| l.write_cache_enabled())
}

/// Lower the transfer length of a WRITE or WRITE AND VERIFY (10/12/16) CDB to `blocks`;
/// `false` for other commands.
fn shorten_write(cdb: &mut [u8; 16], blocks: u32) -> bool {
    let field = match cdb[0] {
        0x2a | 0x2e => 7..9,
        0xaa | 0xae => 6..10,
        0x8a | 0x8e => 10..14,
        _ => return false,
    };
    // `blocks` is below the CDB's own transfer length, so it fits the field.
    let bytes = blocks.to_be_bytes();
    let width = field.len();
    cdb[field].copy_from_slice(&bytes[4 - width..]);
    true
}

/// ABORTED COMMAND, DATA PHASE ERROR: a Data-Out sequence with a DataSN gap.
const DATA_PHASE_ERROR: Sense = Sense::new(SenseKey::AbortedCommand, 0x4b, 0x00);
/// ABORTED COMMAND, INVALID TARGET PORT TRANSFER TAG RECEIVED.
const INVALID_TTT: Sense = Sense::new(SenseKey::AbortedCommand, 0x4b, 0x01);
/// ABORTED COMMAND, TOO MUCH WRITE DATA.
const TOO_MUCH_WRITE_DATA: Sense = Sense::new(SenseKey::AbortedCommand, 0x4b, 0x02);

/// ILLEGAL REQUEST, INVALID FIELD IN INFORMATION UNIT: the iSCSI-level transfer length does
/// not cover what the CDB asks for.
const INVALID_FIELD_IN_IU: Sense = Sense::new(SenseKey::IllegalRequest, 0x0e, 0x03);

/// Send a command's Data-In and status: GOOD with data goes in the last Data-In (S bit);
/// anything else in a SCSI Response. The residual compares the SCSI payload the command moved
/// (`spdtl`: Data-In produced, or Data-Out consumed) with the Expected Data Transfer Length.
/// A Data-In whose payload is `buf[range]` (the PDU's own `data` is empty): the header is
/// encoded, the payload stays in the command's buffer until the writer hands it to the kernel.
fn data_in_out(
    pdu: &DataIn,
    buf: &Arc<Vec<u8>>,
    range: std::ops::Range<usize>,
    limits: &FrameLimits,
) -> Result<Out, WireError> {
    let data = buf.get(range.clone()).ok_or(WireError::Truncated {
        need: range.end,
        have: buf.len(),
    })?;
    let mut header = [0u8; BHS_LEN];
    pdu.emit_header(&mut header)?;
    let len = u32::try_from(data.len()).map_err(|_| WireError::BadDataSegmentLen(u32::MAX))?;
    if len > pxeroot_proto::bhs::MAX_DATA_SEGMENT_LEN {
        return Err(WireError::BadDataSegmentLen(len));
    }
    // DataSegmentLength: bytes 5..8 of the BHS (RFC 7143 §11.2.1).
    header[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
    let mut head = Vec::with_capacity(BHS_LEN + 4);
    head.extend_from_slice(&header);
    if limits.header_digest == DigestKind::Crc32c {
        head.extend_from_slice(&digest::header_digest(&header, &[]));
    }
    let pad = pxeroot_proto::bhs::pad_len(data.len());
    let mut tail = ([0u8; 7], pad);
    if limits.data_digest == DigestKind::Crc32c && !data.is_empty() {
        tail.0[pad..pad + 4].copy_from_slice(&digest::data_digest_padded(data));
        tail.1 = pad + 4;
    }
    Ok(Out {
        head,
        body: Some((Arc::clone(buf), range)),
        tail,
    })
}

fn respond(send: &Sender, lun: LunField, itt: u32, edtl: u32, spdtl: u32, result: ScsiResult) {
    let (overflow, underflow, residual) = match spdtl.cmp(&edtl) {
        std::cmp::Ordering::Greater => (true, false, spdtl - edtl),
        std::cmp::Ordering::Less => (false, true, edtl - spdtl),
        std::cmp::Ordering::Equal => (false, false, 0),
    };
    let produced = result.data_in.len() as u32;
    let sent = produced.min(edtl) as usize;
    let status_in_data = result.status == ScsiStatus::Good && sent > 0;
    let status = result.status;
    let sense = result.sense_bytes();
    let buf = Arc::new(result.data_in);
    let max_seg = send.limits.max_data_segment_len.max(512) as usize;
    send.send_with(|stat_sn, exp, max, out| {
        let count = sent.div_ceil(max_seg);
        for i in 0..count {
            let range = i * max_seg..((i + 1) * max_seg).min(sent);
            let last = i + 1 == count;
            let with_status = last && status_in_data;
            let pdu = DataIn {
                fin: last,
                ack: false,
                overflow: with_status && overflow,
                underflow: with_status && underflow,
                status: with_status.then(|| status.code()),
                lun,
                itt,
                ttt: RESERVED_TAG,
                stat_sn: if with_status {
                    stat_sn
                } else {
                    SerialNumber(0)
                },
                exp_cmd_sn: exp,
                max_cmd_sn: max,
                data_sn: SerialNumber(i as u32),
                buffer_offset: (i * max_seg) as u32,
                residual_count: if with_status { residual } else { 0 },
                data: Vec::new(),
            };
            out.pdus.push(data_in_out(&pdu, &buf, range, &out.limits)?);
        }
        if status_in_data {
            return Ok(1);
        }
        // The PDU codec adds the 2-byte SenseLength in front.
        let segment = sense;
        let r = ScsiResponse {
            bidi_read_overflow: false,
            bidi_read_underflow: false,
            overflow,
            underflow,
            response: 0,
            status: status.code(),
            itt,
            snack_tag: 0,
            stat_sn,
            exp_cmd_sn: exp,
            max_cmd_sn: max,
            exp_data_sn: SerialNumber(count as u32),
            bidi_read_residual_count: 0,
            residual_count: residual,
            sense: segment,
            response_data: Vec::new(),
        };
        out.pdu(&r)?;
        Ok(1)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_in_from_a_borrowed_buffer_encodes_like_the_codec() {
        for (hd, dd) in [
            (DigestKind::None, DigestKind::None),
            (DigestKind::Crc32c, DigestKind::Crc32c),
        ] {
            let limits = FrameLimits {
                header_digest: hd,
                data_digest: dd,
                max_data_segment_len: 8192,
            };
            for len in [0usize, 1, 3, 4, 511, 4096] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let mut pdu = DataIn {
                    fin: true,
                    ack: false,
                    overflow: false,
                    underflow: true,
                    status: Some(0),
                    lun: LunField::ZERO,
                    itt: 0x1234,
                    ttt: RESERVED_TAG,
                    stat_sn: SerialNumber(7),
                    exp_cmd_sn: SerialNumber(8),
                    max_cmd_sn: SerialNumber(9),
                    data_sn: SerialNumber(1),
                    buffer_offset: 4096,
                    residual_count: 12,
                    data: Vec::new(),
                };
                let buf = Arc::new(data.clone());
                let out = data_in_out(&pdu, &buf, 0..len, &limits).unwrap();
                let fast: Vec<u8> = out.slices().concat();
                assert_eq!(out.len(), fast.len());
                pdu.data = data;
                let mut reference = Vec::new();
                encode(&pdu, &limits, &mut reference).unwrap();
                assert_eq!(fast, reference, "len {len}, digests {hd:?}/{dd:?}");
            }
        }
    }
}
