//! The pool's lease table and its file.
//!
//! Each pool address is either free, offered (held for [`OFFER_HOLD`] so that the client's
//! REQUEST finds it still there, and so that a DISCOVER flood can only take free addresses),
//! bound (ACKed, until its lease expires) or declined (a client found it in use; kept out of
//! the pool for [`DECLINE_HOLD`]). An expired entry is not deleted: it remembers which machine
//! had the address, so that the machine gets it again when it comes back (RFC 2131 §4.3.1),
//! and it is only given to another machine once no never-used address is left.
//!
//! Reservations (`[[client]]` entries) are not in this table: their address is fixed by the
//! configuration and never comes from the pool.
//!
//! # File format
//! A journal: one change per line, fields separated by one space, `#` starts a comment line.
//! `IP MAC EXPIRES` records a bound lease (EXPIRES in Unix seconds; a released lease is
//! recorded with the time of its release), `IP -` records that the address was taken back
//! (declined). Later lines override earlier ones for the same address or machine:
//!
//! ```text
//! # pxeroot-target DHCP leases: IP MAC EXPIRES (Unix seconds), or IP - (taken back)
//! 10.0.0.100 52:54:00:12:34:57 1795000000
//! 10.0.0.101 02:00:00:00:00:0a 1795000100
//! 10.0.0.101 -
//! ```
//!
//! Each change is appended and fsynced before the reply that depends on it is sent (RFC 2131
//! §4.3.2: commit before ACK), and the I/O loop commits the changes of all datagrams already
//! queued in one write (group commit). Rewriting the whole file per ACK, the first version,
//! managed about 500 exchanges/s with 5,000 leases and fell as the table grew; appending is
//! flat. The file is compacted (rewritten whole: temp file, fsync, rename, fsync the directory,
//! so a crash leaves the old or the new file, never half of one) at start and whenever the
//! journal holds four times more lines than there are leases. Offers and the decline hold
//! are not written: an offer lasts seconds, and a declined address is probed again after a
//! restart.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use tracing::warn;

/// The first line of a compacted file.
const HEADER: &str =
    "# pxeroot-target DHCP leases: IP MAC EXPIRES (Unix seconds), or IP - (taken back)\n";

/// How long an OFFER holds its address for the client's REQUEST, in seconds.
pub const OFFER_HOLD: u64 = 60;
/// How long a DECLINEd address stays out of the pool, in seconds.
pub const DECLINE_HOLD: u64 = 600;

/// What an address is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// OFFERed, waiting for the REQUEST.
    Offered,
    /// ACKed.
    Bound,
}

/// One pool address in use, or remembered for the machine that had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The machine.
    pub mac: [u8; 6],
    /// Offered or bound.
    pub state: State,
    /// Unix seconds after which the address may go to another machine.
    pub expires: u64,
}

impl Lease {
    /// Whether the address is still held at `now` (Unix seconds).
    pub fn active(&self, now: u64) -> bool {
        now < self.expires
    }
}

/// The lease table: by address, with an index by MAC.
#[derive(Debug, Default)]
pub struct Leases {
    by_ip: BTreeMap<Ipv4Addr, Lease>,
    by_mac: HashMap<[u8; 6], Ipv4Addr>,
    declined: BTreeMap<Ipv4Addr, u64>,
    /// Journal lines not yet written.
    pending: Vec<String>,
    /// Lines in the file (for deciding when to compact).
    file_lines: usize,
}

