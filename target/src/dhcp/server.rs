//! The server's decisions, without sockets: [`Server::handle`] takes one datagram, where it
//! came from and the time, and returns the reply to send (if any) and where to. The lease
//! table changes in memory; [`Server::persist`] writes it when it changed, and the I/O loop
//! calls it before sending the reply, so that an ACK is never on the wire before its lease is
//! on disk (RFC 2131 §4.3.2's "must commit before sending").
//!
//! Message handling follows RFC 2131 §4.3: DISCOVER → OFFER; REQUEST in SELECTING (server id
//! present), INIT-REBOOT (requested address, no ciaddr) and RENEWING/REBINDING (ciaddr) →
//! ACK or NAK; DECLINE, RELEASE; INFORM → ACK without a lease. A reserved machine always gets
//! its reserved address; other machines get one from the pool, or nothing when there is none.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcproto::v4::MessageType as DhcpType;
use tracing::{debug, info, warn};

use super::leases::{format_mac, Leases, State, DECLINE_HOLD, OFFER_HOLD};
use super::reply::{self, boot_file, BootChoice, Draft, Kind};
use super::wire::{MessageType, Request, WireError};
use super::{Error, Host, Mode, Settings};

/// The DHCP client port.
pub const CLIENT_PORT: u16 = 68;
/// The DHCP server port (where relays listen).
pub const SERVER_PORT: u16 = 67;
/// The PXE boot-server port (proxyDHCP mode).
pub const PXE_PORT: u16 = 4011;
/// At most one log line per kind of trouble per this many seconds.
const LOG_INTERVAL: u64 = 10;

/// Which socket a datagram arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The DHCP server port (`settings.port`).
    Dhcp,
    /// Port 4011, the PXE boot server (proxyDHCP mode).
    PxeBoot,
}

/// Where a datagram came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The sender's address and port.
    pub addr: SocketAddrV4,
    /// The socket it arrived on.
    pub port: Port,
}

/// A reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The encoded message.
    pub bytes: Vec<u8>,
    /// Where to send it.
    pub destination: SocketAddrV4,
}

/// The DHCP server's state: settings, reservations, the lease table.
#[derive(Debug)]
pub struct Server {
    pub(super) settings: Settings,
    hosts: HashMap<[u8; 6], usize>,
    leases: Leases,
    throttle: Throttle,
}

impl Server {
    /// Check the settings and load the lease file. A line of the file that cannot be read is
    /// logged with its number and skipped; leases that no longer fit the configuration (the
    /// pool shrank, the machine got a reservation) are dropped with a log line.
    ///
    /// # Errors
    /// [`Error::Settings`] for an inconsistent configuration, [`Error::LeaseFile`] when the
    /// lease file cannot be read or written.
    pub fn new(settings: Settings) -> Result<Server, Error> {
        check(&settings)?;
        let mut hosts = HashMap::new();
        for (i, h) in settings.hosts.iter().enumerate() {
            if hosts.insert(h.mac, i).is_some() {
                return Err(Error::Settings(format!(
                    "two entries for MAC {}",
                    format_mac(&h.mac)
                )));
            }
        }
        let mut server = Server {
            settings,
            hosts,
            leases: Leases::default(),
            throttle: Throttle::default(),
        };
        if let Some(path) = server.settings.lease_file.clone() {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(source) => return Err(Error::LeaseFile { path, source }),
            };
            let (leases, bad) = Leases::from_text(&text);
            for b in bad {
                warn!(file = %path.display(), line = b.line, reason = %b.reason, "skipping a bad line of the lease file");
            }
            server.leases = leases;
            let loaded = server.leases.len();
            let now = unix(SystemTime::now());
            let (hosts, settings) = (&server.hosts, &server.settings);
            server.leases.retain(|ip, l| {
                let reserved = hosts
                    .get(&l.mac)
                    .and_then(|&i| settings.hosts.get(i))
                    .is_some_and(|h| !h.ip.is_unspecified());
                let keep = !reserved && usable(settings, hosts, ip);
                if !keep {
                    info!(%ip, mac = %format_mac(&l.mac), "dropping a lease that no longer fits the configuration");
                }
                keep
            });
            info!(file = %path.display(), leases = server.leases.len(), dropped = loaded - server.leases.len(),
                active = server.leases_active(now), "DHCP leases loaded");
            server
                .leases
                .save(&path)
                .map_err(|source| Error::LeaseFile { path, source })?;
        }
        Ok(server)
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The lease table (tests and logs).
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    fn leases_active(&self, now: u64) -> usize {
        self.leases
            .iter()
            .filter(|(_, l)| l.active(now) && l.state == State::Bound)
            .count()
    }

