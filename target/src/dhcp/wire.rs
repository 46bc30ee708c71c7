//! Reading a client's DHCP message (RFC 2131 §2 header, RFC 2132 options): only the fields and
//! options the server acts on, each bounds- and length-checked.
//!
//! # Why requests are not decoded with dhcproto
//! Replies are built and encoded with dhcproto ([`super::reply`]). Requests come off the wire
//! from anyone on the link, and dhcproto 0.14's option decoders are not made for that: several
//! `debug_assert!` on lengths read off the wire (option 94, 80, 81, 91..), the fixed-size ones
//! (53, 57, 93..) read their bytes without checking the option's length, which silently
//! shifts every later option, and a malformed option ends option parsing without an error, so
//! a packet with a bad option 50 would look like one without it. The initiator's client moved
//! off dhcproto for the same reasons (`initiator/src/net/dhcp/wire.rs`). Here a request is one
//! pass over the options that either yields a [`Request`] or says exactly what is wrong
//! ([`WireError`]), so that the log line for a bad packet can name the byte.
//!
//! # No-panic contract
//! [`Request::parse`] accepts any byte string. Every read goes through `get`, never an
//! unchecked index, and no allocation is sized from the wire beyond the packet's own length.

use std::net::Ipv4Addr;

/// The fixed BOOTP header before the magic cookie.
pub const BOOTP_LEN: usize = 236;
/// The header plus the magic cookie: the smallest DHCP message.
pub const HEADER_LEN: usize = 240;
/// RFC 2131 §3.
pub const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// BOOTREQUEST.
pub const OP_REQUEST: u8 = 1;
/// The BROADCAST bit of `flags`.
pub const FLAG_BROADCAST: u16 = 0x8000;

/// Option codes read or written by the server (RFC 2132 unless noted).
pub mod code {
    /// Padding.
    pub const PAD: u8 = 0;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// Message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list.
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Vendor class identifier.
    pub const VENDOR_CLASS: u8 = 60;
    /// User class (RFC 3004; iPXE sends the bare string "iPXE").
    pub const USER_CLASS: u8 = 77;
    /// Relay agent information (RFC 3046).
    pub const RELAY_AGENT: u8 = 82;
    /// Client system architecture (RFC 4578).
    pub const CLIENT_ARCH: u8 = 93;
    /// Client machine identifier, the UUID/GUID (RFC 4578).
    pub const CLIENT_GUID: u8 = 97;
    /// iPXE's encapsulated options.
    pub const IPXE_ENCAP: u8 = 175;
    /// iSCSI initiator name (iPXE).
    pub const ISCSI_INITIATOR: u8 = 203;
    /// End of options.
    pub const END: u8 = 255;
}

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1.
    Discover,
    /// 3.
    Request,
    /// 4.
    Decline,
    /// 7.
    Release,
    /// 8.
    Inform,
    /// Anything a client should not send a server (OFFER, ACK, NAK, lease queries...).
    Other(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => MessageType::Discover,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            n => MessageType::Other(n),
        }
    }
}

/// Why a datagram is not a DHCP request this server can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the BOOTP header and cookie.
    #[error("truncated: {have} bytes, a DHCP message has at least {HEADER_LEN}")]
    Truncated {
        /// The datagram's length.
        have: usize,
    },
    /// Not a BOOTREQUEST (op 2 is a server's reply, seen when another server is on the link).
    #[error("op {0} is not BOOTREQUEST")]
    NotRequest(u8),
    /// The magic cookie is missing: plain BOOTP, which this server does not answer.
    #[error("no DHCP magic cookie (plain BOOTP is not served)")]
    NoMagic,
    /// Only Ethernet (htype 1, hlen 6) is served.
    #[error("hardware type {htype} length {hlen} is not Ethernet")]
    NotEthernet {
        /// htype.
        htype: u8,
        /// hlen.
        hlen: u8,
    },
    /// An option's length byte is missing, or its value runs past the end of the packet.
    #[error("option {code} at byte {at}: length {len} runs past the packet end ({have} bytes)")]
    OptionPastEnd {
        /// The option code.
        code: u8,
        /// Offset of the option's code byte.
        at: usize,
        /// The announced length (0 when the length byte itself is missing).
        len: usize,
        /// The packet's length.
        have: usize,
    },
    /// An option the server reads has a length its format does not allow.
    #[error("option {code} has length {len}, {expected}")]
    BadOptionLength {
        /// The option code.
        code: u8,
        /// The length found.
        len: usize,
        /// What the format allows.
        expected: &'static str,
    },
    /// Option 53 is missing: BOOTP, or garbage.
    #[error("no message type (option 53)")]
    NoMessageType,
    /// The same option appears twice (RFC 3396 concatenation is only honoured for 55, 77, 82,
    /// 97 and 175, which may legitimately be long).
    #[error("option {0} appears twice")]
    Duplicate(u8),
}

