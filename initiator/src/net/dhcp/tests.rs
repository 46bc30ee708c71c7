//! Scripted, time-stepped exchanges against a fake server built with dhcproto (smoltcp's
//! `send!`/`recv!` style), plus bad-input tests.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode, UnknownOption};

use super::wire::{self, MsgType};
use dhcproto::{Decodable, Decoder, Encodable, Name};
use proptest::prelude::*;

use pxeroot_proto::chap::Secret;

use super::lease::{parse_ipxe_encap, prefix_of, IpxeCredentials};
use super::*;

const MAC: Mac = Mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const SECRET: &[u8] = b"S3cr3tPassw0rd";

/// Entropy whose values all give a jitter of exactly 0 (1000 of 0..=2000), while still
/// differing so that each new xid differs.
#[derive(Debug, Default)]
struct NoJitter(u32);

impl Entropy for NoJitter {
    fn next_u32(&mut self) -> u32 {
        self.0 += 1;
        1000 + 2001 * self.0
    }
}

fn client(t0: Instant, timeout_secs: u64) -> Client<NoJitter> {
    Client::new(
        MAC,
        t0,
        Duration::from_secs(timeout_secs),
        NoJitter::default(),
    )
}

fn decode(bytes: &[u8]) -> Message {
    Message::decode(&mut Decoder::new(bytes)).unwrap()
}

fn transmit(c: &mut Client<NoJitter>, now: Instant) -> Message {
    match c.poll(now) {
        Poll::Transmit(p) => decode(&p),
        other => panic!("expected a transmission, got {other:?}"),
    }
}

fn wait(c: &mut Client<NoJitter>, now: Instant) -> Instant {
    match c.poll(now) {
        Poll::Wait(t) => t,
        other => panic!("expected a wait, got {other:?}"),
    }
}

/// A reply to `req` as a server would build it.
fn reply(
    req: &Message,
    kind: MessageType,
    server: Option<Ipv4Addr>,
    extra: &[DhcpOption],
) -> Vec<u8> {
    let yiaddr = if kind == MessageType::Nak {
        Ipv4Addr::UNSPECIFIED
    } else {
        ADDR
    };
    let mut m = Message::new_with_id(
        req.xid(),
        Ipv4Addr::UNSPECIFIED,
        yiaddr,
        SERVER,
        Ipv4Addr::UNSPECIFIED,
        req.chaddr(),
    );
    m.set_opcode(Opcode::BootReply);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(s) = server {
        m.opts_mut().insert(DhcpOption::ServerIdentifier(s));
    }
    for o in extra {
        m.opts_mut().insert(o.clone());
    }
    m.to_vec().unwrap()
}

fn ipxe_encap() -> Vec<u8> {
    let mut e = vec![0x11, 1, 1, 0]; // a feature flag, then a pad
    e.extend([190, 5]);
    e.extend(b"alice");
    e.push(191);
    e.push(SECRET.len() as u8);
    e.extend(SECRET);
    e.extend([192, 3]);
    e.extend(b"tgt");
    e.push(193);
    e.push(12);
    e.extend(b"OtherSecret1");
    e.push(255);
    e
}

fn full_options() -> Vec<DhcpOption> {
    vec![
        DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)),
        DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 9)]),
        DhcpOption::DomainNameServer(vec![SERVER, OTHER]),
        DhcpOption::Hostname("client1".into()),
        DhcpOption::DomainName("example.org\0".into()),
        DhcpOption::DomainSearch(vec![
            Name::from_ascii("example.org.").unwrap(),
            Name::from_ascii("lab.example.org").unwrap(),
        ]),
        DhcpOption::InterfaceMtu(9000),
        DhcpOption::AddressLeaseTime(3600),
        DhcpOption::RootPath("iscsi:10.0.0.2::3260:1:iqn.2026-11.org.example:disk1".into()),
        DhcpOption::BootfileName(b"pxelinux.0".to_vec()),
        DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(203u8),
            b"iqn.2026-11.org.example:client1".to_vec(),
        )),
        DhcpOption::Unknown(UnknownOption::new(OptionCode::from(175u8), ipxe_encap())),
    ]
}

/// Drives a client to REQUESTING; returns it with the REQUEST it sent.
fn to_requesting(t0: Instant) -> (Client<NoJitter>, Message) {
    to_requesting_with(t0, 30)
}

