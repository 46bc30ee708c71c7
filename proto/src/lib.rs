//! pxeroot-proto: the iSCSI wire protocol (RFC 7143) shared by `pxeroot-initiator` and
//! `pxeroot-target`.
//!
//! The crate is pure: no I/O, no async runtime, no `unsafe`. Both programs drive the same
//! codecs and state machines, so that the initiator and the target can be tested against each
//! other in memory and fuzzed without sockets.
//!
//! # No-panic contract
//! Every `parse` function in this crate accepts any byte slice and returns `Ok` or `Err`; none
//! panics, whatever the input (checked by proptest on arbitrary bytes). Every `emit` function
//! reports a too-short buffer as [`WireError::Truncated`] instead of panicking. Lengths read off
//! the wire are checked against the negotiated limits before anything is allocated from them
//! (see [`frame::pdu_len`]).
//!
//! # Map
//! * wire: [`bhs`] (48-byte header view), [`ahs`] (additional header segments), [`pdu`] (one `Repr` per opcode), [`frame`] (stream
//!   framing and digests), [`digest`] (CRC32C), [`serial`] (RFC 1982 sequence numbers);
//! * login: [`text`] (key=value codec), [`negotiate`] (RFC 7143 §6.2 rules), [`chap`],
//!   [`login`] (sans-IO state machine for both roles);
//! * boot: [`root_path`] (RFC 4173 DHCP root path).
//!
//! # Example: framing a byte stream
//! ```
//! use pxeroot_proto::frame::{encode, pdu_len, Frame, FrameLimits};
//! use pxeroot_proto::pdu::{NopOut, Pdu};
//! use pxeroot_proto::{Lun, SerialNumber};
//!
//! let nop = NopOut {
//!     immediate: true,
//!     lun: Lun::ZERO,
//!     itt: 1,
//!     ttt: 0xffff_ffff,
//!     cmd_sn: SerialNumber(1),
//!     exp_stat_sn: SerialNumber(1),
//!     data: b"ping".to_vec(),
//! };
//! let limits = FrameLimits::default();
//! let mut wire = Vec::new();
//! encode(&nop, &limits, &mut wire)?;
//! // An I/O loop reads until the buffer holds pdu_len() bytes (48 until the BHS is in)...
//! assert_eq!(pdu_len(&wire[..10], &limits)?, 48);
//! assert_eq!(pdu_len(&wire, &limits)?, wire.len());
//! // ...then splits the frame, checking digests, and parses it.
//! let frame = Frame::split(&wire, &limits)?;
//! assert_eq!(frame.parse()?, Pdu::NopOut(nop));
//! # Ok::<(), pxeroot_proto::WireError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ahs;
pub mod bhs;
pub mod chap;
pub mod digest;
pub mod error;
pub mod frame;
pub mod login;
pub mod negotiate;
pub mod pdu;
pub mod root_path;
pub mod serial;
pub mod text;

pub use bhs::{Bhs, Isid, Lun, Opcode};
pub use chap::Random;
pub use error::WireError;
pub use pdu::{Pdu, PduRepr};
pub use serial::SerialNumber;
