//! pxeroot-target's DHCP server (issue 5) against real clients: busybox udhcpc in a second
//! namespace across a veth pair, and the iPXE ROM of a QEMU guest. The server always runs inside
//! a namespace and is bound to that namespace's interface, so no DHCP traffic reaches a real
//! network. Crafted bad packets (truncated, option lengths past the end, a 1,000-MAC DISCOVER
//! flood) are sent from a thread that joins the client namespace; after each, a valid client
//! must still be served. proxyDHCP mode is driven the same way, as a PXE ROM would: a DISCOVER
//! on port 67 and the boot-server REQUEST on port 4011.
//!
//! These tests run the real binary, whose `serve` stops when any of its servers fails: with
//! `[[client]]` entries it also needs `[tftp]`, so they pass once the TFTP server has landed.
//!
//! Run with `cargo build -p pxeroot-target && cargo test -p pxeroot-tests --test dhcp_interop`
//! as root.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pxeroot_tests::netns::Netns;
use pxeroot_tests::peers::PxerootTarget;
use pxeroot_tests::qemu::{Boot, Qemu, Spec};
use pxeroot_tests::scenario::{GUEST_IP, GUEST_MAC};
use pxeroot_tests::Lab;

const SERVER_IP: &str = "10.0.0.2";
const ROOT_PATH_TARGET: &str = "iqn.2026-11.org.example:client";
const INITIATOR: &str = "iqn.2013-02.org.example.client:default";

/// The udhcpc event script: prints the event and, once bound, the lease's variables.
const SCRIPT: &str = "#!/bin/sh\n\
echo \"EVENT $1\"\n\
if [ \"$1\" = bound ]; then\n\
  for v in ip subnet router dns hostname domain rootpath boot_file siaddr serverid lease broadcast opt203; do\n\
    eval \"echo ENV $v=\\$$v\"\n\
  done\n\
fi\n\
exit 0\n";

/// A server namespace (veth0, 10.0.0.2/24) linked to a client namespace (veth1).
struct Link {
    server: Netns,
    client: Netns,
    script: PathBuf,
}

impl Link {
    fn new() -> Result<Link> {
        let server = Netns::create()?;
        let client = Netns::create()?;
        server.add_veth("veth0", "veth1", Some(&format!("{SERVER_IP}/24")))?;
        server.ip(&["link", "set", "veth1", "netns", client.name()])?;
        client.ip(&["link", "set", "veth1", "up"])?;
        let script = client.run_dir().join("udhcpc.script");
        std::fs::write(&script, SCRIPT)?;
        run_ok(std::process::Command::new("chmod").arg("755").arg(&script))?;
        Ok(Link {
            server,
            client,
            script,
        })
    }

    /// Start pxeroot-target with a [dhcp] section; waits for the DHCP server to listen.
    fn start(&self, pool: Option<(&str, &str)>) -> Result<PxerootTarget> {
        let pool = pool
            .map(|(a, b)| format!("pool = [\"{a}\", \"{b}\"]\n"))
            .unwrap_or_default();
        self.start_with(&pool)
    }

    /// [`Link::start`] with `dhcp` added to the [dhcp] section.
    fn start_with(&self, dhcp: &str) -> Result<PxerootTarget> {
        let dir = self.server.run_dir();
        let disk = dir.join("disk.img");
        if !disk.exists() {
            std::fs::File::create(&disk)?.set_len(4 << 20)?;
            tftp_root(dir)?;
        }
        let pool = dhcp;
        let config = format!(
            "[iscsi]\nlisten = [\"{SERVER_IP}:3260\"]\n\n\
             [server]\naddress = \"{SERVER_IP}\"\ninterface = \"veth0\"\n\n\
             [dhcp]\nsubnet = \"10.0.0.0/24\"\nrouter = \"10.0.0.1\"\ndns = [\"10.0.0.1\"]\n\
             domain = \"lab.example\"\n{pool}lease_file = \"{}\"\nipv6_ra = false\n\n\
             [tftp]\nroot = \"{}\"\n\n\
             [[client]]\nname = \"client\"\nmac = \"{GUEST_MAC}\"\nip = \"{GUEST_IP}\"\n\
             initiator = \"{INITIATOR}\"\ndisk = \"{}\"\ntarget = \"{ROOT_PATH_TARGET}\"\n\
             kernel = \"vmlinuz\"\nchap = {{ user = \"client\", secret = \"client-secret-1\" }}\n",
            dir.join("leases").display(),
            dir.join("tftp").display(),
            disk.display(),
        );
        let target = PxerootTarget::start(&self.server, &config)?;
        wait_for(Duration::from_secs(10), || {
            target.log_text().contains("DHCP server listening on")
        })
        .with_context(|| format!("no \"DHCP server listening on\":\n{}", target.log_text()))?;
        Ok(target)
    }