fn to_requesting_with(t0: Instant, timeout_secs: u64) -> (Client<NoJitter>, Message) {
    let mut c = client(t0, timeout_secs);
    let discover = transmit(&mut c, t0);
    let offer = reply(&discover, MessageType::Offer, Some(SERVER), &[]);
    assert_eq!(
        c.handle(t0, &offer),
        Ok(Received::Offer {
            server: SERVER,
            address: ADDR
        })
    );
    let request = transmit(&mut c, t0);
    (c, request)
}

#[test]
fn discover_carries_what_servers_need() {
    let t0 = Instant::now();
    let mut c = client(t0, 30);
    let m = transmit(&mut c, t0);
    assert_eq!(m.opcode(), Opcode::BootRequest);
    assert_eq!(m.xid(), c.xid());
    assert!(m.flags().broadcast(), "BROADCAST flag: no address yet");
    assert_eq!(m.chaddr(), MAC.0);
    assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
    let o = m.opts();
    assert_eq!(o.msg_type(), Some(MessageType::Discover));
    assert_eq!(
        o.get(OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(vec![
            1, 0x52, 0x54, 0, 0x12, 0x34, 0x56
        ]))
    );
    let Some(DhcpOption::ParameterRequestList(prl)) = o.get(OptionCode::ParameterRequestList)
    else {
        panic!("no option 55");
    };
    let prl: Vec<u8> = prl.iter().map(|c| u8::from(*c)).collect();
    assert_eq!(prl, PARAMETER_REQUEST_LIST);
    for needed in [1, 3, 6, 12, 15, 17, 26, 28, 43, 51, 54, 119, 175, 203] {
        assert!(prl.contains(&needed), "option {needed} requested");
    }
    assert_eq!(
        o.get(OptionCode::ClassIdentifier),
        Some(&DhcpOption::ClassIdentifier(b"pxeroot-initiator".to_vec()))
    );
    let Some(DhcpOption::Unknown(ipxe)) = o.get(OptionCode::from(175u8)) else {
        panic!("no option 175");
    };
    assert_eq!(ipxe.data(), [0x11, 1, 1]);
    assert!(o.get(OptionCode::RequestedIpAddress).is_none());
    assert_eq!(c.stats().discovers, 1);
}

