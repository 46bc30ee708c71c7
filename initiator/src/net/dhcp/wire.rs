//! The DHCPv4 wire format (RFC 2131 §2, RFC 2132 options, RFC 3396 long options, RFC 3397
//! domain search), only as much as this client sends and reads: [`emit_request`] builds
//! DISCOVER and REQUEST, [`parse_reply`] reads a server's reply.
//!
//! # Why not dhcproto
//! The first version used dhcproto, as planned. Two things moved the codec here, in
//! smoltcp's manner (its `wire::dhcpv4` is the model): size, because dhcproto brings
//! hickory-proto, idna with the ICU normalisation tables and rand, about 0.5 MB of a static
//! agent that must stay under 2 MiB in total; and robustness, because several of its option
//! decoders `debug_assert!` on lengths read off the wire (proptest found one), so every
//! datagram had to be vetted before it could be handed over. dhcproto stays a
//! dev-dependency: the tests build the server's replies and decode this client's requests
//! with it, so the two codecs check each other.
//!
//! # No-panic contract
//! [`parse_reply`] accepts any byte string and returns a [`Reply`] or an [`Ignored`] reason;
//! every read is bounds-checked, and options are kept only from an allow-list, each with its
//! length checked.

use std::net::Ipv4Addr;

use super::Ignored;

/// The fixed BOOTP header plus the magic cookie.
pub const HEADER_LEN: usize = 240;
/// The BOOTP magic cookie (RFC 2131 §3).
pub const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// BOOTREQUEST.
const OP_REQUEST: u8 = 1;
/// BOOTREPLY.
pub const OP_REPLY: u8 = 2;
/// Ethernet.
const HTYPE_ETHERNET: u8 = 1;
/// The BROADCAST bit of `flags`.
const FLAG_BROADCAST: u16 = 0x8000;

/// Option codes used here (RFC 2132 unless noted).
pub mod code {
    /// Subnet mask.
    pub const SUBNET_MASK: u8 = 1;
    /// Routers.
    pub const ROUTER: u8 = 3;
    /// DNS servers.
    pub const DNS: u8 = 6;
    /// Host name.
    pub const HOSTNAME: u8 = 12;
    /// Domain name.
    pub const DOMAIN: u8 = 15;
    /// Root path.
    pub const ROOT_PATH: u8 = 17;
    /// Interface MTU.
    pub const MTU: u8 = 26;
    /// Broadcast address.
    pub const BROADCAST: u8 = 28;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// Lease time.
    pub const LEASE_TIME: u8 = 51;
    /// DHCP message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list.
    pub const PARAMETER_LIST: u8 = 55;
    /// Message (text with a NAK).
    pub const MESSAGE: u8 = 56;
    /// Maximum DHCP message size.
    pub const MAX_SIZE: u8 = 57;
    /// Renewal time (T1).
    pub const T1: u8 = 58;
    /// Rebinding time (T2).
    pub const T2: u8 = 59;
    /// Vendor class identifier.
    pub const VENDOR_CLASS: u8 = 60;
    /// Client identifier.
    pub const CLIENT_ID: u8 = 61;
    /// Bootfile name.
    pub const BOOTFILE: u8 = 67;
    /// Domain search (RFC 3397).
    pub const DOMAIN_SEARCH: u8 = 119;
    /// iPXE's encapsulated options.
    pub const IPXE: u8 = 175;
    /// iSCSI initiator name (iPXE `initiator-iqn`).
    pub const INITIATOR_NAME: u8 = 203;
    /// Pad.
    pub const PAD: u8 = 0;
    /// End.
    pub const END: u8 = 255;
}

/// Option 53's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// 1.
    Discover,
    /// 2.
    Offer,
    /// 3.
    Request,
    /// 4.
    Decline,
    /// 5.
    Ack,
    /// 6.
    Nak,
    /// 7.
    Release,
    /// 8.
    Inform,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for MsgType {
    fn from(v: u8) -> Self {
        match v {
            1 => MsgType::Discover,
            2 => MsgType::Offer,
            3 => MsgType::Request,
            4 => MsgType::Decline,
            5 => MsgType::Ack,
            6 => MsgType::Nak,
            7 => MsgType::Release,
            8 => MsgType::Inform,
            n => MsgType::Unknown(n),
        }
    }
}

