//! Options: the network set, the boot file by option 93 / iPXE, PXE's 43/60/97, and the iSCSI
//! options 17, 203 and 175 (checked by decoding the reply with dhcproto).

use super::*;

fn offer_to(m: Message) -> Message {
    let mut h = Harness::new(settings());
    decode(&h.send(&m).unwrap())
}

fn file(m: &Message) -> Option<String> {
    let opt = match m.opts().get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(f)) => Some(String::from_utf8(f.clone()).unwrap()),
        None => None,
        other => panic!("{other:?}"),
    };
    let field = fname(m);
    assert_eq!(opt, field, "option 67 and the file field agree");
    opt
}

#[test]
fn offer_carries_the_network_options() {
    let m = offer_to(request(T::Discover, RESERVED_MAC));
    let o = m.opts();
    let expect = [
        DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)),
        DhcpOption::Router(vec![ip(1)]),
        DhcpOption::DomainNameServer(vec![ip(1), ip(3)]),
        DhcpOption::Hostname("client".into()),
        DhcpOption::DomainName("lab.example".into()),
        DhcpOption::BroadcastAddr(ip(255)),
        DhcpOption::AddressLeaseTime(3600),
        DhcpOption::Renewal(1800),
        DhcpOption::Rebinding(3150),
        DhcpOption::ServerIdentifier(SERVER),
        DhcpOption::TFTPServerName(b"10.0.0.2".to_vec()),
        DhcpOption::RootPath(ROOT_PATH.into()),
    ];
    for e in expect {
        assert_eq!(o.get(OptionCode::from(&e)), Some(&e));
    }
    assert_eq!(raw_opt(&m, 203).unwrap(), INITIATOR.as_bytes());
    assert_eq!(file(&m).as_deref(), Some("pxelinux.0"));
    // Not PXE, not iPXE, did not ask for 175: no 43, 60, 175.
    for code in [43u8, 60, 175] {
        assert!(o.get(OptionCode::from(code)).is_none(), "option {code}");
    }
}

#[test]
fn option_93_is_read_as_a_raw_number() {
    for (arch_value, expected) in [
        (0u16, Some("pxelinux.0")),
        (7, Some("grubx64.efi")),
        (9, Some("grubx64.efi")),
        (6, None),
        (11, None),
    ] {
        let m = offer_to(with(request(T::Discover, RESERVED_MAC), arch(arch_value)));
        assert_eq!(file(&m).as_deref(), expected, "arch {arch_value}");
    }
    // A list: the first is the client's preference.
    let m = offer_to(with(
        request(T::Discover, RESERVED_MAC),
        unknown(93, &[0, 7, 0, 0]),
    ));
    assert_eq!(file(&m).as_deref(), Some("grubx64.efi"));
}

#[test]
fn pxe_clients_get_option_60_43_and_their_guid_back() {
    let guid = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    let m = offer_to(with(
        with(
            with(
                request(T::Discover, RESERVED_MAC),
                DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
            ),
            arch(0),
        ),
        DhcpOption::ClientMachineIdentifier(guid.to_vec()),
    ));
    let o = m.opts();
    assert_eq!(
        o.get(OptionCode::ClassIdentifier),
        Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec()))
    );
    assert_eq!(
        o.get(OptionCode::VendorExtensions),
        Some(&DhcpOption::VendorExtensions(vec![6, 1, 8, 255]))
    );
    assert_eq!(
        o.get(OptionCode::ClientMachineIdentifier),
        Some(&DhcpOption::ClientMachineIdentifier(guid.to_vec()))
    );
}

/// (code, value) pairs of an encapsulated option.
fn sub_options(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while let [code, len, rest @ ..] = data {
        let (v, tail) = rest.split_at(usize::from(*len));
        out.push((*code, v.to_vec()));
        data = tail;
    }
    out
}

#[test]
fn ipxe_by_user_class_gets_the_ipxe_file_no_pxedhcp_and_chap_in_175() {
    let m = offer_to(with(
        with(
            request(T::Discover, RESERVED_MAC),
            DhcpOption::UserClass(b"iPXE".to_vec()),
        ),
        arch(0),
    ));
    assert_eq!(file(&m).as_deref(), Some("boot.ipxe"));
    let subs = sub_options(&raw_opt(&m, 175).expect("option 175"));
    assert_eq!(
        subs,
        vec![
            (176, vec![1]),
            (190, b"client".to_vec()),
            (191, b"client-secret".to_vec()),
            (192, b"target".to_vec()),
            (193, b"target-secret".to_vec()),
        ]
    );
    assert_eq!(raw_opt(&m, 203).unwrap(), INITIATOR.as_bytes());
}