#[test]
fn discover_offer_request_ack() {
    let t0 = Instant::now();
    let (mut c, request) = to_requesting(t0);
    assert_eq!(request.opts().msg_type(), Some(MessageType::Request));
    assert_eq!(request.xid(), c.xid());
    assert!(request.flags().broadcast());
    assert_eq!(
        request.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ADDR))
    );
    assert_eq!(
        request.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    let t1 = t0 + Duration::from_millis(20);
    let ack = reply(&request, MessageType::Ack, Some(SERVER), &full_options());
    assert_eq!(c.handle(t1, &ack), Ok(Received::Ack { server: SERVER }));
    let Poll::Bound(b) = c.poll(t1) else {
        panic!("not bound");
    };
    let l = &b.lease;
    assert_eq!(l.address, ADDR);
    assert_eq!(l.prefix_len, 24);
    assert_eq!(l.server_id, SERVER);
    assert_eq!(l.routers[0], Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(l.dns, [SERVER, OTHER]);
    assert_eq!(l.hostname.as_deref(), Some("client1"));
    assert_eq!(l.domain.as_deref(), Some("example.org"), "NUL stripped");
    assert_eq!(l.domain_search, ["example.org", "lab.example.org"]);
    assert_eq!(l.mtu, Some(9000));
    assert_eq!(l.lease_secs, Some(3600));
    assert_eq!(l.siaddr, Some(SERVER));
    assert_eq!(l.bootfile.as_deref(), Some("pxelinux.0"));
    let root = "iscsi:10.0.0.2::3260:1:iqn.2026-11.org.example:disk1";
    assert_eq!(l.root_path.as_deref(), Some(root));
    let i = &b.info;
    assert_eq!(i.root_path.as_deref(), Some(root));
    assert_eq!(
        i.initiator_name.as_deref(),
        Some("iqn.2026-11.org.example:client1")
    );
    assert_eq!(i.username.as_deref(), Some("alice"));
    assert_eq!(i.password, Some(Secret::new(SECRET)));
    assert_eq!(i.in_username.as_deref(), Some("tgt"));
    assert_eq!(i.in_password, Some(Secret::new(&b"OtherSecret1"[..])));
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    // Bound stays bound; later datagrams are ignored.
    assert!(matches!(
        c.poll(t1 + Duration::from_secs(99)),
        Poll::Bound(_)
    ));
    assert!(c.handle(t1, &ack).is_err());
    // No secret in any Debug output.
    let dbg = format!("{b:?}");
    assert!(
        !dbg.contains("S3cr3t") && !dbg.contains("OtherSecret1"),
        "{dbg}"
    );
}

#[test]
fn retransmission_schedule_follows_rfc2131() {
    assert_eq!(backoff(1, 1000), Duration::from_secs(4));
    assert_eq!(backoff(1, 0), Duration::from_secs(3));
    assert_eq!(backoff(1, 2000), Duration::from_secs(5));
    assert_eq!(backoff(2, 1000), Duration::from_secs(8));
    assert_eq!(backoff(3, 1000), Duration::from_secs(16));
    assert_eq!(backoff(4, 1000), Duration::from_secs(32));
    assert_eq!(backoff(5, 1000), Duration::from_secs(64));
    assert_eq!(
        backoff(50, 2000),
        Duration::from_secs(65),
        "capped at 64 s ± 1 s"
    );
    assert_eq!(backoff(u32::MAX, u32::MAX), backoff(5, u32::MAX % 2001));

    let t0 = Instant::now();
    let mut c = client(t0, 200);
    let xid = transmit(&mut c, t0).xid();
    let mut sent_at = vec![0];
    let mut now = t0;
    loop {
        match c.poll(now) {
            Poll::Wait(t) => {
                assert!(t > now);
                // Nothing happens before the deadline.
                assert!(matches!(c.poll(t - Duration::from_millis(1)), Poll::Wait(u) if u == t));
                now = t;
            }
            Poll::Transmit(p) => {
                assert_eq!(decode(&p).xid(), xid, "retransmissions keep the xid");
                sent_at.push((now - t0).as_secs());
            }
            Poll::TimedOut(stats) => {
                assert_eq!(stats.discovers, 7);
                assert_eq!(stats.offers, 0);
                break;
            }
            Poll::Bound(_) => panic!("bound without a server"),
        }
    }
    assert_eq!(sent_at, [0, 4, 12, 28, 60, 124, 188]);
    assert_eq!(
        now,
        t0 + Duration::from_secs(200),
        "the last wait ends at the deadline"
    );
}

#[test]
fn nak_restarts_with_a_new_xid() {
    let t0 = Instant::now();
    let (mut c, request) = to_requesting(t0);
    let old_xid = c.xid();
    let mut nak = Message::decode(&mut Decoder::new(&reply(
        &request,
        MessageType::Nak,
        Some(SERVER),
        &[],
    )))
    .unwrap();
    nak.opts_mut()
        .insert(DhcpOption::Message("address not available".into()));
    let nak = nak.to_vec().unwrap();
    assert_eq!(
        c.handle(t0, &nak),
        Ok(Received::Nak {
            server: SERVER,
            message: Some("address not available".into())
        })
    );
    let discover = transmit(&mut c, t0);
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));
    assert_ne!(discover.xid(), old_xid);
    assert_eq!(c.stats().naks, 1);
    assert_eq!(c.stats().last_nak, Some(SERVER));
    // A late reply to the old transaction is ignored.
    assert!(matches!(c.handle(t0, &nak), Err(Ignored::WrongXid { .. })));

    // A second NAK: start over only after 2 s.
    let offer = reply(&discover, MessageType::Offer, Some(SERVER), &[]);
    c.handle(t0, &offer).unwrap();
    let request = transmit(&mut c, t0);
    let nak = reply(&request, MessageType::Nak, Some(SERVER), &[]);
    assert!(matches!(c.handle(t0, &nak), Ok(Received::Nak { .. })));
    assert_eq!(wait(&mut c, t0), t0 + Duration::from_secs(2));
    let d = transmit(&mut c, t0 + Duration::from_secs(2));
    assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
}

