//! DHCPv4 client (RFC 2131 §4.4), sans-IO: [`Client`] takes received datagrams and the current
//! time and says what to send and when to wake up; the socket driver (`super::socket`) only
//! moves bytes. That keeps the whole protocol testable without sockets or root, in the shape
//! of smoltcp's `socket::dhcpv4`.
//!
//! # What the client does
//! DISCOVER -> OFFER -> REQUEST -> ACK, taking the first acceptable OFFER (a PXE/iSCSI boot
//! network has one server that knows the machine). A NAK for the REQUEST restarts from
//! DISCOVER with a new `xid`; a REQUEST that gets no answer is retransmitted and, after
//! [`MAX_REQUESTS`] tries, also restarts. Retransmissions follow RFC 2131 §4.1: the first
//! after 4 s, doubling up to 64 s, each randomised by ±1 s, until the overall deadline.
//!
//! Every request sets the BROADCAST flag (the interface has no address yet, so it cannot
//! receive a unicast reply), a client identifier (type 1 + MAC, RFC 2132 §9.14), a parameter
//! request list ([`PARAMETER_REQUEST_LIST`]), vendor class [`VENDOR_CLASS`], and iPXE's
//! encapsulated option 175 announcing only the iSCSI feature: DHCP servers set up for iSCSI
//! boot commonly hand the root path (option 17) and the CHAP credentials (175.190-193) only to
//! clients that send option 175 (dnsmasq `dhcp-match=set:ipxe,175`), and this agent is the one
//! that continues the iSCSI boot iPXE started.
//!
//! Only replies whose `xid` and `chaddr` match are looked at; anything else, including
//! truncated or garbage datagrams, is returned as [`Ignored`] with a reason and never panics.
//! The wire format is in [`wire`] (see there for why it is not dhcproto).

mod lease;
#[cfg(test)]
mod tests;
pub mod wire;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::cmdline::Mac;
use crate::config::DhcpInfo;
pub use lease::{broadcast_of, netmask_of, Lease};
use wire::{code, MsgType, Reply, RequestRepr};

/// The client's UDP port.
pub const CLIENT_PORT: u16 = 68;
/// The server's UDP port.
pub const SERVER_PORT: u16 = 67;
/// Option 60, vendor class identifier. dnsmasq can tag on it
/// (`dhcp-vendorclass=set:pxeroot,pxeroot-initiator`), ISC dhcpd matches
/// `option vendor-class-identifier`. It deliberately does not start with `PXEClient`: that
/// would make PXE-aware servers answer with a boot menu meant for the firmware.
pub const VENDOR_CLASS: &[u8] = b"pxeroot-initiator";
/// Option 55: subnet mask, router, DNS, host name, domain, root path, MTU, broadcast, vendor
/// specific, lease time, server id, domain search, iPXE encapsulated (175), iSCSI initiator
/// name (203).
pub const PARAMETER_REQUEST_LIST: [u8; 14] =
    [1, 3, 6, 12, 15, 17, 26, 28, 43, 51, 54, 119, 175, 203];
/// Option 175 sent in requests: iPXE feature sub-option 0x11 (iSCSI), version 1.
pub const IPXE_FEATURES: [u8; 3] = [0x11, 1, 1];
/// Option 57: the largest DHCP message this client accepts.
pub const MAX_MESSAGE_SIZE: u16 = 1500;
/// REQUESTs sent for one OFFER before starting again with DISCOVER.
pub const MAX_REQUESTS: u32 = 4;

/// Source of randomness for `xid`s and retransmission jitter, injected so that tests are
/// deterministic.
pub trait Entropy {
    /// A random 32-bit value.
    fn next_u32(&mut self) -> u32;
}

/// [`Entropy`] from the standard library's randomly keyed SipHash over a counter: no extra
/// dependency, and unpredictable enough for `xid`s and jitter.
#[derive(Debug)]
pub struct OsEntropy {
    keys: RandomState,
    n: u64,
}