impl WireError {
    /// A short name of the kind of error, for rate-limiting log lines per kind: a flood of one
    /// kind is summarised, and a different problem still gets its own line.
    pub fn kind(&self) -> &'static str {
        match self {
            WireError::Truncated { .. } => "truncated",
            WireError::NotRequest(_) => "not-request",
            WireError::NoMagic => "no-magic",
            WireError::NotEthernet { .. } => "not-ethernet",
            WireError::OptionPastEnd { .. } => "option-past-end",
            WireError::BadOptionLength { .. } => "bad-option-length",
            WireError::NoMessageType => "no-message-type",
            WireError::Duplicate(_) => "duplicate-option",
        }
    }
}

/// The parts of a client's message the server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Transaction id.
    pub xid: u32,
    /// secs (echoed in nothing; kept for logs).
    pub secs: u16,
    /// flags (the BROADCAST bit).
    pub flags: u16,
    /// Client's address, when it has one (RENEWING, REBINDING, INFORM, RELEASE).
    pub ciaddr: Ipv4Addr,
    /// Relay agent address, when relayed.
    pub giaddr: Ipv4Addr,
    /// The client's MAC.
    pub mac: [u8; 6],
    /// The raw 16-byte chaddr field, echoed in replies.
    pub chaddr: [u8; 16],
    /// Option 53.
    pub message_type: MessageType,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 55.
    pub parameter_request_list: Vec<u8>,
    /// Option 60.
    pub vendor_class: Option<Vec<u8>>,
    /// Option 77.
    pub user_class: Option<Vec<u8>>,
    /// Option 93, the first (preferred) architecture, raw IANA value.
    pub client_arch: Option<u16>,
    /// Option 97.
    pub client_guid: Option<Vec<u8>>,
    /// Whether option 175 is present (iPXE sends its feature list there).
    pub ipxe_encap: bool,
    /// Option 82, echoed to the relay (RFC 3046 §2.2).
    pub relay_agent: Option<Vec<u8>>,
}

impl Request {
    /// Parse a datagram sent to the server port.
    ///
    /// # Errors
    /// [`WireError`] names what is wrong; nothing in `packet` can make this panic.
    pub fn parse(packet: &[u8]) -> Result<Request, WireError> {
        if packet.len() < HEADER_LEN {
            return Err(WireError::Truncated { have: packet.len() });
        }
        let op = byte(packet, 0);
        if op != OP_REQUEST {
            return Err(WireError::NotRequest(op));
        }
        if packet.get(BOOTP_LEN..HEADER_LEN) != Some(&MAGIC[..]) {
            return Err(WireError::NoMagic);
        }
        let (htype, hlen) = (byte(packet, 1), byte(packet, 2));
        if htype != 1 || hlen != 6 {
            return Err(WireError::NotEthernet { htype, hlen });
        }
        let mut chaddr = [0u8; 16];
        chaddr.copy_from_slice(packet.get(28..44).unwrap_or(&[0; 16]));
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&chaddr[..6]);

