//! The network phase: bring the boot NIC up and give it an address, before the iSCSI login.
//!
//! [`bring_up`] follows the [`Plan`]:
//! 1. find the interface ([`iface`]: by `BOOTIF` MAC, by name, or the first physical one with
//!    carrier), waiting up to `pxeroot.link_timeout` for it to appear, because drivers may
//!    register it a moment after their module loads;
//! 2. set it up through rtnetlink ([`link`], a blocking `NETLINK_ROUTE` socket) and wait for
//!    carrier *before* sending anything (klibc ipconfig sends into a link that has no carrier
//!    yet and then sits out a 10 s retransmission);
//! 3. DHCPv4 ([`dhcp`], sans-IO, driven by [`socket`]), a static address, or nothing, as
//!    `ip=` says; then address with prefix and broadcast, default route and MTU, flushing
//!    nothing else.
//!
//! Interfaces and carrier are read from sysfs whenever rtnetlink announces a link change
//! ([`crate::events`]), and at least every [`POLL_INTERVAL`]: no busy polling while the
//! module loader needs the CPU.
//! [`write_run_files`] then records the result where initramfs-tools and open-iscsi look.
//!
//! Every step logs one human line; no secret is ever logged (the DHCP-provided CHAP secrets
//! stay in [`Secret`](pxeroot_proto::chap::Secret)s inside [`NetUp::dhcp`]).

pub mod cli;
pub mod dhcp;
mod error;
pub mod iface;
pub mod link;
pub mod runfile;
pub mod socket;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

use crate::cmdline::Mac;
use crate::config::DhcpInfo;
use crate::plan::{Addressing, Interface, Plan, REDACTED};
pub use dhcp::Lease;
pub use error::NetError;
use iface::{Choice, SysIface};
use link::Rtnl;
pub use runfile::write_run_files;

/// Where interfaces are listed.
pub const SYS_CLASS_NET: &str = "/sys/class/net";
/// Longest wait between two looks at sysfs when no link event arrives.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What the network phase configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetUp {
    /// The interface name.
    pub ifname: String,
    /// Its index.
    pub ifindex: u32,
    /// Its MAC.
    pub mac: Mac,
    /// The address and prefix length applied, if any.
    pub address: Option<(Ipv4Addr, u8)>,
    /// The default gateway applied, if any.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// Host name (DHCP option 12 or `ip=`).
    pub hostname: Option<String>,
    /// DNS domain (option 15).
    pub domain: Option<String>,
    /// The MTU applied, if any.
    pub mtu: Option<u16>,
    /// The DHCP lease, when DHCP was used.
    pub lease: Option<Lease>,
    /// What DHCP contributes to the plan (options 17, 203, 175.190-193).
    #[serde(serialize_with = "ser_dhcp")]
    pub dhcp: Option<DhcpInfo>,
}

fn ser_dhcp<S: Serializer>(d: &Option<DhcpInfo>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct View<'a> {
        root_path: &'a Option<String>,
        initiator_name: &'a Option<String>,
        username: &'a Option<String>,
        password: Option<&'static str>,
        in_username: &'a Option<String>,
        in_password: Option<&'static str>,
    }
    d.as_ref()
        .map(|d| View {
            root_path: &d.root_path,
            initiator_name: &d.initiator_name,
            username: &d.username,
            password: d.password.as_ref().map(|_| REDACTED),
            in_username: &d.in_username,
            in_password: d.in_password.as_ref().map(|_| REDACTED),
        })
        .serialize(s)
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// What the addressing step does, decided before anything is touched.
enum Method {
    Dhcp,
    Static {
        address: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        dns: Vec<Ipv4Addr>,
        hostname: Option<String>,
    },
    LinkOnly,
}