    /// Append the lease changes made since the last call to the lease file and fsync it (a
    /// no-op when nothing changed). The I/O loop calls this before sending the replies of the
    /// datagrams it handled, so that no ACK is on the wire before its lease is on disk.
    ///
    /// # Errors
    /// The I/O error; the changes stay pending, so the next call writes them again.
    pub fn persist(&mut self) -> std::io::Result<()> {
        match &self.settings.lease_file {
            Some(path) => self.leases.commit(path),
            None => {
                self.leases.clear_pending();
                Ok(())
            }
        }
    }

    /// Act on one datagram: the reply to send, if any. Never panics, whatever `packet` holds;
    /// a packet that cannot be parsed is dropped with a (rate-limited) log line.
    pub fn handle(&mut self, packet: &[u8], source: Source, now: SystemTime) -> Option<Reply> {
        let now = unix(now);
        let req = match Request::parse(packet) {
            Ok(r) => r,
            Err(WireError::NotRequest(op)) => {
                debug!(peer = %source.addr, op, "ignoring a datagram that is not a BOOTREQUEST");
                return None;
            }
            Err(e) => {
                if let Some(suppressed) = self.throttle.allow(e.kind(), now) {
                    warn!(peer = %source.addr, error = %e, bytes = packet.len(), suppressed, "dropped a bad DHCP packet");
                }
                return None;
            }
        };
        if !req.giaddr.is_unspecified() && !self.in_subnet(req.giaddr) {
            if let Some(suppressed) = self.throttle.allow("relay", now) {
                warn!(peer = %source.addr, giaddr = %req.giaddr, subnet = %self.subnet(), suppressed,
                    "ignoring a relayed request from outside the served subnet");
            }
            return None;
        }
        if source.port == Port::PxeBoot {
            return self.boot_server(&req, source);
        }
        match self.settings.mode {
            Mode::Full => self.full(&req, now),
            Mode::Proxy => self.proxy(&req),
        }
    }

    fn full(&mut self, req: &Request, now: u64) -> Option<Reply> {
        match req.message_type {
            MessageType::Discover => {
                let ip = self.offer_address(req, now)?;
                self.respond(req, Kind::Offer, ip)
            }
            MessageType::Request => self.request(req, now),
            MessageType::Decline => {
                self.decline(req, now);
                None
            }
            MessageType::Release => {
                self.release(req, now);
                None
            }
            MessageType::Inform => {
                if req.ciaddr.is_unspecified() || !self.in_subnet(req.ciaddr) {
                    debug!(mac = %format_mac(&req.mac), ciaddr = %req.ciaddr, "INFORM without an address in the subnet: ignored");
                    return None;
                }
                self.respond(req, Kind::InformAck, Ipv4Addr::UNSPECIFIED)
            }
            MessageType::Other(t) => {
                debug!(mac = %format_mac(&req.mac), message_type = t, "ignoring a message a client does not send");
                None
            }
        }
    }

    /// The address to OFFER, recording the offer for pool clients.
    fn offer_address(&mut self, req: &Request, now: u64) -> Option<Ipv4Addr> {
        if let Some(ip) = self.reservation(&req.mac) {
            return Some(ip);
        }
        let ip = self.pool_address(req, now)?;
        let keep_bound = self
            .leases
            .of_mac(&req.mac)
            .is_some_and(|(held, l)| held == ip && l.state == State::Bound && l.active(now));
        if !keep_bound {
            self.leases
                .set(ip, req.mac, State::Offered, now + OFFER_HOLD);
        }
        Some(ip)
    }

