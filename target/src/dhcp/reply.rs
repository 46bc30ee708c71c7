//! Building replies with dhcproto: which options each kind of reply carries, the boot file
//! choice (option 93 as a raw number, iPXE detection), PXE's option 43, and iPXE's option 175.
//!
//! Pure functions of the settings, the request and the chosen address; [`super::Server`]
//! decides *whether* and *what address*, this module only writes it down.

use std::net::Ipv4Addr;

use dhcproto::v4::{
    self, DhcpOption, Flags, HType, Message, MessageType as DhcpType, Opcode, OptionCode,
    UnknownOption,
};
use dhcproto::{Encodable, Encoder};
use tracing::debug;

use super::wire::{code, Request, FLAG_BROADCAST};
use super::{Boot, Host, IscsiBoot, Mode, Settings};

/// iPXE's encapsulated sub-options (ipxe `include/ipxe/dhcp.h`).
pub mod ipxe {
    /// Do not wait for a ProxyDHCP offer.
    pub const NO_PXEDHCP: u8 = 176;
    /// CHAP user name.
    pub const USERNAME: u8 = 190;
    /// CHAP secret.
    pub const PASSWORD: u8 = 191;
    /// Mutual CHAP: the target's user name.
    pub const REVERSE_USERNAME: u8 = 192;
    /// Mutual CHAP: the target's secret.
    pub const REVERSE_PASSWORD: u8 = 193;
}

/// Option 43 for PXE clients: sub-option 6 (PXE_DISCOVERY_CONTROL) = 8, "the boot file is
/// given, do not run boot server discovery", as dnsmasq and pixiecore send it.
pub const PXE_VENDOR_OPTIONS: [u8; 4] = [6, 1, 8, 255];

/// The BOOTP minimum message size some PXE ROMs insist on (RFC 1542 §3.4).
const MIN_REPLY_LEN: usize = 300;
/// The BOOTP `file` field's size; longer names go in option 67 only.
const FILE_FIELD: usize = 128;

/// What a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// DHCPOFFER with an address.
    Offer,
    /// DHCPACK with an address and a lease.
    Ack,
    /// DHCPNAK.
    Nak,
    /// DHCPACK to an INFORM: configuration only.
    InformAck,
    /// ProxyDHCP OFFER (or ACK to a REQUEST on port 67): boot information only.
    Proxy(DhcpType),
    /// ACK on port 4011 to a PXE boot-server REQUEST: the boot file, no option 43.
    BootServer,
}

/// Which boot file the client gets, or why none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootChoice<'a> {
    /// This file.
    File(&'a str),
    /// The configuration has no file for this kind of client.
    NotConfigured,
    /// Option 93 names an architecture there is no entry for.
    UnknownArch(u16),
}

/// Choose the boot file: iPXE gets `boot.ipxe` when set; otherwise option 93 as a raw IANA
/// value, absent or 0 → `bios`, 7 or 9 → `efi_x64` (7 is what EDK2 x64 firmware sends; 9 is
/// RFC 4578's old x64 number, which dhcproto's enum still uses), anything else → none.
pub fn boot_file<'a>(req: &Request, boot: &'a Boot) -> BootChoice<'a> {
    if req.is_ipxe() {
        if let Some(f) = &boot.ipxe {
            return BootChoice::File(f);
        }
    }
    let file = match req.client_arch {
        None | Some(0) => &boot.bios,
        Some(7 | 9) => &boot.efi_x64,
        Some(other) => return BootChoice::UnknownArch(other),
    };
    file.as_deref()
        .map_or(BootChoice::NotConfigured, BootChoice::File)
}

/// The subnet mask of a prefix length.
pub fn mask(prefix: u8) -> Ipv4Addr {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits)
}

