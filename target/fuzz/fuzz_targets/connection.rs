//! One iSCSI connection end to end: arbitrary bytes from an initiator into
//! `connection::serve` over a real loopback socket, on a server with a read-write and a
//! read-only LUN. The connection must end once the initiator has sent everything and closed its
//! side (no hang), and nothing may panic (libfuzzer-sys aborts on a panic in any thread,
//! tokio's workers and blocking pool included).
//!
//! Input: one mode byte, then the PDUs.
//! - mode bit 0 clear: a Login Request for the normal session goes first (operational stage
//!   straight to the full feature phase, ImmediateData=Yes, InitialR2T=No), so that most
//!   inputs reach the full feature phase; set: the input starts in the login phase.
//! - mode bit 1 set: the rest goes on the wire as it is (framing fuzz).
//! - mode bit 2 set (with the prelude): the login negotiates CRC32C header and data digests,
//!   and framed records get them.
//! - otherwise the rest is records `[ctl][48-byte BHS][u16 LE length][data]`: ctl bit 0 writes
//!   the running CmdSN into the BHS (and advances it unless the I bit is set), bit 1 writes
//!   DataSegmentLength, clears TotalAHSLength and pads the data, so that the fuzzer does not
//!   have to discover the framing and the command window on its own.
#![no_main]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pxeroot_proto::digest;
use pxeroot_proto::frame::{encode_pdu, FrameLimits};
use pxeroot_proto::pdu::{LoginRequest, Stage, VERSION};
use pxeroot_proto::{Isid, Pdu, SerialNumber};
use pxeroot_target::config::Config;
use pxeroot_target::iscsi::connection;
use pxeroot_target::iscsi::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

const TARGET: &str = "iqn.2026-11.org.example:fuzz";
const INITIATOR: &str = "iqn.2013-02.org.example.client:fuzz";
/// How long one input may keep the connection open after the initiator closed its side.
const HANG: Duration = Duration::from_secs(30);

struct World {
    rt: Runtime,
    server: Arc<Server>,
    listener: TcpListener,
    addr: SocketAddr,
    shutdown: watch::Receiver<bool>,
    _never: watch::Sender<bool>,
    /// The login prelude without and with digests.
    login: [Vec<u8>; 2],
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = std::env::temp_dir();
        let images: Vec<PathBuf> = (0..2)
            .map(|i| {
                dir.join(format!(
                    "pxeroot-fuzz-connection-{}-{i}.img",
                    std::process::id()
                ))
            })
            .collect();
        for p in &images {
            std::fs::write(p, vec![0u8; 1 << 20]).expect("image");
        }
        let text = format!(
            "[iscsi]\nlisten = [\"127.0.0.1:3260\"]\nnop_interval = 0\n\
             [[target]]\nname = \"{TARGET}\"\n\
             [[target.lun]]\nid = 0\npath = \"{}\"\n\
             [[target.lun]]\nid = 1\npath = \"{}\"\nread_only = true\n\
             [[target.acl]]\ninitiator = \"*\"\n",
            images[0].display(),
            images[1].display()
        );
        let config = Config::parse(&text).config.expect("config");
        let server = Arc::new(Server::new(&config).expect("server"));
        // The LUNs hold their files open; the names are not needed any more.
        for p in &images {
            let _ = std::fs::remove_file(p);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("listen");
        let addr = listener.local_addr().expect("addr");
        let (never, shutdown) = watch::channel(false);
        let w = World {
            rt,
            server,
            listener,
            addr,
            shutdown,
            _never: never,
            login: [login_request("None"), login_request("CRC32C")],
        };
        selfcheck(&w, false);
        selfcheck(&w, true);
        w
    })
}

/// The Login Request that opens a normal session in one step.
fn login_request(digest: &str) -> Vec<u8> {
    let text = format!(
        "InitiatorName={INITIATOR}\0TargetName={TARGET}\0SessionType=Normal\0HeaderDigest={digest}\0\
         DataDigest={digest}\0ImmediateData=Yes\0InitialR2T=No\0MaxRecvDataSegmentLength=65536\0\
         FirstBurstLength=65536\0MaxBurstLength=262144\0MaxOutstandingR2T=2\0ErrorRecoveryLevel=0\0"
    );
    let req = LoginRequest {
        transit: true,
        cont: false,
        csg: Stage::LoginOperationalNegotiation,
        nsg: Stage::FullFeaturePhase,
        version_max: VERSION,
        version_min: VERSION,
        isid: Isid::random(0x00f0_2201, 1),
        tsih: 0,
        itt: 0,
        cid: 0,
        cmd_sn: SerialNumber(1),
        exp_stat_sn: SerialNumber(0),
        data: text.into_bytes(),
    };
    let mut out = Vec::new();
    encode_pdu(&Pdu::LoginRequest(req), &FrameLimits::default(), &mut out).expect("login request");
    out
}