    /// Run udhcpc on veth1 with `mac`; the bound lease's variables, or an error with udhcpc's
    /// output when it got none.
    fn udhcpc(&self, mac: &str) -> Result<HashMap<String, String>> {
        self.set_mac(mac)?;
        let out = self
            .client
            .command("/bin/busybox")
            .args([
                "udhcpc", "-f", "-q", "-n", "-i", "veth1", "-t", "3", "-T", "1",
            ])
            .args(["-O", "rootpath", "-O", "203", "-s"])
            .arg(&self.script)
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() || !stdout.contains("EVENT bound") {
            bail!(
                "udhcpc ({mac}) got no lease ({}):\n{stdout}{stderr}",
                out.status
            );
        }
        Ok(stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ENV "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    fn set_mac(&self, mac: &str) -> Result<()> {
        self.client.ip(&["link", "set", "veth1", "down"])?;
        self.client.ip(&["link", "set", "veth1", "address", mac])?;
        self.client.ip(&["link", "set", "veth1", "up"])?;
        Ok(())
    }

    /// Send raw datagrams to 255.255.255.255:67 out of veth1, from a thread that joins the
    /// client namespace (the test process itself stays where it is).
    fn send_raw(&self, packets: Vec<Vec<u8>>) -> Result<()> {
        let ns = PathBuf::from("/run/netns").join(self.client.name());
        std::thread::spawn(move || -> Result<()> {
            let sock = client_socket(&ns)?;
            for (i, p) in packets.iter().enumerate() {
                sock.send_to(p, "255.255.255.255:67")?;
                if i % 50 == 49 {
                    // Let the server drain its socket: the flood must arrive, not be
                    // dropped by the kernel before the server sees it.
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the sender thread panicked"))?
    }
}

/// A TFTP root that passes the configuration check: the files are placeholders, these tests
/// stop at DHCP.
fn tftp_root(dir: &Path) -> Result<()> {
    let root = dir.join("tftp");
    std::fs::create_dir_all(&root)?;
    for f in ["vmlinuz", "pxelinux.0", "ldlinux.c32"] {
        std::fs::write(root.join(f), b"placeholder")?;
    }
    Ok(())
}

/// Move the calling thread into the network namespace `ns` (a /run/netns path; only this
/// thread moves) and open a UDP socket there on 0.0.0.0:68, bound to veth1, broadcast allowed.
fn client_socket(ns: &Path) -> Result<UdpSocket> {
    let f = std::fs::File::open(ns).with_context(|| format!("{}", ns.display()))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)?;
    let sock = UdpSocket::bind("0.0.0.0:68")?;
    nix::sys::socket::setsockopt(
        &sock,
        nix::sys::socket::sockopt::BindToDevice,
        &std::ffi::OsString::from("veth1"),
    )?;
    sock.set_broadcast(true)?;
    Ok(sock)
}

/// From a thread inside the client namespace, on a socket bound to 0.0.0.0:68 on veth1:
/// send each `(packet, destination)` and collect the first reply to each (or `None` after
/// 3 s).
fn exchange(client: &Netns, sends: Vec<(Vec<u8>, &'static str)>) -> Result<Vec<Option<Vec<u8>>>> {
    let ns = PathBuf::from("/run/netns").join(client.name());
    std::thread::spawn(move || -> Result<Vec<Option<Vec<u8>>>> {
        let sock = client_socket(&ns)?;
        sock.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut out = Vec::new();
        for (p, to) in sends {
            sock.send_to(&p, to)?;
            let mut buf = vec![0u8; 1500];
            out.push(match sock.recv_from(&mut buf) {
                Ok((n, _)) => Some(buf[..n].to_vec()),
                Err(_) => None,
            });
        }
        Ok(out)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the exchange thread panicked"))?
}

/// The options of a reply, by code (a hand-written walk: this crate has no DHCP codec).
fn reply_options(p: &[u8]) -> HashMap<u8, Vec<u8>> {
    let mut out = HashMap::new();
    let mut at = 240;
    while let Some(&code) = p.get(at) {
        match code {
            0 => at += 1,
            255 => break,
            _ => {
                let len = usize::from(p.get(at + 1).copied().unwrap_or(0));
                out.insert(
                    code,
                    p.get(at + 2..at + 2 + len).unwrap_or_default().to_vec(),
                );
                at += 2 + len;
            }
        }
    }
    out
}

fn run_ok(cmd: &mut std::process::Command) -> Result<()> {
    let st = cmd.status()?;
    if !st.success() {
        bail!("{cmd:?}: {st}");
    }
    Ok(())
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() > deadline {
            bail!("timed out after {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A DHCP message from `mac`: header, cookie, then `options` as given (no END added).
fn dhcp_packet(mac: [u8; 6], xid: u32, options: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 240];
    p[0] = 1;
    p[1] = 1;
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[28..34].copy_from_slice(&mac);
    p[236..240].copy_from_slice(&[99, 130, 83, 99]);
    p.extend_from_slice(options);
    p
}

fn discover(mac: [u8; 6], xid: u32) -> Vec<u8> {
    dhcp_packet(mac, xid, &[53, 1, 1, 255])
}

fn get<'a>(env: &'a HashMap<String, String>, key: &str) -> &'a str {
    env.get(key).map(String::as_str).unwrap_or("")
}

#[test]
fn udhcpc_gets_its_reservation_with_every_option() {
    Lab::require().unwrap();
    let link = Link::new().unwrap();
    let server = link.start(None).unwrap();
    let env = link.udhcpc(GUEST_MAC).unwrap();
    assert_eq!(get(&env, "ip"), GUEST_IP, "{env:?}");
    assert_eq!(get(&env, "subnet"), "255.255.255.0");
    assert_eq!(get(&env, "router"), "10.0.0.1");
    assert_eq!(get(&env, "dns").trim(), "10.0.0.1");
    assert_eq!(get(&env, "hostname"), "client");
    assert_eq!(get(&env, "domain"), "lab.example");
    assert_eq!(get(&env, "serverid"), SERVER_IP);
    assert_eq!(get(&env, "siaddr"), SERVER_IP);
    assert_eq!(get(&env, "boot_file"), "pxelinux.0");
    assert_eq!(
        get(&env, "rootpath"),
        format!("iscsi:{SERVER_IP}::3260:0:{ROOT_PATH_TARGET}")
    );
    let log = server.log_text();
    assert!(log.contains("DHCPACK"), "{log}");
    assert!(
        !log.contains("client-secret-1"),
        "a secret in the log:\n{log}"
    );
}

#[test]
fn two_pool_clients_get_distinct_addresses() {
    Lab::require().unwrap();
    let link = Link::new().unwrap();
    let _server = link.start(Some(("10.0.0.100", "10.0.0.200"))).unwrap();
    let a = link.udhcpc("02:00:00:00:00:0a").unwrap();
    let b = link.udhcpc("02:00:00:00:00:0b").unwrap();
    let (a, b) = (get(&a, "ip"), get(&b, "ip"));
    assert_ne!(a, b);
    for ip in [a, b] {
        let ip: Ipv4Addr = ip.parse().unwrap();
        assert!((Ipv4Addr::new(10, 0, 0, 100)..=Ipv4Addr::new(10, 0, 0, 200)).contains(&ip));
    }
    // Pool clients get no iSCSI root.
    assert_eq!(get(&link.udhcpc("02:00:00:00:00:0a").unwrap(), "ip"), a);
}

#[test]
fn a_lease_survives_a_server_restart() {
    Lab::require().unwrap();
    let link = Link::new().unwrap();
    let server = link.start(Some(("10.0.0.100", "10.0.0.200"))).unwrap();
    let a = get(&link.udhcpc("02:00:00:00:00:0a").unwrap(), "ip").to_string();
    // SIGKILL: no chance to write anything at exit; the ACK's own write must have done it.
    drop(server);
    let server = link.start(Some(("10.0.0.100", "10.0.0.200"))).unwrap();
    let b = get(&link.udhcpc("02:00:00:00:00:0b").unwrap(), "ip").to_string();
    assert_ne!(
        b, a,
        "a new client got the address leased before the restart"
    );
    let again = get(&link.udhcpc("02:00:00:00:00:0a").unwrap(), "ip").to_string();
    assert_eq!(again, a, "the client did not get its address back");
    assert!(server.log_text().contains("DHCP leases loaded"));
}

#[test]
fn an_unknown_mac_without_a_pool_gets_no_answer_and_is_logged() {
    Lab::require().unwrap();
    let link = Link::new().unwrap();
    let server = link.start(None).unwrap();
    let err = link.udhcpc("02:00:00:00:00:0c").unwrap_err();
    assert!(err.to_string().contains("got no lease"), "{err:#}");
    let log = server.log_text();
    assert!(
        log.contains("no reservation for this MAC and no pool"),
        "{log}"
    );
    // The reserved machine is served right after.
    assert_eq!(get(&link.udhcpc(GUEST_MAC).unwrap(), "ip"), GUEST_IP);
}

#[test]
fn truncated_packets_and_options_past_the_end_are_logged_and_dropped() {
    Lab::require().unwrap();
    let link = Link::new().unwrap();
    let server = link.start(None).unwrap();
    let mac = [2, 0, 0, 0, 0, 0x0d];
    let full = dhcp_packet(mac, 1, &[53, 1, 1, 55, 3, 1, 3, 6, 255]);
    let mut packets = vec![
        full[..100].to_vec(),
        full[..239].to_vec(),
        vec![0xff; 3],
        // Option 50 announcing 200 bytes with 2 present.
        dhcp_packet(mac, 2, &[53, 1, 1, 50, 200, 10, 0]),
        // A length byte missing.
        dhcp_packet(mac, 3, &[53, 1, 1, 61]),
        // Message type with a wrong length.
        dhcp_packet(mac, 4, &[53, 2, 1, 1, 255]),
    ];
    packets.push(vec![1; 600]);
    link.send_raw(packets).unwrap();
    // One line per kind of problem: the second truncated packet and the missing length byte of
    // option 61 are of kinds already logged, and are counted as suppressed in the next line.
    let kinds = [
        "truncated: 100 bytes",
        "option 50 at byte 243: length 200 runs past the packet end",
        "option 53 has length 2",
        "no DHCP magic cookie",
    ];
    let logged = wait_for(Duration::from_secs(5), || {
        let log = server.log_text();
        kinds.iter().all(|k| log.contains(k))
    });
    let log = server.log_text();
    if let Err(e) = logged {
        let missing: Vec<_> = kinds.iter().filter(|k| !log.contains(*k)).collect();
        panic!("{e}: no log line for {missing:?}:\n{log}");
    }
    assert!(log.contains("dropped a bad DHCP packet"), "{log}");
    assert_eq!(get(&link.udhcpc(GUEST_MAC).unwrap(), "ip"), GUEST_IP);
    assert!(!server.log_text().contains("panicked"), "{log}");
}

#[test]
fn a_1000_mac_discover_flood_steals_no_lease_and_the_server_keeps_serving() {
    Lab::require().unwrap();
    let link = Link::new().unwrap();
    let server = link.start(Some(("10.0.0.100", "10.0.0.109"))).unwrap();
    let kept = get(&link.udhcpc("02:00:00:00:00:0a").unwrap(), "ip").to_string();
    let flood: Vec<Vec<u8>> = (0..1000u32)
        .map(|n| {
            let b = n.to_be_bytes();
            discover([0x06, 0xf1, b[0], b[1], b[2], b[3]], n)
        })
        .collect();
    let started = Instant::now();
    link.send_raw(flood).unwrap();
    wait_for(Duration::from_secs(10), || {
        server.log_text().contains("DHCP pool exhausted")
    })
    .unwrap_or_else(|e| {
        panic!(
            "no exhaustion line after the flood ({e}):\n{}",
            server.log_text()
        )
    });
    println!("flood of 1000 DISCOVERs sent in {:?}", started.elapsed());
    let log = server.log_text();
    let offered: std::collections::HashSet<&str> = log
        .lines()
        .filter(|l| l.contains("DHCPOFFER") && l.contains("06:f1:"))
        .filter_map(|l| l.split("ip=").nth(1)?.split_whitespace().next())
        .collect();
    assert!(
        !offered.contains(kept.as_str()),
        "the leased {kept} was offered to the flood"
    );
    assert!(offered.len() <= 9, "{offered:?}");
    assert_eq!(
        log.matches("DHCP pool exhausted").count(),
        1,
        "the exhaustion line is rate-limited"
    );
    // Reserved and leased clients are served right after.
    assert_eq!(get(&link.udhcpc(GUEST_MAC).unwrap(), "ip"), GUEST_IP);
    assert_eq!(get(&link.udhcpc("02:00:00:00:00:0a").unwrap(), "ip"), kept);
}

#[test]
fn ipxe_rom_gets_its_reservation() {
    Lab::require().unwrap();
    let ns = Netns::create().unwrap();
    ns.add_tap("tap0", &format!("{SERVER_IP}/24")).unwrap();
    let dir = ns.run_dir().to_path_buf();
    let config = ipxe_config(&dir);
    let server = PxerootTarget::start(&ns, &config).unwrap();
    let _qemu = Qemu::spawn(&ns, "pxe", &Spec::new(Boot::Pxe)).unwrap();
    let ack = |l: &&str| {
        l.contains("DHCPACK")
            && l.contains(&format!("mac={GUEST_MAC}"))
            && l.contains(&format!("ip={GUEST_IP}"))
    };
    wait_for(Duration::from_secs(60), || {
        server.log_text().lines().any(|l| ack(&l))
    })
    .unwrap_or_else(|e| {
        panic!(
            "no DHCPACK of {GUEST_IP} to the iPXE ROM ({e}):\n{}",
            server.log_text()
        )
    });
    let log = server.log_text();
    let offer = log
        .lines()
        .find(|l| l.contains("DHCPOFFER") && l.contains(GUEST_MAC))
        .unwrap_or_else(|| panic!("no offer:\n{log}"));
    // The ROM is iPXE (user class "iPXE", option 175) and gets the iPXE script.
    assert!(offer.contains(".ipxe"), "{offer}");
}

fn ipxe_config(dir: &Path) -> String {
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    tftp_root(dir).unwrap();
    format!(
        "[iscsi]\nlisten = [\"{SERVER_IP}:3260\"]\n\n\
         [server]\naddress = \"{SERVER_IP}\"\ninterface = \"tap0\"\n\n\
         [dhcp]\nsubnet = \"10.0.0.0/24\"\nrouter = \"{SERVER_IP}\"\nlease_file = \"{}\"\n\n\
         [tftp]\nroot = \"{}\"\n\n\
         [[client]]\nname = \"client\"\nmac = \"{GUEST_MAC}\"\nip = \"{GUEST_IP}\"\n\
         initiator = \"{INITIATOR}\"\ndisk = \"{}\"\nkernel = \"vmlinuz\"\n",
        dir.join("leases").display(),
        dir.join("tftp").display(),
        disk.display(),
    )
}

#[test]
fn proxy_mode_answers_a_pxe_rom_on_67_and_4011_and_gives_no_addresses() {
    Lab::require().unwrap();
    let link = Link::new().unwrap();
    let server = link.start_with("mode = \"proxy\"\n").unwrap();
    link.set_mac(GUEST_MAC).unwrap();
    link.client
        .ip(&["addr", "add", "10.0.0.9/24", "dev", "veth1"])
        .unwrap();
    let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    let mut pxe = vec![53, 1, 1, 60, 32];
    pxe.extend_from_slice(b"PXEClient:Arch:00000:UNDI:002001");
    pxe.extend([93, 2, 0, 0, 97, 17, 0]);
    pxe.extend([7u8; 16]);
    pxe.push(255);
    let discover = dhcp_packet(mac, 0x11, &pxe);
    let mut boot_request = discover.clone();
    boot_request[242] = 3; // REQUEST
    boot_request[12..16].copy_from_slice(&[10, 0, 0, 9]); // ciaddr
    let plain = dhcp_packet([2, 0, 0, 0, 0, 0x0e], 0x12, &[53, 1, 1, 255]);
    let replies = exchange(
        &link.client,
        vec![
            (discover, "255.255.255.255:67"),
            (boot_request, "10.0.0.2:4011"),
            (plain, "255.255.255.255:67"),
        ],
    )
    .unwrap();
    let log = server.log_text();
    let offer = replies[0]
        .as_ref()
        .unwrap_or_else(|| panic!("no proxy offer:\n{log}"));
    assert_eq!(&offer[16..20], &[0, 0, 0, 0], "a proxy offer has no yiaddr");
    assert_eq!(&offer[20..24], &[10, 0, 0, 2], "siaddr");
    assert!(offer[108..].starts_with(b"pxelinux.0\0"));
    let o = reply_options(offer);
    assert_eq!(o.get(&53), Some(&vec![2]));
    assert_eq!(o.get(&60).map(Vec::as_slice), Some(&b"PXEClient"[..]));
    assert_eq!(o.get(&43), Some(&vec![6, 1, 8, 255]));
    assert_eq!(o.get(&54), Some(&vec![10, 0, 0, 2]));
    assert!(
        !o.contains_key(&51) && !o.contains_key(&1),
        "lease options in a proxy offer"
    );
    assert_eq!(o.get(&97).map(Vec::len), Some(17), "GUID echoed");

    let ack = replies[1]
        .as_ref()
        .unwrap_or_else(|| panic!("no answer on port 4011:\n{log}"));
    let o = reply_options(ack);
    assert_eq!(o.get(&53), Some(&vec![5]));
    assert!(ack[108..].starts_with(b"pxelinux.0\0"));
    assert!(!o.contains_key(&43), "no option 43 on 4011");

    assert!(replies[2].is_none(), "a non-PXE client got a proxy answer");
    assert!(server.log_text().contains("DHCPOFFER(proxy)"));
}