fn method(a: &Addressing) -> Result<Method, NetError> {
    let v4 = |ip: &IpAddr| match ip {
        IpAddr::V4(v) => Some(*v),
        IpAddr::V6(_) => None,
    };
    Ok(match a {
        Addressing::Dhcp => Method::Dhcp,
        Addressing::Dhcp6 => return Err(NetError::Unsupported("dhcp6")),
        Addressing::Auto6 => return Err(NetError::Unsupported("auto6")),
        Addressing::None => Method::LinkOnly,
        Addressing::Static {
            address,
            prefix_len,
            gateway,
            dns,
            hostname,
        } => Method::Static {
            address: v4(address).ok_or(NetError::Unsupported("a static IPv6 address"))?,
            prefix_len: *prefix_len,
            gateway: match gateway {
                Some(g) => Some(v4(g).ok_or(NetError::Unsupported("an IPv6 gateway"))?),
                None => None,
            },
            dns: dns.iter().filter_map(v4).collect(),
            hostname: hostname.clone(),
        },
    })
}

/// Brings the boot interface up and configures it according to the plan.
///
/// # Errors
/// [`NetError`] naming the interface and the cause; see [`NetError::exit_code`].
pub fn bring_up(plan: &Plan, log: &mut dyn FnMut(&str)) -> Result<NetUp, NetError> {
    bring_up_in(plan, Path::new(SYS_CLASS_NET), log)
}

/// [`bring_up`] with interfaces listed under `sys`.
///
/// # Errors
/// As [`bring_up`].
pub fn bring_up_in(plan: &Plan, sys: &Path, log: &mut dyn FnMut(&str)) -> Result<NetUp, NetError> {
    let method = method(&plan.addressing)?;
    let t0 = Instant::now();
    let mut rtnl = Rtnl::new().map_err(|source| NetError::Netlink {
        ifname: "-".into(),
        source,
    })?;
    let link_timeout = Duration::from_secs(u64::from(plan.retry.link_timeout_secs));
    let mut set_up = |i: &SysIface| {
        rtnl.set_up(i.ifindex).map_err(|source| NetError::Netlink {
            ifname: i.name.clone(),
            source,
        })
    };
    let nic = wait_for_link(&plan.interface, sys, &mut set_up, t0, link_timeout)?;
    let ifname = nic.name.clone();
    let mac = nic.mac.ok_or_else(|| NetError::NoMac {
        ifname: ifname.clone(),
    })?;
    log(&format!(
        "{ifname}: link up, carrier after {} s",
        secs(t0.elapsed())
    ));
    let nl = |source| NetError::Netlink {
        ifname: ifname.clone(),
        source,
    };
    let mut up = NetUp {
        ifname: ifname.clone(),
        ifindex: nic.ifindex,
        mac,
        address: None,
        gateway: None,
        dns: Vec::new(),
        hostname: None,
        domain: None,
        mtu: None,
        lease: None,
        dhcp: None,
    };
    if let Some(mtu) = plan.mtu {
        rtnl.set_mtu(nic.ifindex, mtu).map_err(nl)?;
        up.mtu = Some(mtu);
    }
    match method {
        Method::LinkOnly => {}
        Method::Static {
            address,
            prefix_len,
            gateway,
            dns,
            hostname,
        } => {
            rtnl.add_address(nic.ifindex, address, prefix_len)
                .map_err(nl)?;
            if let Some(gw) = gateway {
                rtnl.add_default_route(nic.ifindex, gw, false).map_err(nl)?;
            }
            log(&format!(
                "{ifname}: static {address}/{prefix_len}{}",
                gateway.map(|g| format!(", router {g}")).unwrap_or_default()
            ));
            up.address = Some((address, prefix_len));
            up.gateway = gateway;
            up.dns = dns;
            up.hostname = hostname;
        }
        Method::Dhcp => {
            let t1 = Instant::now();
            let timeout_secs = plan.retry.dhcp_timeout_secs;
            let bound = run_dhcp(&ifname, mac, timeout_secs, plan.debug, log)?;
            let lease = bound.lease;
            for w in &bound.warnings {
                log(&format!("{ifname}: DHCP: {w}"));
            }
            if plan.mtu.is_none() {
                if let Some(mtu) = lease.mtu {
                    rtnl.set_mtu(nic.ifindex, mtu).map_err(nl)?;
                    up.mtu = Some(mtu);
                }
            }
            rtnl.add_address(nic.ifindex, lease.address, lease.prefix_len)
                .map_err(nl)?;
            let gateway = lease.routers.first().copied();
            if let Some(gw) = gateway {
                rtnl.add_default_route(nic.ifindex, gw, true).map_err(nl)?;
            }
            log(&format!(
                "{ifname}: DHCP {}/{} from {} in {} s{}{}",
                lease.address,
                lease.prefix_len,
                lease.server_id,
                secs(t1.elapsed()),
                gateway.map(|g| format!(", router {g}")).unwrap_or_default(),
                up.mtu.map(|m| format!(", MTU {m}")).unwrap_or_default(),
            ));
            up.address = Some((lease.address, lease.prefix_len));
            up.gateway = gateway;
            up.dns.clone_from(&lease.dns);
            up.hostname.clone_from(&lease.hostname);
            up.domain.clone_from(&lease.domain);
            up.dhcp = Some(bound.info);
            up.lease = Some(lease);
        }
    }
    Ok(up)
}