    /// Choose a pool address: the machine's previous one, else the one it asks for if never
    /// used, else the first never-used one, else the one whose lease ended longest ago.
    fn pool_address(&mut self, req: &Request, now: u64) -> Option<Ipv4Addr> {
        let Some((start, end)) = self.settings.pool else {
            if let Some(suppressed) = self.throttle.allow("unknown", now) {
                info!(mac = %format_mac(&req.mac), suppressed, "no reservation for this MAC and no pool: not answering");
            }
            return None;
        };
        let free = |s: &Server, ip| s.usable(ip, now) && s.leases.get(ip).is_none();
        if let Some((ip, _)) = self.leases.of_mac(&req.mac) {
            if self.usable(ip, now) {
                return Some(ip);
            }
        }
        if let Some(ip) = req.requested_ip.filter(|ip| free(self, *ip)) {
            return Some(ip);
        }
        if let Some(ip) = (u32::from(start)..=u32::from(end))
            .map(Ipv4Addr::from)
            .find(|ip| free(self, *ip))
        {
            return Some(ip);
        }
        if let Some(ip) = self.leases.oldest_expired(now, |ip| self.usable(ip, now)) {
            return Some(ip);
        }
        if let Some(suppressed) = self.throttle.allow("exhausted", now) {
            warn!(mac = %format_mac(&req.mac), pool = %format!("{start}-{end}"), suppressed,
                "DHCP pool exhausted: not answering");
        }
        None
    }

    fn request(&mut self, req: &Request, now: u64) -> Option<Reply> {
        let mac = format_mac(&req.mac);
        match req.server_id {
            Some(sid) if sid != self.settings.server => {
                // SELECTING another server's offer: ours is free again.
                if let Some((ip, l)) = self.leases.of_mac(&req.mac) {
                    if l.state == State::Offered {
                        debug!(%mac, %ip, server = %sid, "client chose another server: offer withdrawn");
                        self.leases.forget_mac(&req.mac);
                    }
                }
                None
            }
            Some(_) => {
                let want = req
                    .requested_ip
                    .or(Some(req.ciaddr).filter(|ip| !ip.is_unspecified()));
                let Some(want) = want else {
                    debug!(%mac, "REQUEST names no address: ignored");
                    return None;
                };
                self.commit(req, want, now, true)
            }
            None if req.ciaddr.is_unspecified() => {
                let Some(want) = req.requested_ip else {
                    debug!(%mac, "INIT-REBOOT REQUEST without option 50: ignored");
                    return None;
                };
                self.commit(req, want, now, false)
            }
            None => self.commit(req, req.ciaddr, now, false),
        }
    }

    /// ACK `want` to the client if it may have it, NAK if it may not, stay silent if the
    /// address is not this server's business (INIT-REBOOT/RENEWING for an address in the
    /// subnet but outside the pool, from a machine we have no record of).
    fn commit(
        &mut self,
        req: &Request,
        want: Ipv4Addr,
        now: u64,
        selecting: bool,
    ) -> Option<Reply> {
        if !self.in_subnet(want) {
            return self.nak(req, want, "not in the served subnet");
        }
        if let Some(reserved) = self.reservation(&req.mac) {
            if want == reserved {
                return self.respond(req, Kind::Ack, want);
            }
            return self.nak(req, want, "the machine has a different reserved address");
        }
        if self.settings.pool.is_none() {
            if let Some(suppressed) = self.throttle.allow("unknown", now) {
                info!(mac = %format_mac(&req.mac), suppressed, "no reservation for this MAC and no pool: not answering");
            }
            return None;
        }
        let ok = match self.leases.of_mac(&req.mac) {
            Some((ip, _)) => ip == want && self.usable(want, now),
            None => {
                if !self.in_pool(want)
                    && !selecting
                    && !self.reserved(want)
                    && want != self.settings.server
                {
                    debug!(mac = %format_mac(&req.mac), %want, "no record of this client, address outside the pool: not answering");
                    return None;
                }
                self.usable(want, now) && self.leases.get(want).is_none()
            }
        };
        if !ok {
            return self.nak(req, want, "not this machine's address");
        }
        let expires = now.saturating_add(self.settings.lease_time.as_secs());
        self.leases.set(want, req.mac, State::Bound, expires);
        self.respond(req, Kind::Ack, want)
    }

    fn nak(&mut self, req: &Request, want: Ipv4Addr, why: &str) -> Option<Reply> {
        info!(mac = %format_mac(&req.mac), requested = %want, reason = why, "DHCPNAK");
        self.respond(req, Kind::Nak, Ipv4Addr::UNSPECIFIED)
    }

