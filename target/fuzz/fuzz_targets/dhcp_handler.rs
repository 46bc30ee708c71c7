//! The DHCP handler (`pxeroot_target::dhcp::Server::handle`) fed a sequence of datagrams, so
//! that the lease table evolves between them (offers, leases, declines, releases, expiry).
//! Never panics; every reply decodes with dhcproto; no reply offers or acknowledges the
//! server's own address, nor a reserved address to another machine, nor an address bound to
//! one machine to another while that lease runs (unless the machine released or declined it).
//!
//! Input: one settings byte (bit 0: proxyDHCP mode; bits 1-3: pool size - 1), then records
//! `[ctl][len][bytes]`:
//! - ctl bit 0: the datagram arrives on port 4011 instead of 67;
//! - ctl bit 1: `bytes` are options appended to a valid BOOTREQUEST header (magic cookie,
//!   Ethernet, chaddr from ctl bits 4-5 picking one of four MACs, the reserved one included),
//!   so that most inputs reach the message handlers; clear: `bytes` are the whole datagram;
//! - ctl bits 2-3: ciaddr in the header mode (0, a pool address, the reserved one, outside);
//! - ctl bits 6-7: the clock advances 0, 1, 61 or 4000 s before the datagram.
#![no_main]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder};
use libfuzzer_sys::fuzz_target;
use pxeroot_proto::chap::Credentials;
use pxeroot_target::dhcp::wire::{MessageType as WireType, Request};
use pxeroot_target::dhcp::{Boot, Host, IscsiBoot, Mode, Port, Server, Settings, Source};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const RESERVED: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 101);
const MACS: [[u8; 6]; 4] = [
    [0x52, 0x54, 0, 0x12, 0x34, 0x56],
    [2, 0, 0, 0, 0, 1],
    [2, 0, 0, 0, 0, 2],
    [2, 0, 0, 0, 0, 3],
];

fn settings(mode: Mode, pool: u8) -> Settings {
    let boot = Boot {
        bios: Some("pxelinux.0".into()),
        efi_x64: Some("grubx64.efi".into()),
        ipxe: Some("boot.ipxe".into()),
    };
    Settings {
        server: SERVER,
        interface: None,
        network: Ipv4Addr::new(10, 0, 0, 0),
        prefix: 24,
        router: Some(Ipv4Addr::new(10, 0, 0, 1)),
        dns: vec![Ipv4Addr::new(10, 0, 0, 1)],
        domain: Some("fuzz".into()),
        lease_time: Duration::from_secs(3600),
        // The pool starts at .100, so the reserved .101 is inside it.
        pool: Some((Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 100 + pool))),
        lease_file: None,
        mode,
        hosts: vec![Host {
            mac: MACS[0],
            ip: RESERVED,
            hostname: "client".into(),
            boot: boot.clone(),
            iscsi: Some(IscsiBoot {
                root_path: "iscsi:10.0.0.2::3260:0:iqn.2026-11.org.example:fuzz".into(),
                initiator: "iqn.2026-11.org.example.client:fuzz".into(),
                chap: Some(Credentials::new("client", "client-secret")),
                mutual_chap: Some(Credentials::new("target", "target-secret")),
            }),
        }],
        default_boot: boot,
        port: 67,
    }
}

fn header(mac: [u8; 6], ciaddr: Ipv4Addr) -> Vec<u8> {
    let mut h = vec![0u8; 240];
    h[0] = 1;
    h[1] = 1;
    h[2] = 6;
    h[4..8].copy_from_slice(&[1, 2, 3, 4]);
    h[12..16].copy_from_slice(&ciaddr.octets());
    h[28..34].copy_from_slice(&mac);
    h[236..240].copy_from_slice(&[99, 130, 83, 99]);
    h
}

fuzz_target!(|data: &[u8]| {
    let Some((&conf, mut rest)) = data.split_first() else {
        return;
    };
    let mode = if conf & 1 == 1 { Mode::Proxy } else { Mode::Full };
    let Ok(mut server) = Server::new(settings(mode, (conf >> 1) & 7)) else {
        return;
    };
    let mut now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    // Address → (MAC, until) for every ACK with an address.
    let mut bound: HashMap<Ipv4Addr, ([u8; 6], SystemTime)> = HashMap::new();
    while let [ctl, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        now += Duration::from_secs([0, 1, 61, 4000][usize::from(ctl >> 6)]);
        let mac = MACS[usize::from((ctl >> 4) & 3)];
        let packet = if ctl & 2 != 0 {
            let ciaddr = [
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::new(10, 0, 0, 100),
                RESERVED,
                Ipv4Addr::new(192, 168, 0, 1),
            ][usize::from((ctl >> 2) & 3)];
            let mut p = header(mac, ciaddr);
            p.extend_from_slice(bytes);
            p
        } else {
            bytes.to_vec()
        };
        let port = if ctl & 1 != 0 { Port::PxeBoot } else { Port::Dhcp };
        let source = Source {
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 50), 68),
            port,
        };
        // A machine that releases or declines its address gives it up; the check below must
        // not count that as the address being taken from it.
        if let Ok(req) = Request::parse(&packet) {
            if matches!(req.message_type, WireType::Release | WireType::Decline) {
                bound.retain(|_, (owner, _)| *owner != req.mac);
            }
        }
        let Some(reply) = server.handle(&packet, source, now) else {
            continue;
        };
        let msg = Message::decode(&mut Decoder::new(&reply.bytes)).expect("reply decodes");
        let yiaddr = msg.yiaddr();
        let chaddr: [u8; 6] = msg.chaddr()[..6].try_into().expect("6-byte chaddr");
        assert_ne!(yiaddr, SERVER, "the server's address handed out");
        if yiaddr == RESERVED {
            assert_eq!(chaddr, MACS[0], "reserved address to another machine");
        }
        let ack = matches!(
            msg.opts().get(OptionCode::MessageType),
            Some(DhcpOption::MessageType(MessageType::Ack))
        );
        if ack && !yiaddr.is_unspecified() && yiaddr != RESERVED {
            if let Some((owner, until)) = bound.get(&yiaddr) {
                assert!(
                    *owner == chaddr || *until <= now,
                    "{yiaddr} bound to {owner:?} acknowledged to {chaddr:?}"
                );
            }
            bound.insert(yiaddr, (chaddr, now + Duration::from_secs(3600)));
        }
    }
});