/// The harness reaches the full feature phase: an INQUIRY after the login prelude gets its
/// Data-In. Without this a broken prelude would quietly fuzz nothing but login failures.
fn selfcheck(w: &World, digests: bool) {
    let mut input = vec![if digests { 4 } else { 0 }];
    let mut bhs = [0u8; 48];
    bhs[0] = 0x01;
    bhs[1] = 0xc1; // F, R, simple
    bhs[16..20].copy_from_slice(&7u32.to_be_bytes());
    bhs[20..24].copy_from_slice(&96u32.to_be_bytes());
    bhs[32..38].copy_from_slice(&[0x12, 0, 0, 0, 96, 0]);
    input.push(3);
    input.extend_from_slice(&bhs);
    input.extend_from_slice(&[0, 0]);
    let reply = w.rt.block_on(exchange(w, &input));
    let mut rest = &reply[..];
    let mut opcodes = Vec::new();
    while rest.len() >= 48 {
        opcodes.push(rest[0] & 0x3f);
        let dsl = usize::from(rest[5]) << 16 | usize::from(rest[6]) << 8 | usize::from(rest[7]);
        // Digests start after the Login Response.
        let digest = if digests && opcodes.len() > 1 { 4 } else { 0 };
        let len = 48 + digest + dsl.div_ceil(4) * 4 + if dsl > 0 { digest } else { 0 };
        rest = rest.get(len..).unwrap_or(&[]);
    }
    assert_eq!(
        opcodes,
        [0x23, 0x25],
        "login response then Data-In expected, got {opcodes:02x?}"
    );
}

/// Send the input on a fresh connection, close our side, and return all the target sent.
async fn exchange(w: &World, data: &[u8]) -> Vec<u8> {
    let (client, accepted) = tokio::join!(TcpStream::connect(w.addr), w.listener.accept());
    let (Ok(client), Ok((stream, peer))) = (client, accepted) else {
        // Out of ports or file descriptors: not the target's fault.
        return Vec::new();
    };
    let task = tokio::spawn(connection::serve(
        Arc::clone(&w.server),
        stream,
        peer,
        w.shutdown.clone(),
    ));
    let bytes = wire(w, data);
    let (mut rd, mut wr) = client.into_split();
    let send = async move {
        let _ = wr.write_all(&bytes).await;
        let _ = wr.shutdown().await;
        wr
    };
    let receive = async move {
        let mut got = Vec::new();
        while let Ok(n) = rd.read_buf(&mut got).await {
            if n == 0 {
                break;
            }
        }
        got
    };
    let Ok((_wr, got)) = tokio::time::timeout(HANG, async { tokio::join!(send, receive) }).await
    else {
        panic!("the connection stayed open {HANG:?} after the initiator closed its side");
    };
    match tokio::time::timeout(HANG, task).await {
        Err(_) => panic!("connection::serve did not return after the socket closed"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(_) => {}
    }
    got
}

/// The bytes to send for one input (see the module doc).
fn wire(w: &World, data: &[u8]) -> Vec<u8> {
    let Some((&mode, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let digests = mode & 5 == 4;
    if mode & 1 == 0 {
        out.extend_from_slice(&w.login[usize::from(digests)]);
    }
    if mode & 2 != 0 {
        out.extend_from_slice(rest);
        return out;
    }
    let mut cmd_sn: u32 = 1;
    while let [ctl, tail @ ..] = rest {
        let Some((bhs, tail)) = tail.split_first_chunk::<48>() else {
            break;
        };
        let (len, tail) = match tail {
            [a, b, t @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), t),
            _ => (0, &[][..]),
        };
        let (seg, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        let mut bhs = *bhs;
        if ctl & 1 != 0 {
            bhs[24..28].copy_from_slice(&cmd_sn.to_be_bytes());
            if bhs[0] & 0x40 == 0 {
                cmd_sn = cmd_sn.wrapping_add(1);
            }
        }
        out.extend_from_slice(&bhs);
        if ctl & 2 != 0 {
            let l = (seg.len() as u32).to_be_bytes();
            let at = out.len() - 48;
            out[at + 4] = 0;
            out[at + 5..at + 8].copy_from_slice(&l[1..]);
            if digests {
                let hd = digest::header_digest(&out[at..], &[]);
                out.extend_from_slice(&hd);
            }
            let data_at = out.len();
            out.extend_from_slice(seg);
            out.resize(out.len() + (4 - seg.len() % 4) % 4, 0);
            if digests && !seg.is_empty() {
                let dd = digest::data_digest(&out[data_at..]);
                out.extend_from_slice(&dd);
            }
        } else {
            out.extend_from_slice(seg);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    w.rt.block_on(exchange(w, data));
});