    fn decline(&mut self, req: &Request, now: u64) {
        let mac = format_mac(&req.mac);
        let Some(ip) = req.requested_ip else {
            debug!(%mac, "DECLINE without option 50: ignored");
            return;
        };
        if req.server_id.is_some_and(|s| s != self.settings.server) {
            return;
        }
        if let Some(reserved) = self.reservation(&req.mac) {
            if reserved == ip {
                warn!(%mac, %ip, "DHCPDECLINE: the reserved address is in use by another machine");
            }
            return;
        }
        match self.leases.of_mac(&req.mac) {
            Some((held, _)) if held == ip => {
                warn!(%mac, %ip, hold_s = DECLINE_HOLD, "DHCPDECLINE: address in use on the link, kept out of the pool");
                self.leases.decline(ip, now + DECLINE_HOLD);
            }
            _ => debug!(%mac, %ip, "DECLINE for an address the client does not hold: ignored"),
        }
    }

    fn release(&mut self, req: &Request, now: u64) {
        if req.server_id.is_some_and(|s| s != self.settings.server) {
            return;
        }
        if let Some((ip, l)) = self.leases.of_mac(&req.mac) {
            if ip == req.ciaddr && l.active(now) {
                info!(mac = %format_mac(&req.mac), %ip, "DHCPRELEASE");
                // Remembered, not forgotten: the machine gets it again if it comes back.
                self.leases.set(ip, req.mac, State::Bound, now);
            }
        }
    }

    /// proxyDHCP on the server port: PXE clients only, boot information only.
    fn proxy(&mut self, req: &Request) -> Option<Reply> {
        let t = match req.message_type {
            MessageType::Discover => DhcpType::Offer,
            MessageType::Request if req.server_id == Some(self.settings.server) => DhcpType::Ack,
            _ => return None,
        };
        if !req.is_pxe() {
            debug!(mac = %format_mac(&req.mac), "proxyDHCP: not a PXE client, not answering");
            return None;
        }
        self.respond(req, Kind::Proxy(t), Ipv4Addr::UNSPECIFIED)
    }

    /// The PXE boot-server exchange on port 4011 (UEFI clients after a proxy offer).
    fn boot_server(&mut self, req: &Request, source: Source) -> Option<Reply> {
        if req.message_type != MessageType::Request && req.message_type != MessageType::Inform {
            return None;
        }
        let mut reply = self.respond(req, Kind::BootServer, Ipv4Addr::UNSPECIFIED)?;
        if !source.addr.ip().is_unspecified() {
            reply.destination = source.addr;
        }
        Some(reply)
    }

    /// Build and address a reply; None when a boot-only reply has no boot file to give.
    fn respond(&mut self, req: &Request, kind: Kind, yiaddr: Ipv4Addr) -> Option<Reply> {
        let host = self.host(&req.mac);
        let boot = host.map_or(&self.settings.default_boot, |h| &h.boot);
        let choice = boot_file(req, boot);
        let file = match choice {
            BootChoice::File(f) => Some(f),
            BootChoice::UnknownArch(arch) => {
                debug!(mac = %format_mac(&req.mac), arch, "no boot file for this client architecture (option 93)");
                None
            }
            BootChoice::NotConfigured => None,
        };
        let boot_only = matches!(kind, Kind::Proxy(_) | Kind::BootServer);
        if boot_only && file.is_none() {
            debug!(mac = %format_mac(&req.mac), "proxyDHCP: no boot file for this client, not answering");
            return None;
        }
        let draft = Draft {
            kind,
            yiaddr,
            host,
            file,
        };
        let bytes = match reply::build(&self.settings, req, &draft) {
            Ok(b) => b,
            Err(e) => {
                warn!(mac = %format_mac(&req.mac), error = %e, "cannot build a reply");
                return None;
            }
        };
        let destination = destination(req, kind);
        if kind != Kind::Nak {
            info!(
                mac = %format_mac(&req.mac),
                ip = %if yiaddr.is_unspecified() { req.ciaddr } else { yiaddr },
                host = host.map_or("-", |h| h.hostname.as_str()),
                file = file.unwrap_or("-"),
                to = %destination,
                "{}", reply::type_name(kind)
            );
        }
        Some(Reply { bytes, destination })
    }

    fn host(&self, mac: &[u8; 6]) -> Option<&Host> {
        self.hosts
            .get(mac)
            .and_then(|&i| self.settings.hosts.get(i))
    }

    /// The machine's reserved address. An entry without one (0.0.0.0, allowed by the
    /// configuration in proxy mode) still gives the machine its boot files and iSCSI options,
    /// but its address comes from the pool like anyone else's.
    fn reservation(&self, mac: &[u8; 6]) -> Option<Ipv4Addr> {
        self.host(mac)
            .map(|h| h.ip)
            .filter(|ip| !ip.is_unspecified())
    }