/// A line of the lease file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl Leases {
    /// The entry for an address.
    pub fn get(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip)
    }

    /// The address remembered for a machine, with its entry.
    pub fn of_mac(&self, mac: &[u8; 6]) -> Option<(Ipv4Addr, Lease)> {
        let ip = *self.by_mac.get(mac)?;
        self.by_ip.get(&ip).map(|l| (ip, *l))
    }

    /// Record `ip` for `mac`, replacing what either had before.
    pub fn set(&mut self, ip: Ipv4Addr, mac: [u8; 6], state: State, expires: u64) {
        if state == State::Bound {
            self.pending
                .push(format!("{ip} {} {expires}", format_mac(&mac)));
        }
        self.forget_mac(&mac);
        if let Some(old) = self.by_ip.insert(
            ip,
            Lease {
                mac,
                state,
                expires,
            },
        ) {
            if old.mac != mac {
                self.by_mac.remove(&old.mac);
            }
        }
        self.by_mac.insert(mac, ip);
    }

    /// Drop what is remembered for `mac`.
    pub fn forget_mac(&mut self, mac: &[u8; 6]) {
        if let Some(ip) = self.by_mac.remove(mac) {
            self.by_ip.remove(&ip);
        }
    }

    /// Take `ip` out of the pool until `until` (Unix seconds), forgetting its holder.
    pub fn decline(&mut self, ip: Ipv4Addr, until: u64) {
        if let Some(old) = self.by_ip.remove(&ip) {
            self.by_mac.remove(&old.mac);
            if old.state == State::Bound {
                self.pending.push(format!("{ip} -"));
            }
        }
        self.declined.insert(ip, until);
    }

    /// Whether `ip` is declined at `now`.
    pub fn is_declined(&self, ip: Ipv4Addr, now: u64) -> bool {
        self.declined.get(&ip).is_some_and(|&until| now < until)
    }

    /// The entry whose hold ended longest ago, if any has ended: the one to give away when no
    /// address was never used.
    pub fn oldest_expired(&self, now: u64, usable: impl Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
        self.by_ip
            .iter()
            .filter(|(ip, l)| !l.active(now) && usable(**ip))
            .min_by_key(|(_, l)| l.expires)
            .map(|(ip, _)| *ip)
    }

    /// Every entry, by address.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, &Lease)> {
        self.by_ip.iter().map(|(ip, l)| (*ip, l))
    }

    /// Number of entries (for logs and tests).
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// Drop every entry for which `keep` says no (used after loading, when the configuration
    /// changed).
    pub fn retain(&mut self, mut keep: impl FnMut(Ipv4Addr, &Lease) -> bool) {
        let by_mac = &mut self.by_mac;
        self.by_ip.retain(|ip, l| {
            let k = keep(*ip, l);
            if !k {
                by_mac.remove(&l.mac);
            }
            k
        });
    }

    /// The file's text: every bound entry.
    pub fn to_text(&self) -> String {
        let mut out = String::from(HEADER);
        for (ip, l) in &self.by_ip {
            if l.state == State::Bound {
                let _ = writeln!(out, "{ip} {} {}", format_mac(&l.mac), l.expires);
            }
        }
        out
    }

    /// Read a lease file's text, replaying the journal. Bad lines are returned, not fatal: a
    /// damaged file must not keep the server from starting, and the other lines still
    /// protect their addresses.
    pub fn from_text(text: &str) -> (Leases, Vec<BadLine>) {
        let mut leases = Leases::default();
        let mut bad = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok((ip, Some((mac, expires)))) => leases.set(ip, mac, State::Bound, expires),
                Ok((ip, None)) => {
                    if let Some(old) = leases.by_ip.remove(&ip) {
                        leases.by_mac.remove(&old.mac);
                    }
                }
                Err(reason) => bad.push(BadLine {
                    line: n + 1,
                    reason,
                }),
            }
        }
        leases.pending.clear();
        leases.file_lines = text.lines().count();
        (leases, bad)
    }

    /// Append the changes since the last call to the journal and fsync it; compact the file
    /// when the journal has grown to four times the table.
    ///
    /// # Errors
    /// Any I/O error; the changes stay pending, so the next call writes them again.
    pub fn commit(&mut self, path: &Path) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.file_lines + self.pending.len() > 4 * self.by_ip.len() + 64 {
            self.save(path)?;
            return Ok(());
        }
        let mut text = self.pending.join("\n");
        text.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        self.file_lines += self.pending.len();
        self.pending.clear();
        Ok(())
    }

    /// Whether changes wait to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Forget the pending changes (no lease file).
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// Write the file atomically (temp file, fsync, rename, fsync the directory).
    ///
    /// # Errors
    /// Any I/O error; the previous file is then left as it was.
    pub fn save(&mut self, path: &Path) -> std::io::Result<()> {
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = Path::new(&tmp_name);
        let text = self.to_text();
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(tmp, path)?;
        self.file_lines = text.lines().count();
        self.pending.clear();
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
            if let Err(e) = d.sync_all() {
                warn!(error = %e, "cannot fsync the lease file's directory");
            }
        }
        Ok(())
    }
}

/// One journal line: an address and its holder with the expiry, or `None` for taken back.
type Entry = (Ipv4Addr, Option<([u8; 6], u64)>);

/// One journal line: `IP MAC EXPIRES` or `IP -`.
fn parse_line(line: &str) -> Result<Entry, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let ip_field = fields.first().copied().unwrap_or_default();
    let ip = ip_field
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("`{ip_field}` is not an IPv4 address"))?;
    match fields.get(1..).unwrap_or_default() {
        ["-"] => Ok((ip, None)),
        [mac, expires] => {
            let mac = parse_mac(mac).ok_or_else(|| format!("`{mac}` is not a MAC address"))?;
            let expires = expires
                .parse::<u64>()
                .map_err(|_| format!("`{expires}` is not a time in Unix seconds"))?;
            Ok((ip, Some((mac, expires))))
        }
        _ => Err(format!(
            "expected `IP MAC EXPIRES` or `IP -`, found {} field(s)",
            fields.len()
        )),
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parse `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