impl From<MsgType> for u8 {
    fn from(t: MsgType) -> u8 {
        match t {
            MsgType::Discover => 1,
            MsgType::Offer => 2,
            MsgType::Request => 3,
            MsgType::Decline => 4,
            MsgType::Ack => 5,
            MsgType::Nak => 6,
            MsgType::Release => 7,
            MsgType::Inform => 8,
            MsgType::Unknown(n) => n,
        }
    }
}

/// A request this client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRepr<'a> {
    /// DISCOVER or REQUEST.
    pub kind: MsgType,
    /// Transaction id.
    pub xid: u32,
    /// Seconds since the client started.
    pub secs: u16,
    /// The client's MAC.
    pub mac: [u8; 6],
    /// Option 50 (REQUEST in SELECTING).
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54 (REQUEST in SELECTING).
    pub server_id: Option<Ipv4Addr>,
    /// Option 55.
    pub parameter_list: &'a [u8],
    /// Option 57.
    pub max_size: u16,
    /// Option 60.
    pub vendor_class: &'a [u8],
    /// Option 175, if any.
    pub ipxe: Option<&'a [u8]>,
}

fn put_option(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    // Every value here is far below 255 bytes; longer ones would be split (RFC 3396).
    for chunk in value.chunks(255) {
        out.push(code);
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}

/// Encodes a request: BOOTREQUEST, Ethernet, BROADCAST flag, no addresses, then options 53,
/// 61 (type 1 + MAC), 55, 57, 60, 50, 54, 175 and End, padded to the 300-byte BOOTP minimum
/// that some relays and servers still insist on.
pub fn emit_request(r: &RequestRepr<'_>) -> Vec<u8> {
    let mut p = vec![0u8; HEADER_LEN];
    p[0] = OP_REQUEST;
    p[1] = HTYPE_ETHERNET;
    p[2] = 6; // hlen
    p[4..8].copy_from_slice(&r.xid.to_be_bytes());
    p[8..10].copy_from_slice(&r.secs.to_be_bytes());
    p[10..12].copy_from_slice(&FLAG_BROADCAST.to_be_bytes());
    p[28..34].copy_from_slice(&r.mac);
    p[236..240].copy_from_slice(&MAGIC);
    put_option(&mut p, code::MESSAGE_TYPE, &[u8::from(r.kind)]);
    let mut client_id = vec![HTYPE_ETHERNET];
    client_id.extend_from_slice(&r.mac);
    put_option(&mut p, code::CLIENT_ID, &client_id);
    put_option(&mut p, code::PARAMETER_LIST, r.parameter_list);
    put_option(&mut p, code::MAX_SIZE, &r.max_size.to_be_bytes());
    put_option(&mut p, code::VENDOR_CLASS, r.vendor_class);
    if let Some(ip) = r.requested_ip {
        put_option(&mut p, code::REQUESTED_IP, &ip.octets());
    }
    if let Some(ip) = r.server_id {
        put_option(&mut p, code::SERVER_ID, &ip.octets());
    }
    if let Some(ipxe) = r.ipxe {
        put_option(&mut p, code::IPXE, ipxe);
    }
    p.push(code::END);
    if p.len() < 300 {
        p.resize(300, code::PAD);
    }
    p
}

/// Options kept from a reply, with their allowed lengths.
fn allowed(code: u8, len: usize) -> Option<bool> {
    use code::*;
    Some(match code {
        MESSAGE_TYPE => len == 1,
        SUBNET_MASK | BROADCAST | SERVER_ID | LEASE_TIME | T1 | T2 => len == 4,
        MTU => len == 2,
        ROUTER | DNS => len >= 4 && len % 4 == 0,
        HOSTNAME | DOMAIN | ROOT_PATH | MESSAGE | BOOTFILE | DOMAIN_SEARCH | IPXE
        | INITIATOR_NAME => true,
        _ => return None,
    })
}

/// Options that may appear once only (RFC 3396 concatenation makes no sense for them).
fn single(code: u8) -> bool {
    use code::*;
    matches!(
        code,
        MESSAGE_TYPE | SUBNET_MASK | BROADCAST | SERVER_ID | LEASE_TIME | T1 | T2 | MTU
    )
}

/// A reply's options, each code once with its (RFC 3396 concatenated) value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options(Vec<(u8, Vec<u8>)>);

impl Options {
    /// The value of `code`.
    pub fn get(&self, code: u8) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    /// A 4-byte address option.
    pub fn ipv4(&self, code: u8) -> Option<Ipv4Addr> {
        let b: [u8; 4] = self.get(code)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    }

    /// A list of addresses.
    pub fn ipv4s(&self, code: u8) -> Vec<Ipv4Addr> {
        self.get(code)
            .unwrap_or_default()
            .chunks_exact(4)
            .filter_map(|c| <[u8; 4]>::try_from(c).ok().map(Ipv4Addr::from))
            .collect()
    }

    /// A 32-bit number.
    pub fn u32(&self, code: u8) -> Option<u32> {
        Some(u32::from_be_bytes(self.get(code)?.try_into().ok()?))
    }

    /// A 16-bit number.
    pub fn u16(&self, code: u8) -> Option<u16> {
        Some(u16::from_be_bytes(self.get(code)?.try_into().ok()?))
    }

    /// The message type.
    pub fn msg_type(&self) -> Option<MsgType> {
        match self.get(code::MESSAGE_TYPE)? {
            [t] => Some(MsgType::from(*t)),
            _ => None,
        }
    }
}

/// A server's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `op` (2 for BOOTREPLY).
    pub op: u8,
    /// `xid`.
    pub xid: u32,
    /// `chaddr`, `hlen` bytes of it (at most 16).
    pub chaddr: Vec<u8>,
    /// `yiaddr`.
    pub yiaddr: Ipv4Addr,
    /// `siaddr`.
    pub siaddr: Ipv4Addr,
    /// `sname`, up to its first NUL.
    pub sname: Vec<u8>,
    /// `file`, up to its first NUL.
    pub file: Vec<u8>,
    /// The kept options.
    pub options: Options,
}