#[test]
fn unanswered_requests_start_over() {
    let t0 = Instant::now();
    let (mut c, _) = to_requesting_with(t0, 300);
    let mut now = t0;
    let mut requests = 1;
    loop {
        now = wait(&mut c, now);
        let m = transmit(&mut c, now);
        match m.opts().msg_type() {
            Some(MessageType::Request) => requests += 1,
            Some(MessageType::Discover) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(requests, MAX_REQUESTS);
    assert_eq!(now - t0, Duration::from_secs(4 + 8 + 16 + 32));
    assert_eq!(c.stats().requests, MAX_REQUESTS);
}

#[test]
fn replies_not_for_us_are_ignored() {
    let t0 = Instant::now();
    let mut c = client(t0, 30);
    let discover = transmit(&mut c, t0);
    let good = reply(&discover, MessageType::Offer, Some(SERVER), &[]);

    let mut m = decode(&good);
    m.set_xid(c.xid() ^ 1);
    assert!(matches!(
        c.handle(t0, &m.to_vec().unwrap()),
        Err(Ignored::WrongXid { .. })
    ));
    let mut m = decode(&good);
    m.set_chaddr(&[0x52, 0x54, 0, 0, 0, 1]);
    assert_eq!(
        c.handle(t0, &m.to_vec().unwrap()),
        Err(Ignored::WrongChaddr)
    );
    let mut m = decode(&good);
    m.set_opcode(Opcode::BootRequest);
    assert_eq!(c.handle(t0, &m.to_vec().unwrap()), Err(Ignored::NotReply));
    let no_sid = reply(&discover, MessageType::Offer, None, &[]);
    assert_eq!(
        c.handle(t0, &no_sid),
        Err(Ignored::NoServerId(MsgType::Offer))
    );
    let ack = reply(&discover, MessageType::Ack, Some(SERVER), &[]);
    assert!(matches!(
        c.handle(t0, &ack),
        Err(Ignored::Unexpected {
            got: MsgType::Ack,
            ..
        })
    ));
    let mut m = decode(&good);
    m.opts_mut().remove(OptionCode::MessageType);
    assert_eq!(
        c.handle(t0, &m.to_vec().unwrap()),
        Err(Ignored::NoMessageType)
    );
    let mut m = decode(&good);
    m.set_yiaddr(Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        c.handle(t0, &m.to_vec().unwrap()),
        Err(Ignored::NoAddress(MsgType::Offer))
    );
    // None of that changed the state: the good offer is still taken.
    assert!(matches!(c.handle(t0, &good), Ok(Received::Offer { .. })));

    // In REQUESTING, answers from another server are ignored.
    let request = transmit(&mut c, t0);
    for kind in [MessageType::Ack, MessageType::Nak] {
        let other = reply(&request, kind, Some(OTHER), &[]);
        assert_eq!(
            c.handle(t0, &other),
            Err(Ignored::OtherServer {
                got: OTHER,
                want: SERVER
            })
        );
    }
    let second_offer = reply(&request, MessageType::Offer, Some(OTHER), &[]);
    assert!(matches!(
        c.handle(t0, &second_offer),
        Err(Ignored::Unexpected { .. })
    ));
    assert_eq!(c.stats().naks, 0);
}

#[test]
fn truncated_and_garbage_datagrams_are_rejected() {
    let t0 = Instant::now();
    let mut c = client(t0, 30);
    let discover = transmit(&mut c, t0);
    let good = reply(&discover, MessageType::Offer, Some(SERVER), &full_options());
    for n in 0..good.len() {
        // Every prefix is handled without panicking. A cut inside an option is rejected; a
        // cut between options (no End) is tolerated, as most clients do, but only once the
        // message type is in.
        let mut fresh = client(t0, 30);
        let d = transmit(&mut fresh, t0);
        let mut p = decode(&good);
        p.set_xid(d.xid());
        let p = p.to_vec().unwrap();
        let r = fresh.handle(t0, &p[..n.min(p.len())]);
        if n < 243 {
            assert!(r.is_err(), "accepted a {n}-byte prefix: {r:?}");
        }
    }
    assert!(matches!(c.handle(t0, &[]), Err(Ignored::Malformed(_))));
    assert!(matches!(
        c.handle(t0, &[0xff; 600]),
        Err(Ignored::Malformed(_))
    ));
    // A huge hlen is clamped to chaddr's 16 bytes, never sliced out of bounds.
    let mut bad = good.clone();
    bad[2] = 200;
    assert_eq!(c.handle(t0, &bad), Err(Ignored::WrongChaddr));
    // An option whose length runs past the end.
    let mut bad = good[..240].to_vec();
    bad.extend([53, 1, 2, 1, 200, 255]);
    assert!(c.handle(t0, &bad).is_err());
}

fn with_header(c: &Client<NoJitter>, tail: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 240];
    p[0] = 2; // BOOTREPLY
    p[1] = 1;
    p[2] = 6;
    p[4..8].copy_from_slice(&c.xid().to_be_bytes());
    p[28..34].copy_from_slice(&MAC.0);
    p[236..240].copy_from_slice(&wire::MAGIC);
    p.extend_from_slice(tail);
    p
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let t0 = Instant::now();
        let mut c = client(t0, 30);
        let _ = c.poll(t0);
        let _ = c.handle(t0, &bytes);
    }

    #[test]
    fn arbitrary_options_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let t0 = Instant::now();
        let mut c = client(t0, 30);
        let _ = c.poll(t0);
        let p = with_header(&c, &tail);
        if c.handle(t0, &p).is_ok() {
            let _ = c.poll(t0);
            let _ = c.handle(t0, &p);
        }
    }

    #[test]
    fn arbitrary_encapsulated_options_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_ipxe_encap(&data);
    }
}

