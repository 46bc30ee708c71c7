//! The QEMU runner's PXE mode: with no kernel given, the NIC's iPXE option ROM network-boots
//! and asks the namespace's DHCP server for an address as a PXE client.

// Test code: a failed unwrap or panic is a failed test (helpers outside #[test] too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use pxeroot_tests::netns::Netns;
use pxeroot_tests::peers::{DhcpConfig, Dnsmasq};
use pxeroot_tests::qemu::{Boot, Qemu, Spec};
use pxeroot_tests::scenario::{GUEST_IP, GUEST_MAC};
use pxeroot_tests::Lab;

#[test]
fn pxe_mode_runs_the_ipxe_rom_which_asks_dnsmasq_for_an_address() {
    Lab::require().unwrap();
    let ns = Netns::create().unwrap();
    ns.add_tap("tap0", "10.0.0.2/24").unwrap();
    let _dnsmasq = Dnsmasq::start(&ns, &DhcpConfig::lab(&[(GUEST_MAC, GUEST_IP)])).unwrap();
    let _qemu = Qemu::spawn(&ns, "pxe", &Spec::new(Boot::Pxe)).unwrap();
    let log = ns.run_dir().join("dnsmasq.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let pxe = text.lines().any(|l| l.contains("vendor class: PXEClient"));
        let offered = text
            .lines()
            .any(|l| l.contains(&format!("DHCPOFFER(tap0) {GUEST_IP} {GUEST_MAC}")));
        if pxe && offered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no PXE DHCP exchange from the iPXE ROM within 60 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