/// Waits for the wanted interface, sets it (or, for "first with carrier", every candidate)
/// up once with `set_up`, and waits for carrier.
fn wait_for_link(
    want: &Interface,
    sys: &Path,
    set_up: &mut dyn FnMut(&SysIface) -> Result<(), NetError>,
    t0: Instant,
    timeout: Duration,
) -> Result<SysIface, NetError> {
    let deadline = t0 + timeout;
    let mut raised: Vec<u32> = Vec::new();
    // Subscribed before the first look, so that no change falls between look and wait.
    let events = crate::events::Events::open(crate::events::Kind::Link);
    loop {
        let all = iface::scan(sys).map_err(|source| NetError::Sysfs {
            path: sys.to_path_buf(),
            source,
        })?;
        let candidates = match iface::choose(want, &all) {
            Choice::One(i) => vec![i],
            Choice::Candidates(c) => c,
            Choice::Missing => Vec::new(),
        };
        for c in &candidates {
            if !raised.contains(&c.ifindex) {
                set_up(c)?;
                raised.push(c.ifindex);
            }
        }
        if let Some(c) = candidates
            .iter()
            .find(|c| iface::carrier(sys, &c.name) == Some(true))
        {
            return Ok(c.clone());
        }
        if Instant::now() >= deadline {
            let secs = u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX);
            let have = iface::describe_all(&all);
            return Err(match (want, candidates.is_empty()) {
                (Interface::Mac { mac, .. }, true) => NetError::NoSuchMac {
                    mac: *mac,
                    have,
                    secs,
                },
                (Interface::Name { name, from }, true) => NetError::NoSuchName {
                    name: name.clone(),
                    from,
                    have,
                    secs,
                },
                (Interface::FirstWithCarrier, true) => NetError::NoInterface { have, secs },
                (_, false) => NetError::NoCarrier {
                    ifname: candidates
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    secs,
                },
            });
        }
        events.wait(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

fn run_dhcp(
    ifname: &str,
    mac: Mac,
    timeout_secs: u32,
    debug: bool,
    log: &mut dyn FnMut(&str),
) -> Result<dhcp::Bound, NetError> {
    let sock = socket::DhcpSocket::open(ifname).map_err(|source| NetError::Socket {
        ifname: ifname.into(),
        source,
    })?;
    let timeout = Duration::from_secs(u64::from(timeout_secs));
    let mut client = dhcp::Client::new(mac, Instant::now(), timeout, dhcp::OsEntropy::new());
    let mut prefixed = |m: &str| log(&format!("{ifname}: {m}"));
    socket::run(&mut client, &sock, &mut prefixed, debug).map_err(|e| match e {
        socket::RunError::Socket(source) => NetError::Socket {
            ifname: ifname.into(),
            source,
        },
        socket::RunError::TimedOut(stats) => {
            let ifname = ifname.to_owned();
            match stats.last_nak {
                Some(server) => NetError::Nak {
                    ifname,
                    server,
                    naks: stats.naks,
                    secs: timeout_secs,
                },
                None if stats.offers > 0 => NetError::NoAck {
                    ifname,
                    secs: timeout_secs,
                    requests: stats.requests,
                    offers: stats.offers,
                },
                None => NetError::NoOffer {
                    ifname,
                    secs: timeout_secs,
                    discovers: stats.discovers,
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::link::RtnlError;
    use super::*;

    #[test]
    fn messages_name_the_cause_and_codes_split_link_from_dhcp() {
        let cases: Vec<(NetError, &str, u8)> = vec![
            (
                NetError::NoSuchMac {
                    mac: Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
                    have: "eth0 52:54:00:aa:bb:cc".into(),
                    secs: 10,
                },
                "no interface with MAC 52:54:00:12:34:56 (have: eth0 52:54:00:aa:bb:cc) after 10 s",
                10,
            ),
            (
                NetError::NoCarrier {
                    ifname: "eth0".into(),
                    secs: 10,
                },
                "eth0: no carrier after 10 s",
                10,
            ),
            (
                NetError::NoOffer {
                    ifname: "eth0".into(),
                    secs: 30,
                    discovers: 5,
                },
                "eth0: no DHCP offer after 30 s (sent 5 DISCOVERs)",
                11,
            ),
            (
                NetError::Nak {
                    ifname: "eth0".into(),
                    server: Ipv4Addr::new(10, 0, 0, 2),
                    naks: 3,
                    secs: 30,
                },
                "eth0: DHCP server 10.0.0.2 sent NAK",
                11,
            ),
            (
                NetError::Netlink {
                    ifname: "eth0".into(),
                    source: RtnlError {
                        op: "set MTU 9000".into(),
                        detail: "Invalid argument".into(),
                    },
                },
                "eth0: netlink: set MTU 9000: Invalid argument",
                10,
            ),
            (
                NetError::Unsupported("dhcp6"),
                "ip=: dhcp6 is not supported yet",
                2,
            ),
        ];
        for (e, text, code) in cases {
            assert!(e.to_string().starts_with(text), "{e} vs {text}");
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }

    fn add_iface(sys: &Path, name: &str, index: u32, mac: &str, carrier: Option<&str>) {
        let d = sys.join(name);
        std::fs::create_dir_all(d.join("device")).unwrap();
        std::fs::write(d.join("address"), format!("{mac}\n")).unwrap();
        std::fs::write(d.join("type"), "1\n").unwrap();
        if let Some(c) = carrier {
            std::fs::write(d.join("carrier"), c).unwrap();
        }
        // ifindex last: scan() skips an entry until it has one.
        std::fs::write(d.join("ifindex"), format!("{index}\n")).unwrap();
    }

    fn wait(
        want: &Interface,
        sys: &Path,
        ms: u64,
        raised: &mut Vec<String>,
    ) -> Result<SysIface, NetError> {
        let mut up = |i: &SysIface| {
            raised.push(i.name.clone());
            Ok(())
        };
        wait_for_link(
            want,
            sys,
            &mut up,
            Instant::now(),
            Duration::from_millis(ms),
        )
    }

    #[test]
    fn waits_for_the_interface_to_appear_and_for_carrier() {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path().to_path_buf();
        let late = sys.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            add_iface(&late, "eth0", 2, "52:54:00:12:34:56", Some("0\n"));
            std::thread::sleep(Duration::from_millis(60));
            std::fs::write(late.join("eth0/carrier"), "1\n").unwrap();
        });
        let want = Interface::Mac {
            mac: Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            from: "BOOTIF",
        };
        let mut raised = Vec::new();
        let t0 = Instant::now();
        let got = wait(&want, &sys, 5000, &mut raised).unwrap();
        writer.join().unwrap();
        assert_eq!(got.name, "eth0");
        assert!(t0.elapsed() >= Duration::from_millis(120));
        assert_eq!(raised, ["eth0"], "set up once, before carrier");
    }

    #[test]
    fn first_with_carrier_raises_every_candidate() {
        let t = tempfile::tempdir().unwrap();
        add_iface(t.path(), "eth0", 2, "52:54:00:00:00:01", Some("0\n"));
        add_iface(t.path(), "eth1", 3, "52:54:00:00:00:02", Some("1\n"));
        let mut raised = Vec::new();
        let got = wait(&Interface::FirstWithCarrier, t.path(), 1000, &mut raised).unwrap();
        assert_eq!(got.name, "eth1");
        assert_eq!(raised, ["eth0", "eth1"]);
    }

    #[test]
    fn timeouts_name_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
        add_iface(t.path(), "eth0", 2, "52:54:00:aa:bb:cc", Some("0\n"));
        let mut raised = Vec::new();
        let mac = Interface::Mac {
            mac: Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            from: "BOOTIF",
        };
        let e = wait(&mac, t.path(), 50, &mut raised).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "no interface with MAC 52:54:00:12:34:56 (have: eth0 52:54:00:aa:bb:cc)"
            ),
            "{e}"
        );
        let e = wait(&Interface::FirstWithCarrier, t.path(), 50, &mut raised).unwrap_err();
        assert!(e.to_string().starts_with("eth0: no carrier after"), "{e}");
        assert_eq!(e.exit_code(), 10);
        let name = Interface::Name {
            name: "eth7".into(),
            from: "ip",
        };
        let e = wait(&name, t.path(), 50, &mut raised).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no interface named eth7 (from ip;"),
            "{e}"
        );
        let empty = tempfile::tempdir().unwrap();
        let e = wait(&Interface::FirstWithCarrier, empty.path(), 50, &mut raised).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no physical network interface (have: none)"),
            "{e}"
        );
        let e = wait(&name, &empty.path().join("gone"), 50, &mut raised).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot list network interfaces"),
            "{e}"
        );
    }

    #[test]
    fn addressing_is_checked_before_anything_is_touched() {
        assert!(matches!(method(&Addressing::Dhcp), Ok(Method::Dhcp)));
        assert!(matches!(method(&Addressing::None), Ok(Method::LinkOnly)));
        for a in [Addressing::Dhcp6, Addressing::Auto6] {
            assert!(matches!(method(&a), Err(NetError::Unsupported(_))));
        }
        let v6 = Addressing::Static {
            address: "2001:db8::5".parse().unwrap(),
            prefix_len: 64,
            gateway: None,
            dns: vec![],
            hostname: None,
        };
        assert!(matches!(method(&v6), Err(NetError::Unsupported(_))));
        let v4 = Addressing::Static {
            address: "192.0.2.9".parse().unwrap(),
            prefix_len: 24,
            gateway: Some("192.0.2.1".parse().unwrap()),
            dns: vec![
                "192.0.2.53".parse().unwrap(),
                "2001:db8::53".parse().unwrap(),
            ],
            hostname: Some("h".into()),
        };
        let Ok(Method::Static {
            address,
            gateway,
            dns,
            ..
        }) = method(&v4)
        else {
            panic!("static v4 refused");
        };
        assert_eq!(address, Ipv4Addr::new(192, 0, 2, 9));
        assert_eq!(gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(dns, [Ipv4Addr::new(192, 0, 2, 53)]);
    }

    #[test]
    fn json_redacts_dhcp_secrets() {
        let up = NetUp {
            ifname: "eth0".into(),
            ifindex: 2,
            mac: Mac([2, 0, 0, 0, 0, 1]),
            address: None,
            gateway: None,
            dns: vec![],
            hostname: None,
            domain: None,
            mtu: None,
            lease: None,
            dhcp: Some(DhcpInfo {
                username: Some("alice".into()),
                password: Some(pxeroot_proto::chap::Secret::new("S3cr3tPassw0rd")),
                in_password: Some(pxeroot_proto::chap::Secret::new("Other-S3cret")),
                ..DhcpInfo::default()
            }),
        };
        let json = serde_json::to_string(&up).unwrap();
        assert!(!json.contains("S3cr3t"), "{json}");
        assert!(json.contains("\"password\":\"<redacted>\""), "{json}");
        assert!(json.contains("\"in_password\":\"<redacted>\""), "{json}");
        assert!(!format!("{up:?}").contains("S3cr3t"));
    }
}
