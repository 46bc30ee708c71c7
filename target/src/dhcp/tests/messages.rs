//! One test per message type and per REQUEST state (RFC 2131 §4.3), relays and proxyDHCP.

use super::*;

#[test]
fn discover_from_a_reserved_machine_gets_its_address_broadcast() {
    let mut h = Harness::new(settings());
    let r = h.send(&request(T::Discover, RESERVED_MAC)).unwrap();
    assert_eq!(r.destination, broadcast());
    let m = decode(&r);
    assert_eq!(m.opcode(), Opcode::BootReply);
    assert_eq!(m.xid(), 0x1234_5678);
    assert_eq!(msg_type(&m), T::Offer);
    assert_eq!(m.yiaddr(), RESERVED_IP);
    assert_eq!(m.siaddr(), SERVER);
    assert_eq!(&m.chaddr()[..6], &RESERVED_MAC);
    assert!(r.bytes.len() >= 300, "BOOTP minimum size");
    // The reservation is not a pool lease.
    assert!(h.server.leases().is_empty());
}

#[test]
fn request_selecting_our_offer_is_acked_and_another_address_is_naked() {
    let mut h = Harness::new(settings());
    let sel = |want| {
        with(
            with(
                request(T::Request, RESERVED_MAC),
                DhcpOption::ServerIdentifier(SERVER),
            ),
            DhcpOption::RequestedIpAddress(want),
        )
    };
    let ack = decode(&h.send(&sel(RESERVED_IP)).unwrap());
    assert_eq!(msg_type(&ack), T::Ack);
    assert_eq!(ack.yiaddr(), RESERVED_IP);
    let r = h.send(&sel(ip(6))).unwrap();
    let nak = decode(&r);
    assert_eq!(msg_type(&nak), T::Nak);
    assert_eq!(nak.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(nak.siaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(nak.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert_eq!(r.destination, broadcast());
}

#[test]
fn request_naming_another_server_gets_no_answer_and_frees_our_offer() {
    let mut h = Harness::new(settings());
    let a = mac(1);
    assert_eq!(h.offer(a), Some(ip(100)));
    let other = with(
        with(
            request(T::Request, a),
            DhcpOption::ServerIdentifier(ip(250)),
        ),
        DhcpOption::RequestedIpAddress(ip(77)),
    );
    assert!(h.send(&other).is_none());
    assert!(h.server.leases().get(ip(100)).is_none(), "offer withdrawn");
    assert_eq!(h.offer(mac(2)), Some(ip(100)));
}

#[test]
fn init_reboot_is_acked_for_a_known_lease_naked_outside_the_subnet_silent_otherwise() {
    let mut h = Harness::new(settings());
    let a = mac(1);
    let leased = h.lease(a);
    let reboot = |m, want| with(request(T::Request, m), DhcpOption::RequestedIpAddress(want));
    let ack = decode(&h.send(&reboot(a, leased)).unwrap());
    assert_eq!((msg_type(&ack), ack.yiaddr()), (T::Ack, leased));
    // Another machine asking for a's address.
    assert_eq!(
        msg_type(&decode(&h.send(&reboot(mac(2), leased)).unwrap())),
        T::Nak
    );
    // Moved from another network.
    assert_eq!(
        msg_type(&decode(
            &h.send(&reboot(mac(2), Ipv4Addr::new(192, 168, 1, 9)))
                .unwrap()
        )),
        T::Nak
    );
    // In the subnet, outside the pool, no record: not ours to judge.
    assert!(h.send(&reboot(mac(3), ip(50))).is_none());
    // A reserved machine asking for its reserved address after a reboot.
    let ack = decode(&h.send(&reboot(RESERVED_MAC, RESERVED_IP)).unwrap());
    assert_eq!(msg_type(&ack), T::Ack);
}

#[test]
fn renewing_is_acked_by_unicast_and_extends_the_lease() {
    let mut h = Harness::new(settings());
    let a = mac(1);
    let leased = h.lease(a);
    h.now = 1800;
    let mut renew = request(T::Request, a);
    renew.set_ciaddr(leased);
    let r = h.send(&renew).unwrap();
    assert_eq!(r.destination, SocketAddrV4::new(leased, 68));
    let ack = decode(&r);
    assert_eq!(
        (msg_type(&ack), ack.yiaddr(), ack.ciaddr()),
        (T::Ack, leased, leased)
    );
    let lease = h.server.leases().get(leased).unwrap();
    assert_eq!(lease.expires, super::super::server::unix(at(1800)) + 3600);
    // Renewing an address it does not hold.
    let mut wrong = request(T::Request, a);
    wrong.set_ciaddr(ip(103));
    assert_eq!(msg_type(&decode(&h.send(&wrong).unwrap())), T::Nak);
}

#[test]
fn release_keeps_the_address_for_the_machine_and_decline_takes_it_out_of_the_pool() {
    let mut h = Harness::new(settings());
    let a = mac(1);
    let leased = h.lease(a);
    let mut rel = with(request(T::Release, a), DhcpOption::ServerIdentifier(SERVER));
    rel.set_ciaddr(leased);
    assert!(h.send(&rel).is_none());
    assert!(!h
        .server
        .leases()
        .get(leased)
        .unwrap()
        .active(super::super::server::unix(at(1))));
    h.now = 10;
    assert_eq!(
        h.offer(a),
        Some(leased),
        "the released address comes back to its machine"
    );

    let dec = with(
        with(request(T::Decline, a), DhcpOption::ServerIdentifier(SERVER)),
        DhcpOption::RequestedIpAddress(leased),
    );
    let (r, log) = logs(|| h.send(&dec));
    assert!(r.is_none());
    assert!(log.contains("DHCPDECLINE"), "{log}");
    let next = h.offer(a).unwrap();
    assert_ne!(next, leased);
    assert_ne!(h.offer(mac(2)), Some(leased));
    // After the hold it is usable again.
    h.now = 10 + 601;
    let mut seen = Vec::new();
    for n in 3..10 {
        seen.extend(h.offer(mac(n)));
    }
    assert!(seen.contains(&leased), "{seen:?}");
}

#[test]
fn inform_gets_configuration_without_an_address_or_lease() {
    let mut h = Harness::new(settings());
    let mut inf = request(T::Inform, mac(9));
    inf.set_ciaddr(ip(60));
    let r = h.send(&inf).unwrap();
    assert_eq!(r.destination, SocketAddrV4::new(ip(60), 68));
    let m = decode(&r);
    assert_eq!(msg_type(&m), T::Ack);
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(m.ciaddr(), ip(60));
    assert!(m.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(m.opts().get(OptionCode::Renewal).is_none());
    assert_eq!(
        m.opts().get(OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    assert!(h.server.leases().is_empty());
    let mut far = request(T::Inform, mac(9));
    far.set_ciaddr(Ipv4Addr::new(192, 168, 0, 9));
    assert!(h.send(&far).is_none(), "INFORM from another subnet");
}

#[test]
fn relayed_requests_are_answered_to_the_relay_and_outside_ones_ignored() {
    let mut h = Harness::new(settings());
    let mut d = with(
        request(T::Discover, mac(1)),
        unknown(82, &[1, 3, b'e', b't', b'h']),
    );
    d.set_giaddr(ip(1));
    let r = h.send(&d).unwrap();
    assert_eq!(r.destination, SocketAddrV4::new(ip(1), 67));
    let m = decode(&r);
    assert_eq!(m.giaddr(), ip(1));
    assert_eq!(m.yiaddr(), ip(100));
    assert!(
        m.opts().get(OptionCode::RelayAgentInformation).is_some(),
        "option 82 echoed"
    );

    let mut far = request(T::Discover, mac(2));
    far.set_giaddr(Ipv4Addr::new(192, 168, 7, 1));
    let (r, log) = logs(|| h.send(&far));
    assert!(r.is_none());
    assert!(log.contains("outside the served subnet"), "{log}");

    // A NAK through a relay carries the broadcast bit.
    let mut nak = with(
        request(T::Request, mac(3)),
        DhcpOption::ServerIdentifier(SERVER),
    );
    nak.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(172, 16, 0, 1)));
    nak.set_giaddr(ip(1));
    let r = h.send(&nak).unwrap();
    assert_eq!(r.destination, SocketAddrV4::new(ip(1), 67));
    let m = decode(&r);
    assert_eq!(msg_type(&m), T::Nak);
    assert!(m.flags().broadcast());
}

fn proxy_settings() -> Settings {
    Settings {
        mode: Mode::Proxy,
        pool: None,
        ..settings()
    }
}

fn pxe(m: Message) -> Message {
    with(
        m,
        DhcpOption::ClassIdentifier(b"PXEClient:Arch:00007:UNDI:003016".to_vec()),
    )
}

#[test]
fn proxy_mode_answers_pxe_clients_with_boot_information_only() {
    let mut h = Harness::new(proxy_settings());
    let d = pxe(with(request(T::Discover, RESERVED_MAC), arch(7)));
    let r = h.send(&d).unwrap();
    assert_eq!(r.destination, broadcast());
    let m = decode(&r);
    assert_eq!(msg_type(&m), T::Offer);
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(m.siaddr(), SERVER);
    assert!(m.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(m.opts().get(OptionCode::SubnetMask).is_none());
    assert!(m.opts().get(OptionCode::Router).is_none());
    assert_eq!(
        m.opts().get(OptionCode::ClassIdentifier),
        Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec()))
    );
    assert_eq!(
        m.opts().get(OptionCode::VendorExtensions),
        Some(&DhcpOption::VendorExtensions(vec![6, 1, 8, 255]))
    );
    assert_eq!(
        m.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(
        m.opts().get(OptionCode::BootfileName),
        Some(&DhcpOption::BootfileName(b"grubx64.efi".to_vec()))
    );
    assert_eq!(fname(&m).as_deref(), Some("grubx64.efi"));

    // Not PXE: silent. A pool machine: default boot, here BIOS only.
    assert!(h.send(&request(T::Discover, RESERVED_MAC)).is_none());
    assert!(h
        .send(&pxe(with(request(T::Discover, mac(1)), arch(7))))
        .is_none());
    let pool = decode(&h.send(&pxe(request(T::Discover, mac(1)))).unwrap());
    assert_eq!(fname(&pool).as_deref(), Some("pool.0"));
    assert!(h.server.leases().is_empty());
}

#[test]
fn proxy_mode_answers_the_boot_server_request_on_port_4011() {
    let mut h = Harness::new(proxy_settings());
    let mut req = pxe(with(
        with(request(T::Request, RESERVED_MAC), arch(7)),
        unknown(97, &[0; 17]),
    ));
    req.set_ciaddr(ip(150));
    let src = Source {
        addr: SocketAddrV4::new(ip(150), 68),
        port: Port::PxeBoot,
    };
    let r = h.server.handle(&encode(&req), src, at(0)).unwrap();
    assert_eq!(r.destination, src.addr);
    let m = decode(&r);
    assert_eq!(msg_type(&m), T::Ack);
    assert_eq!(fname(&m).as_deref(), Some("grubx64.efi"));
    assert!(
        m.opts().get(OptionCode::VendorExtensions).is_none(),
        "no 43 on 4011"
    );
    assert_eq!(
        m.opts().get(OptionCode::ClientMachineIdentifier),
        Some(&DhcpOption::ClientMachineIdentifier(vec![0; 17]))
    );
}

#[test]
fn unknown_machine_without_pool_gets_no_answer_and_a_log_line() {
    let mut h = Harness::new(Settings {
        pool: None,
        ..settings()
    });
    let (r, log) = logs(|| h.send(&request(T::Discover, mac(1))));
    assert!(r.is_none());
    assert!(
        log.contains("no reservation for this MAC and no pool"),
        "{log}"
    );
    assert!(h.send(&request(T::Discover, RESERVED_MAC)).is_some());
}