#[test]
fn option_175_suboptions() {
    let c = parse_ipxe_encap(&ipxe_encap()).unwrap();
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password, Some(Secret::new(SECRET)));
    assert_eq!(c.reverse_username.as_deref(), Some("tgt"));
    assert_eq!(c.reverse_password, Some(Secret::new(&b"OtherSecret1"[..])));
    assert!(!format!("{c:?}").contains("S3cr3t"));
    // Only feature flags: no credentials.
    assert_eq!(
        parse_ipxe_encap(&[0x11, 1, 1, 0x13, 1, 1]).unwrap(),
        IpxeCredentials::default()
    );
    // Anything after End is not read.
    assert_eq!(
        parse_ipxe_encap(&[255, 190, 200]).unwrap(),
        IpxeCredentials::default()
    );
    // Truncated: the error names the sub-option, never the bytes.
    let mut t = vec![191, 20];
    t.extend(&SECRET[..10]);
    let e = parse_ipxe_encap(&t).unwrap_err();
    assert!(e.contains("sub-option 191 is truncated"), "{e}");
    assert!(!e.contains("S3cr3t"));
    assert!(parse_ipxe_encap(&[190]).unwrap_err().contains("no length"));
    assert!(parse_ipxe_encap(&[190, 2, 0xff, 0xfe])
        .unwrap_err()
        .contains("not UTF-8"));
}

#[test]
fn bad_option_175_keeps_the_lease_and_warns() {
    let t0 = Instant::now();
    let (mut c, request) = to_requesting(t0);
    let mut bad = vec![191, 30];
    bad.extend(SECRET);
    let opts = [
        DhcpOption::Unknown(UnknownOption::new(OptionCode::from(175u8), bad)),
        DhcpOption::InterfaceMtu(40),
    ];
    let ack = reply(&request, MessageType::Ack, Some(SERVER), &opts);
    c.handle(t0, &ack).unwrap();
    let Poll::Bound(b) = c.poll(t0) else {
        panic!("not bound");
    };
    assert_eq!(b.info.password, None);
    assert_eq!(b.lease.prefix_len, 8, "no mask: class A default");
    assert_eq!(b.lease.mtu, None);
    let w = b.warnings.join("\n");
    assert!(w.contains("sub-option 191 is truncated"), "{w}");
    assert!(w.contains("MTU 40"), "{w}");
    assert!(w.contains("no subnet mask"), "{w}");
    assert!(!w.contains("S3cr3t"));
}

#[test]
fn non_contiguous_mask_rejects_the_ack() {
    let t0 = Instant::now();
    let (mut c, request) = to_requesting(t0);
    let ack = reply(
        &request,
        MessageType::Ack,
        Some(SERVER),
        &[DhcpOption::SubnetMask(Ipv4Addr::new(255, 0, 255, 0))],
    );
    assert!(matches!(c.handle(t0, &ack), Err(Ignored::BadLease(e)) if e.contains("255.0.255.0")));
    assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 252)), Some(30));
    assert_eq!(prefix_of(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
    assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
    assert_eq!(broadcast_of(ADDR, 24), Ipv4Addr::new(10, 0, 0, 255));
    assert_eq!(broadcast_of(ADDR, 32), ADDR);
    assert_eq!(broadcast_of(ADDR, 0), Ipv4Addr::BROADCAST);
    assert_eq!(netmask_of(0), Ipv4Addr::UNSPECIFIED);
    assert_eq!(netmask_of(20), Ipv4Addr::new(255, 255, 240, 0));
    assert_eq!(netmask_of(32), Ipv4Addr::BROADCAST);
}

#[test]
fn os_entropy_varies() {
    let mut e = OsEntropy::new();
    let v: Vec<u32> = (0..8).map(|_| e.next_u32()).collect();
    let mut d = v.clone();
    d.dedup();
    assert_eq!(d.len(), v.len(), "{v:?}");
}