fn ipv4_at(p: &[u8], at: usize) -> Ipv4Addr {
    p.get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(Ipv4Addr::UNSPECIFIED, Ipv4Addr::from)
}

fn until_nul(b: &[u8]) -> Vec<u8> {
    b.split(|c| *c == 0).next().unwrap_or_default().to_vec()
}

/// Parses a datagram from a server (see the module docs).
///
/// # Errors
/// [`Ignored::Malformed`] naming the first problem: too short, no magic cookie, an option
/// running past the end, a kept option with a wrong length or repeated.
pub fn parse_reply(p: &[u8]) -> Result<Reply, Ignored> {
    let header = p.get(..HEADER_LEN).ok_or_else(|| {
        Ignored::Malformed(format!("{} bytes, shorter than a BOOTP header", p.len()))
    })?;
    if header[236..240] != MAGIC {
        return Err(Ignored::Malformed("no DHCP magic cookie".into()));
    }
    let hlen = usize::from(header[2]).min(16);
    let mut entries: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut rest = p.get(HEADER_LEN..).unwrap_or_default();
    while let Some((&c, tail)) = rest.split_first() {
        match c {
            code::PAD => {
                rest = tail;
                continue;
            }
            code::END => break,
            _ => {}
        }
        let (&len, tail) = tail
            .split_first()
            .ok_or_else(|| Ignored::Malformed(format!("option {c} has no length")))?;
        let len = usize::from(len);
        if tail.len() < len {
            return Err(Ignored::Malformed(format!(
                "option {c} runs past the end ({len} bytes announced, {} left)",
                tail.len()
            )));
        }
        let (value, tail) = tail.split_at(len);
        rest = tail;
        match allowed(c, len) {
            None => continue,
            Some(false) => {
                return Err(Ignored::Malformed(format!(
                    "option {c} has a bad length {len}"
                )))
            }
            Some(true) => {}
        }
        match entries.iter_mut().find(|(k, _)| *k == c) {
            Some(_) if single(c) => {
                return Err(Ignored::Malformed(format!("option {c} appears twice")));
            }
            Some((_, v)) => v.extend_from_slice(value),
            None => entries.push((c, value.to_vec())),
        }
    }
    Ok(Reply {
        op: header[0],
        xid: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        chaddr: header[28..28 + hlen].to_vec(),
        yiaddr: ipv4_at(header, 16),
        siaddr: ipv4_at(header, 20),
        sname: until_nul(&header[44..108]),
        file: until_nul(&header[108..236]),
        options: Options(entries),
    })
}