/// Option 175's value for this client: 176 = 1 for iPXE in Full mode, then the CHAP
/// credentials. `None` when there is nothing to say.
pub fn ipxe_encapsulated(mode: Mode, is_ipxe: bool, iscsi: Option<&IscsiBoot>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if mode == Mode::Full && is_ipxe {
        out.extend([ipxe::NO_PXEDHCP, 1, 1]);
    }
    if let Some(iscsi) = iscsi {
        for (creds, user_code, secret_code) in [
            (&iscsi.chap, ipxe::USERNAME, ipxe::PASSWORD),
            (
                &iscsi.mutual_chap,
                ipxe::REVERSE_USERNAME,
                ipxe::REVERSE_PASSWORD,
            ),
        ] {
            if let Some(c) = creds {
                sub_option(&mut out, user_code, c.user.as_bytes());
                sub_option(&mut out, secret_code, c.secret.expose());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Append one encapsulated option; values over 255 bytes are cut (the configuration layer
/// refuses such names and secrets, RFC 7143 caps CHAP secrets far below).
fn sub_option(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    let value = value.get(..255).unwrap_or(value);
    out.push(code);
    out.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(value);
}

/// Everything that goes into one reply.
#[derive(Debug)]
pub struct Draft<'a> {
    /// The kind.
    pub kind: Kind,
    /// yiaddr (unspecified for NAK, INFORM and proxy replies).
    pub yiaddr: Ipv4Addr,
    /// The reservation, when the client has one.
    pub host: Option<&'a Host>,
    /// The boot file, when one was chosen.
    pub file: Option<&'a str>,
}

/// Encode a reply to `req`.
///
/// # Errors
/// Only if dhcproto cannot encode the message (not expected: every length is bounded here).
pub fn build(settings: &Settings, req: &Request, draft: &Draft<'_>) -> Result<Vec<u8>, String> {
    let Draft {
        kind,
        yiaddr,
        host,
        file,
    } = *draft;
    let ciaddr = match kind {
        Kind::Ack | Kind::InformAck | Kind::BootServer => req.ciaddr,
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let siaddr = if kind == Kind::Nak {
        Ipv4Addr::UNSPECIFIED
    } else {
        settings.server
    };
    let mut msg = Message::new(ciaddr, yiaddr, siaddr, req.giaddr, &req.mac);
    msg.set_opcode(Opcode::BootReply)
        .set_htype(HType::Eth)
        .set_xid(req.xid);
    let mut flags = req.flags;
    if kind == Kind::Nak && !req.giaddr.is_unspecified() {
        flags |= FLAG_BROADCAST; // RFC 2131 §4.3.2: the relay broadcasts a NAK
    }
    msg.set_flags(Flags::new(flags));
    let opts = msg.opts_mut();
    let dhcp_type = match kind {
        Kind::Offer => DhcpType::Offer,
        Kind::Nak => DhcpType::Nak,
        Kind::Ack | Kind::InformAck | Kind::BootServer => DhcpType::Ack,
        Kind::Proxy(t) => t,
    };
    opts.insert(DhcpOption::MessageType(dhcp_type));
    opts.insert(DhcpOption::ServerIdentifier(settings.server));
    if let Some(relay) = &req.relay_agent {
        opts.insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(code::RELAY_AGENT),
            relay.clone(),
        )));
    }
    if kind == Kind::Nak {
        opts.insert(DhcpOption::Message("address not available".into()));
        return encode(&msg);
    }
    if matches!(kind, Kind::Offer | Kind::Ack) {
        let secs = u32::try_from(settings.lease_time.as_secs()).unwrap_or(u32::MAX);
        opts.insert(DhcpOption::AddressLeaseTime(secs));
        opts.insert(DhcpOption::Renewal(secs / 2));
        opts.insert(DhcpOption::Rebinding(secs / 8 * 7));
    }
    if matches!(kind, Kind::Offer | Kind::Ack | Kind::InformAck) {
        let m = mask(settings.prefix);
        opts.insert(DhcpOption::SubnetMask(m));
        opts.insert(DhcpOption::BroadcastAddr(Ipv4Addr::from(
            u32::from(settings.network) | !u32::from(m),
        )));
        if let Some(r) = settings.router {
            opts.insert(DhcpOption::Router(vec![r]));
        }
        if !settings.dns.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(settings.dns.clone()));
        }
        if let Some(d) = &settings.domain {
            opts.insert(DhcpOption::DomainName(d.clone()));
        }
        if let Some(h) = host.filter(|h| !h.hostname.is_empty()) {
            opts.insert(DhcpOption::Hostname(h.hostname.clone()));
        }
    }
    // Boot information, in every kind of reply but NAK.
    opts.insert(DhcpOption::TFTPServerName(
        settings.server.to_string().into_bytes(),
    ));
    if let Some(f) = file {
        opts.insert(DhcpOption::BootfileName(f.as_bytes().to_vec()));
        if f.len() < FILE_FIELD {
            msg_file(&mut msg, f);
        } else {
            debug!(
                file = f,
                "boot file name too long for the BOOTP file field: option 67 only"
            );
        }
    }
    let opts = msg.opts_mut();
    if req.is_pxe() {
        opts.insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
        if kind != Kind::BootServer {
            opts.insert(DhcpOption::VendorExtensions(PXE_VENDOR_OPTIONS.to_vec()));
        }
    }
    if let Some(guid) = &req.client_guid {
        opts.insert(DhcpOption::ClientMachineIdentifier(guid.clone()));
    }
    // The root disk is for the booted kernel's initiator, not for the boot firmware: iPXE
    // given a root path hooks the disk as a BIOS drive before it runs the boot file, and the
    // kernel's setup then probes that drive (EDD) through a NIC pxelinux has already shut
    // down; measured here, the kernel started 60 s late. So PXE firmware (option 60
    // PXEClient) gets neither the root path nor the initiator name nor the credentials.
    let iscsi = host
        .and_then(|h| h.iscsi.as_ref())
        .filter(|_| !req.is_pxe());
    if let Some(i) = iscsi {
        opts.insert(DhcpOption::RootPath(i.root_path.clone()));
        opts.insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(code::ISCSI_INITIATOR),
            i.initiator.clone().into_bytes(),
        )));
    }
    if req.asks_for(code::IPXE_ENCAP) || req.is_ipxe() {
        if let Some(encap) = ipxe_encapsulated(settings.mode, req.is_ipxe(), iscsi) {
            opts.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::from(code::IPXE_ENCAP),
                encap,
            )));
        }
    }
    encode(&msg)
}

fn msg_file(msg: &mut Message, file: &str) {
    // Length checked by the caller: set_fname asserts at most 128 bytes.
    msg.set_fname(file.as_bytes());
}

fn encode(msg: &Message) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(576);
    msg.encode(&mut Encoder::new(&mut buf))
        .map_err(|e| format!("cannot encode reply: {e}"))?;
    if buf.len() < MIN_REPLY_LEN {
        buf.resize(MIN_REPLY_LEN, 0);
    }
    Ok(buf)
}

/// dhcproto's message type, for tests and logs.
pub fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Offer => "DHCPOFFER",
        Kind::Ack | Kind::BootServer => "DHCPACK",
        Kind::InformAck => "DHCPACK(inform)",
        Kind::Nak => "DHCPNAK",
        Kind::Proxy(v4::MessageType::Offer) => "DHCPOFFER(proxy)",
        Kind::Proxy(_) => "DHCPACK(proxy)",
    }
}
