//! Bad input: truncated packets, options running past the end, wrong lengths, garbage, and
//! proptest's arbitrary bytes. Each is dropped (with a log line for the malformed ones) and
//! the next valid client is served.

use proptest::prelude::*;

use super::*;
use crate::dhcp::wire::{Request, WireError};

fn discover_bytes() -> Vec<u8> {
    encode(&with(
        with(request(T::Discover, RESERVED_MAC), arch(0)),
        DhcpOption::ClassIdentifier(b"PXEClient".to_vec()),
    ))
}

#[test]
fn every_truncation_of_a_discover_is_dropped_without_panic() {
    let full = discover_bytes();
    let mut h = Harness::new(settings());
    for len in 0..full.len() {
        let r = h.send_raw(&full[..len]);
        if len < 240 {
            assert!(r.is_none(), "{len} bytes answered");
        }
    }
    // Cutting inside an option is reported as such.
    let cut = &full[..full.len() - 5];
    assert!(matches!(
        Request::parse(cut),
        Err(WireError::OptionPastEnd { .. }) | Ok(_)
    ));
    assert!(
        h.send_raw(&full).is_some(),
        "a valid client is still served"
    );
}

#[test]
fn an_option_length_past_the_end_is_reported_with_its_position() {
    let mut b = discover_bytes();
    let end = b.iter().rposition(|&x| x == 255).unwrap();
    b.truncate(end);
    b.extend([50, 200, 10, 0]); // option 50 announcing 200 bytes, 2 present
    let e = Request::parse(&b).unwrap_err();
    assert_eq!(
        e,
        WireError::OptionPastEnd {
            code: 50,
            at: end,
            len: 200,
            have: end + 4
        }
    );
    let mut h = Harness::new(settings());
    let (r, log) = logs(|| h.send_raw(&b));
    assert!(r.is_none());
    assert!(log.contains("dropped a bad DHCP packet"), "{log}");
    assert!(log.contains("runs past the packet end"), "{log}");
    // A length byte missing altogether.
    b.truncate(end);
    b.push(61);
    assert!(matches!(
        Request::parse(&b),
        Err(WireError::OptionPastEnd {
            code: 61,
            len: 0,
            ..
        })
    ));
}

#[test]
fn options_with_impossible_lengths_are_refused() {
    for (code, value) in [
        (53u8, vec![1u8, 1]),
        (50, vec![10, 0, 0]),
        (54, vec![]),
        (93, vec![0]),
        (93, vec![0, 0, 7]),
    ] {
        let mut b = discover_bytes();
        let end = b.iter().rposition(|&x| x == 255).unwrap();
        b.truncate(end);
        b.push(code);
        b.push(value.len() as u8);
        b.extend(&value);
        b.push(255);
        let e = Request::parse(&b);
        assert!(
            matches!(
                e,
                Err(WireError::BadOptionLength { .. }) | Err(WireError::Duplicate(_))
            ),
            "option {code} {value:?}: {e:?}"
        );
    }
}

#[test]
fn not_dhcp_is_dropped() {
    let good = discover_bytes();
    let mut reply = good.clone();
    reply[0] = 2;
    assert_eq!(Request::parse(&reply), Err(WireError::NotRequest(2)));
    let mut bootp = good.clone();
    bootp[236] = 0;
    assert_eq!(Request::parse(&bootp), Err(WireError::NoMagic));
    let mut token_ring = good.clone();
    token_ring[1] = 6;
    assert!(matches!(
        Request::parse(&token_ring),
        Err(WireError::NotEthernet { .. })
    ));
    let mut no_type = good[..240].to_vec();
    no_type.push(255);
    assert_eq!(Request::parse(&no_type), Err(WireError::NoMessageType));
    let mut h = Harness::new(settings());
    for b in [&reply, &bootp, &token_ring, &no_type] {
        assert!(h.send_raw(b).is_none());
    }
}

#[test]
fn bad_packet_logs_are_rate_limited() {
    let mut h = Harness::new(settings());
    let (_, log) = logs(|| {
        for _ in 0..100 {
            h.send_raw(&[1, 2, 3]);
        }
        h.now = 11;
        h.send_raw(&[1, 2, 3]);
    });
    assert_eq!(log.matches("dropped a bad DHCP packet").count(), 2, "{log}");
    assert!(log.contains("suppressed=99"), "{log}");
}

#[test]
fn each_kind_of_bad_packet_gets_its_own_line() {
    let mut h = Harness::new(settings());
    let mut past_end = discover_bytes();
    past_end.truncate(240);
    past_end.extend([53, 1, 1, 50, 200, 10]);
    let mut bad_len = discover_bytes();
    bad_len.truncate(240);
    bad_len.extend([53, 2, 1, 1, 255]);
    let (_, log) = logs(|| {
        for _ in 0..3 {
            h.send_raw(&[1, 2, 3]);
            h.send_raw(&past_end);
            h.send_raw(&bad_len);
        }
    });
    assert_eq!(log.matches("dropped a bad DHCP packet").count(), 3, "{log}");
    for needle in [
        "truncated",
        "runs past the packet end",
        "option 53 has length 2",
    ] {
        assert!(log.contains(needle), "{needle}: {log}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let mut h = Harness::new(settings());
        let _ = h.send_raw(&bytes);
    }

    #[test]
    fn mutated_requests_never_panic_and_replies_decode(
        kind in 0usize..5,
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
        cut in 0usize..400,
    ) {
        let types = [T::Discover, T::Request, T::Inform, T::Decline, T::Release];
        let m = with(
            with(with(request(types[kind], RESERVED_MAC), arch(7)), DhcpOption::UserClass(b"iPXE".to_vec())),
            DhcpOption::RequestedIpAddress(RESERVED_IP),
        );
        let mut b = encode(&m);
        for (at, v) in flips {
            if let Some(x) = b.get_mut(at) {
                *x = v;
            }
        }
        b.truncate(b.len().saturating_sub(cut % 40));
        for mode in [Mode::Full, Mode::Proxy] {
            let mut h = Harness::new(Settings { mode, ..settings() });
            for port in [Port::Dhcp, Port::PxeBoot] {
                let src = Source { addr: SocketAddrV4::new(ip(9), 68), port };
                if let Some(r) = h.server.handle(&b, src, at(0)) {
                    prop_assert!(Message::decode(&mut Decoder::new(&r.bytes)).is_ok());
                }
            }
        }
    }
}