        let mut req = Request {
            xid: u32::from_be_bytes(array(packet, 4)),
            secs: u16::from_be_bytes(array(packet, 8)),
            flags: u16::from_be_bytes(array(packet, 10)),
            ciaddr: Ipv4Addr::from(array::<4>(packet, 12)),
            giaddr: Ipv4Addr::from(array::<4>(packet, 24)),
            mac,
            chaddr,
            message_type: MessageType::Other(0),
            requested_ip: None,
            server_id: None,
            parameter_request_list: Vec::new(),
            vendor_class: None,
            user_class: None,
            client_arch: None,
            client_guid: None,
            ipxe_encap: false,
            relay_agent: None,
        };
        let mut message_type = None;
        for opt in Options::new(packet, HEADER_LEN) {
            let (code, value) = opt?;
            req.apply(code, value, &mut message_type)?;
        }
        req.message_type = message_type.ok_or(WireError::NoMessageType)?;
        Ok(req)
    }

    /// Store one option (the only place option values are interpreted).
    fn apply(
        &mut self,
        code: u8,
        value: &[u8],
        message_type: &mut Option<MessageType>,
    ) -> Result<(), WireError> {
        let bad = |expected| WireError::BadOptionLength {
            code,
            len: value.len(),
            expected,
        };
        let once = |present: bool| {
            if present {
                Err(WireError::Duplicate(code))
            } else {
                Ok(())
            }
        };
        match code {
            code::MESSAGE_TYPE => {
                once(message_type.is_some())?;
                let [t] = value else {
                    return Err(bad("must be 1"));
                };
                *message_type = Some(MessageType::from(*t));
            }
            code::REQUESTED_IP | code::SERVER_ID => {
                let ip = <[u8; 4]>::try_from(value).map_err(|_| bad("must be 4"))?;
                let slot = if code == code::REQUESTED_IP {
                    &mut self.requested_ip
                } else {
                    &mut self.server_id
                };
                once(slot.is_some())?;
                *slot = Some(Ipv4Addr::from(ip));
            }
            code::CLIENT_ARCH => {
                once(self.client_arch.is_some())?;
                if value.is_empty() || value.len() % 2 != 0 {
                    return Err(bad("must be a non-empty multiple of 2"));
                }
                self.client_arch = Some(u16::from_be_bytes(array(value, 0)));
            }
            code::VENDOR_CLASS => {
                once(self.vendor_class.is_some())?;
                self.vendor_class = Some(value.to_vec());
            }
            // RFC 3396: these may be split over several instances; concatenate.
            code::PARAMETER_REQUEST_LIST => self.parameter_request_list.extend_from_slice(value),
            code::USER_CLASS => extend(&mut self.user_class, value),
            code::CLIENT_GUID => extend(&mut self.client_guid, value),
            code::RELAY_AGENT => extend(&mut self.relay_agent, value),
            code::IPXE_ENCAP => self.ipxe_encap = true,
            _ => {}
        }
        Ok(())
    }

    /// Whether the client is a PXE ROM or a loader speaking PXE (option 60 starts "PXEClient").
    pub fn is_pxe(&self) -> bool {
        self.vendor_class
            .as_deref()
            .is_some_and(|v| v.starts_with(b"PXEClient"))
    }

    /// Whether the client is iPXE (option 77 contains "iPXE", or option 175 is present).
    pub fn is_ipxe(&self) -> bool {
        self.ipxe_encap
            || self
                .user_class
                .as_deref()
                .is_some_and(|u| u.windows(4).any(|w| w == b"iPXE"))
    }

    /// Whether the client asks for `option` in its parameter request list.
    pub fn asks_for(&self, option: u8) -> bool {
        self.parameter_request_list.contains(&option)
    }
}

fn extend(slot: &mut Option<Vec<u8>>, value: &[u8]) {
    slot.get_or_insert_with(Vec::new).extend_from_slice(value);
}

/// The byte at `at`; 0 past the end (only called on offsets checked against `HEADER_LEN`).
fn byte(packet: &[u8], at: usize) -> u8 {
    packet.get(at).copied().unwrap_or(0)
}

/// `N` bytes from `at`; zeros past the end (only called on checked offsets).
fn array<const N: usize>(packet: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = packet.get(at..at.saturating_add(N)) {
        out.copy_from_slice(src);
    }
    out
}

/// The options of a message: `(code, value)`, pads skipped, stopping at END or the packet
/// end. An option whose length runs past the end yields an error and ends the walk.
#[derive(Debug)]
pub struct Options<'a> {
    packet: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Options<'a> {
    /// Walk the options of `packet` starting at byte `at`.
    pub fn new(packet: &'a [u8], at: usize) -> Self {
        Options {
            packet,
            at,
            done: false,
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u8, &'a [u8]), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some(&code) = self.packet.get(self.at) else {
                self.done = true;
                return None;
            };
            match code {
                code::PAD => self.at += 1,
                code::END => self.done = true,
                _ => {
                    let start = self.at;
                    let past_end = |len| WireError::OptionPastEnd {
                        code,
                        at: start,
                        len,
                        have: self.packet.len(),
                    };
                    let Some(&len) = self.packet.get(start + 1) else {
                        self.done = true;
                        return Some(Err(past_end(0)));
                    };
                    let len = usize::from(len);
                    let Some(value) = self.packet.get(start + 2..start + 2 + len) else {
                        self.done = true;
                        return Some(Err(past_end(len)));
                    };
                    self.at = start + 2 + len;
                    return Some(Ok((code, value)));
                }
            }
        }
        None
    }
}
