//! The pool: allocation order, reuse, offer holds, exhaustion, persistence, and a flood.

use std::collections::HashMap;

use super::*;

#[test]
fn pool_clients_get_distinct_addresses_and_keep_them() {
    let mut h = Harness::new(settings());
    let a = h.lease(mac(1));
    let b = h.lease(mac(2));
    assert_eq!((a, b), (ip(100), ip(101)));
    h.now = 100;
    assert_eq!(h.offer(mac(1)), Some(a), "previous lease preferred");
    assert_eq!(h.lease(mac(2)), b);
}

#[test]
fn requested_address_is_honoured_when_free_only() {
    let mut h = Harness::new(settings());
    let a = h.lease(mac(1));
    let ask = |m, want| {
        with(
            request(T::Discover, m),
            DhcpOption::RequestedIpAddress(want),
        )
    };
    let r = decode(&h.send(&ask(mac(2), ip(103))).unwrap());
    assert_eq!(r.yiaddr(), ip(103));
    let r = decode(&h.send(&ask(mac(3), a)).unwrap());
    assert_ne!(
        r.yiaddr(),
        a,
        "a leased address is not given away on request"
    );
    // Reserved, server, outside the pool: never.
    for want in [RESERVED_IP, SERVER, ip(20)] {
        let r = decode(&h.send(&ask(mac(4), want)).unwrap());
        assert_ne!(r.yiaddr(), want);
    }
}

#[test]
fn reserved_and_server_addresses_inside_the_pool_are_skipped() {
    let mut s = settings();
    s.pool = Some((ip(1), ip(6)));
    s.network = Ipv4Addr::new(10, 0, 0, 0);
    let mut h = Harness::new(s);
    // .1 router, .2 server, .5 reserved: .3, .4, .6.
    let got: Vec<_> = (1..=4).map(|n| h.offer(mac(n))).collect();
    assert_eq!(got, vec![Some(ip(3)), Some(ip(4)), Some(ip(6)), None]);
}

#[test]
fn offers_hold_their_address_then_expire() {
    let mut h = Harness::new(settings());
    for n in 1..=5 {
        assert!(h.offer(mac(n)).is_some());
    }
    let (r, log) = logs(|| h.offer(mac(6)));
    assert_eq!(r, None, "all five held by offers");
    assert!(log.contains("DHCP pool exhausted"), "{log}");
    h.now = 61;
    // The oldest expired offer is reused; the MAC that held it gets another one later.
    assert_eq!(h.offer(mac(6)), Some(ip(100)));
    // An expired offer can still be REQUESTed by its client if nobody took the address.
    let late = with(
        with(
            request(T::Request, mac(2)),
            DhcpOption::ServerIdentifier(SERVER),
        ),
        DhcpOption::RequestedIpAddress(ip(101)),
    );
    assert_eq!(msg_type(&decode(&h.send(&late).unwrap())), T::Ack);
    // mac(1) lost .100 to mac(6): its REQUEST for it is refused.
    let stolen = with(
        with(
            request(T::Request, mac(1)),
            DhcpOption::ServerIdentifier(SERVER),
        ),
        DhcpOption::RequestedIpAddress(ip(100)),
    );
    assert_eq!(msg_type(&decode(&h.send(&stolen).unwrap())), T::Nak);
}

#[test]
fn bound_leases_are_never_reused_while_active_and_reused_after_expiry() {
    let mut h = Harness::new(settings());
    for n in 1..=5 {
        h.lease(mac(n));
    }
    h.now = 3599;
    assert_eq!(h.offer(mac(9)), None);
    h.now = 3601;
    assert_eq!(h.offer(mac(9)), Some(ip(100)));
}

#[test]
fn leases_survive_a_restart_and_a_bad_line_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leases");
    let s = Settings {
        lease_file: Some(file.clone()),
        ..settings()
    };
    let mut h = Harness::new(s.clone());
    let a = h.lease(mac(1));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&format!("{a} 02:00:00:00:00:01 ")), "{text}");
    // Damage the file: one garbage line, one line with a bad MAC.
    std::fs::write(
        &file,
        format!("{text}this is not a lease\n10.0.0.104 02:00:00:00:00:zz 1900000000\n10.0.0.103 02:00:00:00:00:03 1900000000\n"),
    )
    .unwrap();
    drop(h);
    let ((), log) = logs(|| {
        let mut h = Harness::new(s.clone());
        h.now = 10;
        assert_ne!(
            h.offer(mac(2)),
            Some(a),
            "a new machine does not get a's address"
        );
        assert_ne!(h.offer(mac(4)), Some(ip(103)));
        assert_eq!(h.offer(mac(1)), Some(a), "a gets its address back");
        assert_eq!(h.offer(mac(3)), Some(ip(103)));
    });
    let lines = text.lines().count();
    assert!(
        log.contains(&format!("line={}", lines + 1)),
        "line number of the garbage line: {log}"
    );
    assert!(log.contains(&format!("line={}", lines + 2)), "{log}");
    assert!(
        log.contains("skipping a bad line of the lease file"),
        "{log}"
    );
}