impl OsEntropy {
    /// Keys a new generator from the operating system's randomness.
    pub fn new() -> Self {
        OsEntropy {
            keys: RandomState::new(),
            n: 0,
        }
    }
}

impl Default for OsEntropy {
    fn default() -> Self {
        Self::new()
    }
}

impl Entropy for OsEntropy {
    fn next_u32(&mut self) -> u32 {
        self.n = self.n.wrapping_add(1);
        let mut h = self.keys.build_hasher();
        h.write_u64(self.n);
        // Truncation intended: any 32 bits of the hash are uniform.
        (h.finish() >> 16) as u32
    }
}

/// Why a datagram was not used. Logged at debug level; never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// Not a decodable DHCP message.
    #[error("malformed DHCP message: {0}")]
    Malformed(String),
    /// A BOOTREQUEST (another client's broadcast).
    #[error("not a reply")]
    NotReply,
    /// Another transaction.
    #[error("xid {got:#010x} is not ours ({want:#010x})")]
    WrongXid {
        /// The reply's xid.
        got: u32,
        /// Ours.
        want: u32,
    },
    /// Another client's hardware address.
    #[error("chaddr is not ours")]
    WrongChaddr,
    /// No option 53.
    #[error("no DHCP message type")]
    NoMessageType,
    /// A message type that does not fit the state.
    #[error("unexpected {got:?} while {state}")]
    Unexpected {
        /// The message type.
        got: MsgType,
        /// What the client is doing.
        state: &'static str,
    },
    /// An OFFER or ACK without option 54.
    #[error("{0:?} without a server identifier")]
    NoServerId(MsgType),
    /// An OFFER or ACK without an address.
    #[error("{0:?} with yiaddr 0.0.0.0")]
    NoAddress(MsgType),
    /// An ACK or NAK from a server other than the one requested from.
    #[error("reply from {got}, but we requested from {want}")]
    OtherServer {
        /// Its server identifier.
        got: Ipv4Addr,
        /// The server we sent REQUEST to.
        want: Ipv4Addr,
    },
    /// The lease is unusable (bad subnet mask).
    #[error("unusable lease: {0}")]
    BadLease(String),
}

/// What an accepted datagram meant, for the console log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An OFFER was taken; a REQUEST follows.
    Offer {
        /// The offering server.
        server: Ipv4Addr,
        /// The offered address.
        address: Ipv4Addr,
    },
    /// The server acknowledged: bound.
    Ack {
        /// The server.
        server: Ipv4Addr,
    },
    /// The server refused the REQUEST; the client starts over.
    Nak {
        /// The server.
        server: Ipv4Addr,
        /// Its option 56 message, if any.
        message: Option<String>,
    },
}

/// The outcome of a successful exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The lease.
    pub lease: Lease,
    /// Options 17, 203 and 175.190-193, for the boot plan.
    pub info: DhcpInfo,
    /// Problems with individual options that did not stop the boot (never secrets).
    pub warnings: Vec<String>,
}

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Broadcast this datagram to 255.255.255.255:67 now, then poll again.
    Transmit(Vec<u8>),
    /// Wait for a datagram until this instant, then poll again.
    Wait(Instant),
    /// Done.
    Bound(Box<Bound>),
    /// The deadline passed without a lease.
    TimedOut(Stats),
}

/// Counters for the error message when there is no lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// DISCOVERs sent.
    pub discovers: u32,
    /// REQUESTs sent.
    pub requests: u32,
    /// OFFERs taken.
    pub offers: u32,
    /// NAKs received.
    pub naks: u32,
    /// The server of the last NAK, if any.
    pub last_nak: Option<Ipv4Addr>,
}

