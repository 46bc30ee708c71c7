//! Choosing the boot interface from sysfs (`/sys/class/net/*`).
//!
//! Reading is split from deciding: [`scan`] reads a sysfs-shaped directory (a tempdir in
//! tests), [`choose`] is pure. "Physical" means the interface has a `device` link, which
//! loopback, veth, bridges, bonds and tunnels lack; only physical interfaces are candidates
//! for [`Interface::FirstWithCarrier`], while an interface named or matched by MAC is used
//! whatever it is.

use std::fs;
use std::io;
use std::path::Path;

use crate::cmdline::Mac;
use crate::plan::Interface;

/// `ARPHRD_LOOPBACK` in `/sys/class/net/*/type`.
const ARPHRD_LOOPBACK: u32 = 772;

/// One interface as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysIface {
    /// Its name.
    pub name: String,
    /// Its index.
    pub ifindex: u32,
    /// Its hardware address, if it is a 6-byte one.
    pub mac: Option<Mac>,
    /// Whether it has a `device` link (real hardware, virtio included).
    pub physical: bool,
    /// Whether it is a loopback device.
    pub loopback: bool,
}

impl SysIface {
    /// `name MAC` for error messages.
    pub fn describe(&self) -> String {
        match &self.mac {
            Some(m) => format!("{} {m}", self.name),
            None => self.name.clone(),
        }
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Reads every interface under `sys` (normally `/sys/class/net`), sorted by index.
/// Interfaces that vanish while being read are skipped.
///
/// # Errors
/// If `sys` itself cannot be listed.
pub fn scan(sys: &Path) -> io::Result<Vec<SysIface>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(sys)? {
        let Ok(entry) = entry else { continue };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let dir = entry.path();
        let Some(ifindex) = read_trimmed(&dir.join("ifindex")).and_then(|s| s.parse().ok()) else {
            continue;
        };
        let mac = read_trimmed(&dir.join("address")).and_then(|s| Mac::parse(&s));
        let kind: Option<u32> = read_trimmed(&dir.join("type")).and_then(|s| s.parse().ok());
        out.push(SysIface {
            loopback: kind == Some(ARPHRD_LOOPBACK) || name == "lo",
            physical: dir.join("device").exists(),
            name,
            ifindex,
            mac,
        });
    }
    out.sort_by_key(|i| i.ifindex);
    Ok(out)
}

/// Whether `name` reports carrier: `Some(true/false)`, or `None` when sysfs cannot say (the
/// interface is down, which makes the kernel answer EINVAL, or it is gone).
pub fn carrier(sys: &Path, name: &str) -> Option<bool> {
    match read_trimmed(&sys.join(name).join("carrier"))?.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// The outcome of [`choose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The wanted interface.
    One(SysIface),
    /// For [`Interface::FirstWithCarrier`]: every candidate, in index order.
    Candidates(Vec<SysIface>),
    /// Not there (yet).
    Missing,
}

/// Picks the interface the plan asks for among `ifaces`.
pub fn choose(want: &Interface, ifaces: &[SysIface]) -> Choice {
    let found = match want {
        Interface::Mac { mac, .. } => ifaces.iter().find(|i| i.mac.as_ref() == Some(mac)),
        Interface::Name { name, .. } => ifaces.iter().find(|i| &i.name == name),
        Interface::FirstWithCarrier => {
            let c: Vec<SysIface> = ifaces
                .iter()
                .filter(|i| i.physical && !i.loopback)
                .cloned()
                .collect();
            return if c.is_empty() {
                Choice::Missing
            } else {
                Choice::Candidates(c)
            };
        }
    };
    found.cloned().map_or(Choice::Missing, Choice::One)
}

/// `eth0 52:54:00:.., eth1 ..` for error messages (`none` when empty).
pub fn describe_all(ifaces: &[SysIface]) -> String {
    let names: Vec<String> = ifaces
        .iter()
        .filter(|i| !i.loopback)
        .map(SysIface::describe)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(sys: &Path, name: &str, index: u32, mac: &str, kind: u32, device: bool) {
        let d = sys.join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("ifindex"), format!("{index}\n")).unwrap();
        fs::write(d.join("address"), format!("{mac}\n")).unwrap();
        fs::write(d.join("type"), format!("{kind}\n")).unwrap();
        if device {
            fs::create_dir_all(d.join("device")).unwrap();
        }
    }

    fn fake() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        add(t.path(), "lo", 1, "00:00:00:00:00:00", 772, false);
        add(t.path(), "veth0", 5, "aa:bb:cc:dd:ee:01", 1, false);
        add(t.path(), "enp2s0", 3, "52:54:00:12:34:57", 1, true);
        add(t.path(), "enp1s0", 2, "52:54:00:12:34:56", 1, true);
        fs::write(t.path().join("enp1s0/carrier"), "0\n").unwrap();
        fs::write(t.path().join("enp2s0/carrier"), "1\n").unwrap();
        // A half-created entry (no ifindex yet) is skipped.
        fs::create_dir_all(t.path().join("eth9")).unwrap();
        t
    }

    fn mac(s: &str) -> Mac {
        Mac::parse(s).unwrap()
    }

    #[test]
    fn scan_reads_and_sorts_by_index() {
        let t = fake();
        let all = scan(t.path()).unwrap();
        let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "enp1s0", "enp2s0", "veth0"]);
        assert!(all[0].loopback && !all[0].physical);
        assert_eq!(all[1].mac, Some(mac("52:54:00:12:34:56")));
        assert!(all[1].physical);
        assert!(!all[3].physical);
        assert_eq!(carrier(t.path(), "enp1s0"), Some(false));
        assert_eq!(carrier(t.path(), "enp2s0"), Some(true));
        assert_eq!(carrier(t.path(), "veth0"), None);
        assert_eq!(carrier(t.path(), "nope"), None);
        assert!(scan(&t.path().join("missing")).is_err());
    }

    #[test]
    fn choose_by_mac_name_and_carrier() {
        let t = fake();
        let all = scan(t.path()).unwrap();
        let by_mac = Interface::Mac {
            mac: mac("52:54:00:12:34:57"),
            from: "BOOTIF",
        };
        assert!(matches!(choose(&by_mac, &all), Choice::One(i) if i.name == "enp2s0"));
        let virt = Interface::Mac {
            mac: mac("aa:bb:cc:dd:ee:01"),
            from: "BOOTIF",
        };
        assert!(matches!(choose(&virt, &all), Choice::One(i) if i.name == "veth0"));
        let absent = Interface::Mac {
            mac: mac("52:54:00:00:00:01"),
            from: "BOOTIF",
        };
        assert_eq!(choose(&absent, &all), Choice::Missing);
        let by_name = Interface::Name {
            name: "veth0".into(),
            from: "ip",
        };
        assert!(matches!(choose(&by_name, &all), Choice::One(i) if i.ifindex == 5));
        let Choice::Candidates(c) = choose(&Interface::FirstWithCarrier, &all) else {
            panic!("expected candidates");
        };
        let names: Vec<&str> = c.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["enp1s0", "enp2s0"], "no loopback, no virtual");
        assert_eq!(
            choose(&Interface::FirstWithCarrier, &all[..1]),
            Choice::Missing
        );
        assert_eq!(
            describe_all(&all),
            "enp1s0 52:54:00:12:34:56, enp2s0 52:54:00:12:34:57, veth0 aa:bb:cc:dd:ee:01"
        );
        assert_eq!(describe_all(&all[..1]), "none");
    }
}