    fn subnet(&self) -> String {
        format!("{}/{}", self.settings.network, self.settings.prefix)
    }

    fn in_subnet(&self, ip: Ipv4Addr) -> bool {
        in_subnet(&self.settings, ip)
    }

    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        self.settings
            .pool
            .is_some_and(|(a, b)| (a..=b).contains(&ip))
    }

    fn reserved(&self, ip: Ipv4Addr) -> bool {
        self.settings.hosts.iter().any(|h| h.ip == ip)
    }

    /// Whether a pool address may be handed out at all at `now` (not whether it is free).
    fn usable(&self, ip: Ipv4Addr, now: u64) -> bool {
        usable(&self.settings, &self.hosts, ip) && !self.leases.is_declined(ip, now)
    }
}

/// In the pool, inside the subnet but not its network or broadcast address, not reserved,
/// not the server's or the router's address.
fn usable(settings: &Settings, hosts: &HashMap<[u8; 6], usize>, ip: Ipv4Addr) -> bool {
    let in_pool = settings.pool.is_some_and(|(a, b)| (a..=b).contains(&ip));
    let m = u32::from(reply::mask(settings.prefix));
    let host_part = u32::from(ip) & !m;
    in_pool
        && in_subnet(settings, ip)
        && (settings.prefix >= 31 || (host_part != 0 && host_part != !m))
        && ip != settings.server
        && Some(ip) != settings.router
        && !hosts
            .values()
            .filter_map(|&i| settings.hosts.get(i))
            .any(|h| h.ip == ip)
}

fn in_subnet(settings: &Settings, ip: Ipv4Addr) -> bool {
    let m = u32::from(reply::mask(settings.prefix));
    u32::from(ip) & m == u32::from(settings.network) & m
}

/// RFC 2131 §4.1: relayed → the relay's server port; NAK → broadcast; a client with an
/// address → unicast to it; otherwise broadcast (a client without an address cannot be
/// unicast to without writing its MAC into the ARP table, and one link makes broadcast
/// correct).
fn destination(req: &Request, kind: Kind) -> SocketAddrV4 {
    if !req.giaddr.is_unspecified() {
        return SocketAddrV4::new(req.giaddr, SERVER_PORT);
    }
    let unicast = matches!(kind, Kind::Ack | Kind::InformAck | Kind::BootServer)
        && !req.ciaddr.is_unspecified();
    if unicast {
        SocketAddrV4::new(req.ciaddr, CLIENT_PORT)
    } else {
        SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)
    }
}

fn check(s: &Settings) -> Result<(), Error> {
    if s.prefix > 32 {
        return Err(Error::Settings(format!(
            "prefix /{} is longer than 32",
            s.prefix
        )));
    }
    if let Some((a, b)) = s.pool {
        if a > b {
            return Err(Error::Settings(format!("pool {a}-{b}: start after end")));
        }
        if !in_subnet(s, a) || !in_subnet(s, b) {
            return Err(Error::Settings(format!(
                "pool {a}-{b} is not inside {}/{}",
                s.network, s.prefix
            )));
        }
    }
    if s.lease_time < Duration::from_secs(60) {
        return Err(Error::Settings(format!(
            "lease time {} s is shorter than 60 s",
            s.lease_time.as_secs()
        )));
    }
    Ok(())
}

/// Unix seconds (0 before 1970, which only a broken clock reports).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Rate limit for log lines about things a client controls (bad packets, floods): at most one
/// line per kind per [`LOG_INTERVAL`], carrying how many were suppressed since the last one.
/// Kinds are few and fixed (`WireError::kind`, "exhausted", "unknown", "relay"), so the map
/// cannot grow with the traffic.
#[derive(Debug, Default)]
struct Throttle {
    last: HashMap<&'static str, (u64, u64)>,
}

impl Throttle {
    /// `Some(suppressed)` when a line may be logged now.
    fn allow(&mut self, kind: &'static str, now: u64) -> Option<u64> {
        let entry = self.last.entry(kind).or_insert((0, 0));
        if entry.0 == 0 || now >= entry.0.saturating_add(LOG_INTERVAL) {
            let suppressed = entry.1;
            *entry = (now.max(1), 0);
            Some(suppressed)
        } else {
            entry.1 += 1;
            None
        }
    }
}