/// The offer being requested.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    server: Ipv4Addr,
    address: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Send a DISCOVER with a new xid at `at`.
    Init { at: Instant },
    /// DISCOVER sent `sent` times; retransmit at `next_at`.
    Selecting { sent: u32, next_at: Instant },
    /// REQUEST for `offer` sent `sent` times; retransmit at `next_at`.
    Requesting {
        offer: Offer,
        sent: u32,
        next_at: Instant,
    },
    /// Done.
    Bound(Box<Bound>),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Init { .. } => "starting",
            State::Selecting { .. } => "selecting (waiting for OFFER)",
            State::Requesting { .. } => "requesting (waiting for ACK)",
            State::Bound(_) => "bound",
        }
    }
}

/// The sans-IO DHCPv4 client (see the module docs).
#[derive(Debug)]
pub struct Client<E: Entropy> {
    mac: Mac,
    start: Instant,
    deadline: Instant,
    xid: u32,
    state: State,
    stats: Stats,
    entropy: E,
}

/// RFC 2131 §4.1 retransmission delay before retry number `sent` (1 = the first retry):
/// 4 s, 8 s, 16 s, 32 s, then 64 s, each ±1 s by `jitter` (0..=2000 maps to -1..+1 s).
pub fn backoff(sent: u32, jitter: u32) -> Duration {
    let base_ms: u64 = 4000u64 << sent.saturating_sub(1).min(4);
    let jitter_ms = u64::from(jitter % 2001);
    Duration::from_millis(base_ms - 1000 + jitter_ms)
}

impl<E: Entropy> Client<E> {
    /// A client for the interface with `mac`, starting at `now`, giving up at `now + timeout`.
    pub fn new(mac: Mac, now: Instant, timeout: Duration, mut entropy: E) -> Self {
        let xid = entropy.next_u32();
        Client {
            mac,
            start: now,
            deadline: now + timeout,
            xid,
            state: State::Init { at: now },
            stats: Stats::default(),
            entropy,
        }
    }

    /// The transaction id currently in use.
    #[allow(dead_code)] // For tests and diagnostics.
    pub fn xid(&self) -> u32 {
        self.xid
    }

    /// Counters so far.
    #[allow(dead_code)] // For tests and diagnostics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// What to do at `now`: transmit, wait, or stop.
    pub fn poll(&mut self, now: Instant) -> Poll {
        if let State::Bound(b) = &self.state {
            return Poll::Bound(b.clone());
        }
        if now >= self.deadline {
            return Poll::TimedOut(self.stats.clone());
        }
        let jitter = self.entropy.next_u32();
        match self.state.clone() {
            State::Init { at } if now >= at => {
                self.xid = self.entropy.next_u32();
                self.state = State::Selecting {
                    sent: 1,
                    next_at: now + backoff(1, jitter),
                };
                self.stats.discovers += 1;
                Poll::Transmit(self.discover(now))
            }
            State::Selecting { sent, next_at } if now >= next_at => {
                self.state = State::Selecting {
                    sent: sent + 1,
                    next_at: now + backoff(sent + 1, jitter),
                };
                self.stats.discovers += 1;
                Poll::Transmit(self.discover(now))
            }
            State::Requesting { sent, next_at, .. } if now >= next_at && sent >= MAX_REQUESTS => {
                self.state = State::Init { at: now };
                self.poll(now)
            }
            State::Requesting {
                offer,
                sent,
                next_at,
            } if now >= next_at => {
                let packet = self.request(now, &offer);
                self.state = State::Requesting {
                    offer,
                    sent: sent + 1,
                    next_at: now + backoff(sent + 1, jitter),
                };
                self.stats.requests += 1;
                Poll::Transmit(packet)
            }
            State::Init { at: t }
            | State::Selecting { next_at: t, .. }
            | State::Requesting { next_at: t, .. } => Poll::Wait(t.min(self.deadline)),
            State::Bound(b) => Poll::Bound(b),
        }
    }