#[test]
fn ipxe_by_option_175_and_the_agent_prl_get_175() {
    // The pxeroot initiator agent: PRL from initiator/src/net/dhcp, 175 = iSCSI feature.
    let prl = [1u8, 3, 6, 12, 15, 17, 26, 28, 43, 51, 54, 119, 175, 203];
    let m = offer_to(with(
        with(
            request(T::Discover, RESERVED_MAC),
            DhcpOption::ParameterRequestList(prl.iter().map(|&c| OptionCode::from(c)).collect()),
        ),
        unknown(175, &[0x11, 1, 1]),
    ));
    assert_eq!(file(&m).as_deref(), Some("boot.ipxe"));
    let subs = sub_options(&raw_opt(&m, 175).unwrap());
    assert!(subs.contains(&(191, b"client-secret".to_vec())));
    assert_eq!(
        m.opts().get(OptionCode::RootPath),
        Some(&DhcpOption::RootPath(ROOT_PATH.into()))
    );
}

#[test]
fn option_175_goes_to_a_client_that_asks_for_it_without_no_pxedhcp() {
    let m = offer_to(with(
        request(T::Discover, RESERVED_MAC),
        DhcpOption::ParameterRequestList(vec![OptionCode::from(175u8)]),
    ));
    let subs = sub_options(&raw_opt(&m, 175).unwrap());
    assert_eq!(
        subs.first().map(|s| s.0),
        Some(190),
        "no 176 for a non-iPXE client"
    );
    assert_eq!(file(&m).as_deref(), Some("pxelinux.0"));
}

#[test]
fn pool_clients_get_the_default_boot_and_no_iscsi_options() {
    let m = offer_to(with(
        request(T::Discover, mac(1)),
        DhcpOption::UserClass(b"iPXE".to_vec()),
    ));
    assert_eq!(
        file(&m).as_deref(),
        Some("pool.0"),
        "no ipxe default: by architecture"
    );
    assert!(m.opts().get(OptionCode::RootPath).is_none());
    assert!(m.opts().get(OptionCode::Hostname).is_none());
    // 175 only carries 176 here.
    assert_eq!(
        sub_options(&raw_opt(&m, 175).unwrap()),
        vec![(176, vec![1])]
    );
}

#[test]
fn secrets_never_appear_in_logs() {
    let (_, log) = logs(|| {
        let mut h = Harness::new(settings());
        let ipxe = with(
            request(T::Discover, RESERVED_MAC),
            DhcpOption::UserClass(b"iPXE".to_vec()),
        );
        h.send(&ipxe).unwrap();
        let ipxe = with(
            with(
                request(T::Request, RESERVED_MAC),
                DhcpOption::ServerIdentifier(SERVER),
            ),
            DhcpOption::RequestedIpAddress(RESERVED_IP),
        );
        h.send(&with(ipxe, DhcpOption::UserClass(b"iPXE".to_vec())))
            .unwrap();
        tracing::info!(settings = ?h.server.settings(), "settings");
    });
    assert!(log.contains("DHCPACK"), "{log}");
    assert!(
        !log.contains("client-secret") && !log.contains("target-secret"),
        "{log}"
    );
}

#[test]
fn pxe_firmware_gets_no_root_path_initiator_or_credentials() {
    // iPXE as the NIC's ROM: PXEClient vendor class, user class iPXE, option 175. Given a root
    // path it would hook the disk as a BIOS drive, which delays the kernel's start by a minute.
    let m = offer_to(with(
        with(
            with(
                request(T::Discover, RESERVED_MAC),
                DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
            ),
            DhcpOption::UserClass(b"iPXE".to_vec()),
        ),
        unknown(175, &[0x11, 1, 1]),
    ));
    assert!(m.opts().get(OptionCode::RootPath).is_none());
    assert!(raw_opt(&m, 203).is_none());
    assert_eq!(
        sub_options(&raw_opt(&m, 175).unwrap()),
        vec![(176, vec![1])],
        "only no-ProxyDHCP-wait, no CHAP"
    );
    assert_eq!(file(&m).as_deref(), Some("boot.ipxe"));
}