/// Decodes option 119: RFC 1035 names, with compression pointers into the option itself
/// (RFC 3397 §2). Names are returned without the trailing dot.
///
/// # Errors
/// A message naming the problem (truncated label, pointer out of range or looping).
pub fn parse_domain_list(data: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let (name, next) = read_name(data, at)?;
        names.push(name);
        at = next;
    }
    Ok(names)
}

/// Reads one name at `at`; returns it and the offset after it (in the uncompressed stream).
fn read_name(data: &[u8], mut at: usize) -> Result<(String, usize), String> {
    let mut labels: Vec<String> = Vec::new();
    let mut resume = None;
    let mut jumps = 0;
    loop {
        let len = *data
            .get(at)
            .ok_or_else(|| format!("option 119: name runs past the end at byte {at}"))?;
        match len {
            0 => {
                let next = resume.unwrap_or(at + 1);
                return Ok((labels.join("."), next));
            }
            l if l & 0xc0 == 0xc0 => {
                let lo = *data
                    .get(at + 1)
                    .ok_or_else(|| "option 119: truncated compression pointer".to_string())?;
                jumps += 1;
                if jumps > 64 {
                    return Err("option 119: compression pointers loop".into());
                }
                resume.get_or_insert(at + 2);
                let target = usize::from(l & 0x3f) << 8 | usize::from(lo);
                if target >= data.len() {
                    return Err(format!("option 119: pointer to {target} is out of range"));
                }
                at = target;
            }
            l if l & 0xc0 != 0 => return Err(format!("option 119: bad label type {l:#04x}")),
            l => {
                let l = usize::from(l);
                let label = data
                    .get(at + 1..at + 1 + l)
                    .ok_or_else(|| "option 119: label runs past the end".to_string())?;
                labels.push(String::from_utf8_lossy(label).into_owned());
                if labels.iter().map(|s| s.len() + 1).sum::<usize>() > 255 {
                    return Err("option 119: name longer than 255 bytes".into());
                }
                at += 1 + l;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_reply_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut p = header();
            p.extend(&tail);
            let _ = parse_reply(&p);
            let _ = parse_reply(&tail);
        }

        #[test]
        fn parse_domain_list_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_domain_list(&data);
        }
    }

    #[test]
    fn request_layout() {
        let p = emit_request(&RequestRepr {
            kind: MsgType::Request,
            xid: 0x0102_0304,
            secs: 7,
            mac: [2, 0, 0, 0, 0, 9],
            requested_ip: Some(Ipv4Addr::new(10, 0, 0, 5)),
            server_id: Some(Ipv4Addr::new(10, 0, 0, 2)),
            parameter_list: &[1, 3],
            max_size: 1500,
            vendor_class: b"v",
            ipxe: None,
        });
        assert_eq!(p.len(), 300, "padded to the BOOTP minimum");
        assert_eq!(&p[..12], [1, 1, 6, 0, 1, 2, 3, 4, 0, 7, 0x80, 0]);
        assert_eq!(&p[12..28], [0; 16], "ciaddr, yiaddr, siaddr, giaddr");
        assert_eq!(&p[28..44], [2, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&p[236..240], MAGIC);
        #[rustfmt::skip]
        let options = [
            53, 1, 3,
            61, 7, 1, 2, 0, 0, 0, 0, 9,
            55, 2, 1, 3,
            57, 2, 0x05, 0xdc,
            60, 1, b'v',
            50, 4, 10, 0, 0, 5,
            54, 4, 10, 0, 0, 2,
            255,
        ];
        assert_eq!(&p[240..240 + options.len()], options);
        assert!(p[240 + options.len()..].iter().all(|b| *b == 0));
    }

    fn header() -> Vec<u8> {
        let mut h = vec![0u8; HEADER_LEN];
        h[0] = OP_REPLY;
        h[2] = 6;
        h[236..240].copy_from_slice(&MAGIC);
        h
    }

    #[test]
    fn keeps_known_drops_unknown_and_checks_lengths() {
        let mut p = header();
        p.extend([
            53, 1, 2, 0, 80, 0, 94, 1, 9, 1, 4, 255, 255, 255, 0, 255, 99, 99,
        ]);
        let r = parse_reply(&p).unwrap();
        assert_eq!(r.options.msg_type(), Some(MsgType::Offer));
        assert_eq!(
            r.options.ipv4(code::SUBNET_MASK),
            Some(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(r.options.get(80), None, "not kept");
        for bad in [
            &[53u8, 2, 1, 1][..],
            &[1, 3, 1, 2, 3],
            &[3, 5, 1, 2, 3, 4, 5],
            &[26, 1, 9],
            &[3, 0],
        ] {
            let mut p = header();
            p.extend(bad);
            assert!(
                matches!(parse_reply(&p), Err(Ignored::Malformed(m)) if m.contains("bad length")),
                "{bad:?}"
            );
        }
        let mut p = header();
        p.extend([53, 1, 2, 53, 1, 5]);
        assert!(matches!(parse_reply(&p), Err(Ignored::Malformed(m)) if m.contains("twice")));
        // Repeated variable-length options are concatenated (RFC 3396).
        let mut p = header();
        p.extend([17, 2, b'a', b'b', 17, 1, b'c']);
        assert_eq!(
            parse_reply(&p).unwrap().options.get(code::ROOT_PATH),
            Some(&b"abc"[..])
        );
        let mut p = header();
        p.extend([17, 9, b'a']);
        assert!(
            matches!(parse_reply(&p), Err(Ignored::Malformed(m)) if m.contains("past the end"))
        );
        let mut p = header();
        p.push(17);
        assert!(matches!(parse_reply(&p), Err(Ignored::Malformed(m)) if m.contains("no length")));
        assert!(parse_reply(&p[..100]).is_err());
        let mut p = header();
        p[236] = 0;
        assert!(matches!(parse_reply(&p), Err(Ignored::Malformed(m)) if m.contains("cookie")));
        // A huge hlen is clamped to chaddr's 16 bytes.
        let mut p = header();
        p[2] = 200;
        assert_eq!(parse_reply(&p).unwrap().chaddr.len(), 16);
    }

    #[test]
    fn domain_search_with_compression() {
        // RFC 3397 §2's example: eng.apple.com. and marketing.apple.com.
        #[rustfmt::skip]
        let data = [
            3, b'e', b'n', b'g', 5, b'a', b'p', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
            9, b'm', b'a', b'r', b'k', b'e', b't', b'i', b'n', b'g', 0xc0, 4,
        ];
        assert_eq!(
            parse_domain_list(&data).unwrap(),
            ["eng.apple.com", "marketing.apple.com"]
        );
        assert!(parse_domain_list(&[0xc0, 0]).unwrap_err().contains("loop"));
        assert!(parse_domain_list(&[0xc0, 9])
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_domain_list(&[0xc0])
            .unwrap_err()
            .contains("truncated"));
        assert!(parse_domain_list(&[5, b'a'])
            .unwrap_err()
            .contains("past the end"));
        assert!(parse_domain_list(&[3, b'a', b'b', b'c']).is_err());
        assert!(parse_domain_list(&[0x40])
            .unwrap_err()
            .contains("label type"));
        assert_eq!(parse_domain_list(&[]).unwrap(), Vec::<String>::new());
    }
}