    /// Looks at one received datagram.
    ///
    /// # Errors
    /// [`Ignored`] with the reason when the datagram is not for us or not usable; the state is
    /// then unchanged.
    pub fn handle(&mut self, now: Instant, datagram: &[u8]) -> Result<Received, Ignored> {
        let msg = self.check(datagram)?;
        let kind = msg.options.msg_type().ok_or(Ignored::NoMessageType)?;
        let server_id = msg.options.ipv4(code::SERVER_ID);
        match (&self.state, kind) {
            (State::Selecting { .. }, MsgType::Offer) => {
                let server = server_id.ok_or(Ignored::NoServerId(kind))?;
                let address = msg.yiaddr;
                if address.is_unspecified() {
                    return Err(Ignored::NoAddress(kind));
                }
                self.stats.offers += 1;
                self.state = State::Requesting {
                    offer: Offer { server, address },
                    sent: 0,
                    next_at: now,
                };
                Ok(Received::Offer { server, address })
            }
            (State::Requesting { offer, .. }, MsgType::Ack) => {
                let server = server_id.unwrap_or(offer.server);
                if server != offer.server {
                    return Err(Ignored::OtherServer {
                        got: server,
                        want: offer.server,
                    });
                }
                if msg.yiaddr.is_unspecified() {
                    return Err(Ignored::NoAddress(kind));
                }
                let bound = lease::from_ack(&msg, server).map_err(Ignored::BadLease)?;
                self.state = State::Bound(Box::new(bound));
                Ok(Received::Ack { server })
            }
            (State::Requesting { offer, .. }, MsgType::Nak) => {
                let server = server_id.unwrap_or(offer.server);
                if server != offer.server {
                    return Err(Ignored::OtherServer {
                        got: server,
                        want: offer.server,
                    });
                }
                let message = msg
                    .options
                    .get(code::MESSAGE)
                    .map(|m| lease::clean(&String::from_utf8_lossy(m)));
                self.stats.last_nak = Some(server);
                self.stats.naks += 1;
                // RFC 2131 §3.1 step 5: restart. A server that NAKs every time must not make
                // us spin: from the second NAK on, wait 2, 3, then 4 s before starting over.
                let delay = match self.stats.naks {
                    0 | 1 => Duration::ZERO,
                    n => Duration::from_secs(u64::from(n.min(4))),
                };
                self.state = State::Init { at: now + delay };
                Ok(Received::Nak { server, message })
            }
            (state, got) => Err(Ignored::Unexpected {
                got,
                state: state.name(),
            }),
        }
    }

    /// Decodes and checks that a datagram is a reply to us.
    fn check(&self, datagram: &[u8]) -> Result<Reply, Ignored> {
        let msg = wire::parse_reply(datagram)?;
        if msg.op != wire::OP_REPLY {
            return Err(Ignored::NotReply);
        }
        if msg.xid != self.xid {
            return Err(Ignored::WrongXid {
                got: msg.xid,
                want: self.xid,
            });
        }
        if msg.chaddr != self.mac.0 {
            return Err(Ignored::WrongChaddr);
        }
        Ok(msg)
    }

    fn encode(&self, now: Instant, kind: MsgType, offer: Option<&Offer>) -> Vec<u8> {
        let secs = now.saturating_duration_since(self.start).as_secs();
        wire::emit_request(&RequestRepr {
            kind,
            xid: self.xid,
            secs: u16::try_from(secs).unwrap_or(u16::MAX),
            mac: self.mac.0,
            requested_ip: offer.map(|o| o.address),
            server_id: offer.map(|o| o.server),
            parameter_list: &PARAMETER_REQUEST_LIST,
            max_size: MAX_MESSAGE_SIZE,
            vendor_class: VENDOR_CLASS,
            ipxe: Some(&IPXE_FEATURES),
        })
    }

    fn discover(&self, now: Instant) -> Vec<u8> {
        self.encode(now, MsgType::Discover, None)
    }

    fn request(&self, now: Instant, offer: &Offer) -> Vec<u8> {
        self.encode(now, MsgType::Request, Some(offer))
    }
}
