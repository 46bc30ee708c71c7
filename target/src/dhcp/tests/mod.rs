//! Handler tests: requests built with dhcproto (or by hand when they must be malformed),
//! replies decoded with dhcproto, time stepped by hand.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod messages;
mod options;
mod pool;
mod robust;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcproto::v4::{
    Architecture, DhcpOption, Flags, Message, MessageType as T, Opcode, OptionCode, UnknownOption,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use pxeroot_proto::chap::Credentials;

use super::{Boot, Host, IscsiBoot, Mode, Port, Reply, Server, Settings, Source};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const RESERVED_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const RESERVED_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const ROOT_PATH: &str = "iscsi:10.0.0.2::3260:0:iqn.2026-11.org.example:client";
const INITIATOR: &str = "iqn.2026-11.org.example.client:client";

fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

fn settings() -> Settings {
    Settings {
        server: SERVER,
        interface: None,
        network: Ipv4Addr::new(10, 0, 0, 0),
        prefix: 24,
        router: Some(ip(1)),
        dns: vec![ip(1), ip(3)],
        domain: Some("lab.example".into()),
        lease_time: Duration::from_secs(3600),
        pool: Some((ip(100), ip(104))),
        lease_file: None,
        mode: Mode::Full,
        hosts: vec![Host {
            mac: RESERVED_MAC,
            ip: RESERVED_IP,
            hostname: "client".into(),
            boot: Boot {
                bios: Some("pxelinux.0".into()),
                efi_x64: Some("grubx64.efi".into()),
                ipxe: Some("boot.ipxe".into()),
            },
            iscsi: Some(IscsiBoot {
                root_path: ROOT_PATH.into(),
                initiator: INITIATOR.into(),
                chap: Some(Credentials::new("client", "client-secret")),
                mutual_chap: Some(Credentials::new("target", "target-secret")),
            }),
        }],
        default_boot: Boot {
            bios: Some("pool.0".into()),
            efi_x64: None,
            ipxe: None,
        },
        port: 67,
    }
}

/// The time `s` seconds into a test.
fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn from_client() -> Source {
    Source {
        addr: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        port: Port::Dhcp,
    }
}

/// A request as a client builds it.
fn request(t: T, mac: [u8; 6]) -> Message {
    let mut m = Message::new_with_id(
        0x1234_5678,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    m.set_opcode(Opcode::BootRequest);
    m.set_flags(Flags::default());
    m.opts_mut().insert(DhcpOption::MessageType(t));
    m
}

fn with(mut m: Message, opt: DhcpOption) -> Message {
    m.opts_mut().insert(opt);
    m
}

fn unknown(code: u8, data: &[u8]) -> DhcpOption {
    DhcpOption::Unknown(UnknownOption::new(OptionCode::from(code), data.to_vec()))
}

fn encode(m: &Message) -> Vec<u8> {
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).unwrap();
    buf
}

fn decode(r: &Reply) -> Message {
    Message::decode(&mut Decoder::new(&r.bytes)).unwrap()
}

fn msg_type(m: &Message) -> T {
    match m.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(t)) => *t,
        other => panic!("no message type: {other:?}"),
    }
}

fn raw_opt(m: &Message, code: u8) -> Option<Vec<u8>> {
    match m.opts().get(OptionCode::from(code))? {
        DhcpOption::Unknown(u) => Some(u.data().to_vec()),
        other => panic!("option {code} decoded as {other:?}"),
    }
}

fn broadcast() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::BROADCAST, 68)
}

/// A server and a clock.
struct Harness {
    server: Server,
    now: u64,
}

impl Harness {
    fn new(s: Settings) -> Harness {
        Harness {
            server: Server::new(s).unwrap(),
            now: 0,
        }
    }

    fn send(&mut self, m: &Message) -> Option<Reply> {
        let r = self.server.handle(&encode(m), from_client(), at(self.now));
        self.server.persist().unwrap();
        r
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Option<Reply> {
        self.server.handle(bytes, from_client(), at(self.now))
    }

    /// DISCOVER → OFFER, REQUEST → ACK; returns the bound address.
    fn lease(&mut self, mac: [u8; 6]) -> Ipv4Addr {
        let offer = decode(&self.send(&request(T::Discover, mac)).expect("no offer"));
        assert_eq!(msg_type(&offer), T::Offer);
        let req = with(
            with(
                request(T::Request, mac),
                DhcpOption::ServerIdentifier(SERVER),
            ),
            DhcpOption::RequestedIpAddress(offer.yiaddr()),
        );
        let ack = decode(&self.send(&req).expect("no ack"));
        assert_eq!(msg_type(&ack), T::Ack);
        assert_eq!(ack.yiaddr(), offer.yiaddr());
        ack.yiaddr()
    }

    fn offer(&mut self, mac: [u8; 6]) -> Option<Ipv4Addr> {
        self.send(&request(T::Discover, mac)).map(|r| {
            let m = decode(&r);
            assert_eq!(msg_type(&m), T::Offer);
            m.yiaddr()
        })
    }
}

/// Everything logged while `f` runs, as text.
fn logs<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let r = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (r, text)
}

fn arch(n: u16) -> DhcpOption {
    DhcpOption::ClientSystemArchitecture(Architecture::from(n))
}

/// The BOOTP file field as text (dhcproto's decoder keeps the terminating NUL).
fn fname(m: &Message) -> Option<String> {
    m.fname().map(|f| {
        String::from_utf8_lossy(f)
            .trim_end_matches('\0')
            .to_string()
    })
}