#[test]
fn leases_that_no_longer_fit_are_dropped_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leases");
    std::fs::write(
        &file,
        "10.0.0.101 02:00:00:00:00:01 1900000000\n10.0.0.150 02:00:00:00:00:02 1900000000\n\
         10.0.0.102 52:54:00:12:34:56 1900000000\n",
    )
    .unwrap();
    let server = Server::new(Settings {
        lease_file: Some(file.clone()),
        ..settings()
    })
    .unwrap();
    let kept: Vec<_> = server.leases().iter().map(|(ip, _)| ip).collect();
    assert_eq!(kept, vec![ip(101)]);
    // The file is rewritten at start.
    assert!(!std::fs::read_to_string(&file)
        .unwrap()
        .contains("10.0.0.150"));
}

#[test]
fn an_unwritable_lease_file_fails_the_start() {
    let e = Server::new(Settings {
        lease_file: Some("/nonexistent-dir/leases".into()),
        ..settings()
    })
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent-dir/leases"), "{e}");
}

#[test]
fn a_flood_of_1000_macs_takes_only_free_addresses_and_reserved_clients_are_still_served() {
    let mut h = Harness::new(settings());
    let kept = h.lease(mac(1));
    let mut owner: HashMap<Ipv4Addr, [u8; 6]> = HashMap::new();
    owner.insert(kept, mac(1));
    let ((), log) = logs(|| {
        for n in 1000..2000 {
            if let Some(got) = h.offer(mac(n)) {
                let prev = owner.insert(got, mac(n));
                assert!(
                    prev.is_none(),
                    "{got} offered twice (to {prev:?} and {:?})",
                    mac(n)
                );
            }
        }
    });
    assert_eq!(owner.len(), 5, "pool of five");
    assert_eq!(
        log.matches("DHCP pool exhausted").count(),
        1,
        "rate-limited: {log}"
    );
    // The bound client still gets its address, and renews it.
    assert_eq!(h.offer(mac(1)), Some(kept));
    assert_eq!(h.lease(mac(1)), kept);
    // The reserved client is served during the flood.
    let r = decode(&h.send(&request(T::Discover, RESERVED_MAC)).unwrap());
    assert_eq!(r.yiaddr(), RESERVED_IP);
}

#[test]
fn bad_settings_are_refused() {
    for s in [
        Settings {
            pool: Some((ip(200), ip(100))),
            ..settings()
        },
        Settings {
            pool: Some((ip(100), Ipv4Addr::new(10, 0, 1, 5))),
            ..settings()
        },
        Settings {
            prefix: 33,
            ..settings()
        },
    ] {
        assert!(Server::new(s).is_err());
    }
    let mut dup = settings();
    dup.hosts.push(dup.hosts[0].clone());
    assert!(Server::new(dup)
        .unwrap_err()
        .to_string()
        .contains("two entries"));
}

#[test]
fn an_entry_without_an_address_gets_one_from_the_pool_and_keeps_its_boot_options() {
    let mut s = settings();
    s.hosts[0].ip = Ipv4Addr::UNSPECIFIED;
    let mut h = Harness::new(s);
    let got = h.lease(RESERVED_MAC);
    assert_eq!(got, ip(100));
    let offer = decode(&h.send(&request(T::Discover, RESERVED_MAC)).unwrap());
    assert_eq!(offer.yiaddr(), ip(100));
    assert_eq!(
        offer.opts().get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("client".into()))
    );
    assert!(offer.opts().get(OptionCode::RootPath).is_some());
}

#[test]
fn the_lease_file_is_a_journal_replayed_in_order_and_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leases");
    std::fs::write(
        &file,
        "10.0.0.100 02:00:00:00:00:01 1900000000\n\
         10.0.0.101 02:00:00:00:00:02 1900000000\n\
         10.0.0.101 -\n\
         10.0.0.102 02:00:00:00:00:01 1900000000\n",
    )
    .unwrap();
    let s = Settings {
        lease_file: Some(file.clone()),
        ..settings()
    };
    let mut h = Harness::new(s.clone());
    let kept: Vec<_> = h
        .server
        .leases()
        .iter()
        .map(|(ip, l)| (ip, l.mac))
        .collect();
    assert_eq!(kept, vec![(ip(102), mac(1))], "moved, and taken back");
    // Compacted at start.
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        1,
        "{text}"
    );
    // Renewals append one line each, then the file is compacted again.
    let a = h.lease(mac(1));
    assert_eq!(a, ip(102));
    let mut most = 0;
    for n in 0..200u64 {
        h.now = 10 + n;
        let mut renew = request(T::Request, mac(1));
        renew.set_ciaddr(a);
        assert!(h.send(&renew).is_some());
        most = most.max(std::fs::read_to_string(&file).unwrap().lines().count());
    }
    assert!(
        most > 10 && most < 100,
        "journal grows, then is compacted: at most {most} lines"
    );
    // A decline is journaled: after a restart the address is not the machine's any more.
    let dec = with(
        request(T::Decline, mac(1)),
        DhcpOption::RequestedIpAddress(a),
    );
    assert!(h.send(&dec).is_none());
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .ends_with(&format!("{a} -\n")));
    drop(h);
    let h = Harness::new(s);
    assert!(h.server.leases().is_empty());
}
