//! TFTP packets: RRQ, WRQ, DATA, ACK and ERROR (RFC 1350 §5) and OACK (RFC 2347).
//!
//! Parsing is total: any byte string gives a [`Packet`] or a [`PacketError`], never a panic, and
//! nothing is allocated from a length read off the wire (TFTP has none; strings end at a NUL
//! inside the datagram). DATA borrows its payload so that the hot path copies nothing; the
//! request, OACK and ERROR strings are owned, as they are rare and outlive the datagram buffer.
//! The server builds DATA packets itself ([`data_header`]) straight into its send buffer.

use std::fmt;

/// The largest blksize RFC 2348 allows.
pub const MAX_BLKSIZE: u16 = 65464;
/// The smallest blksize RFC 2348 allows.
pub const MIN_BLKSIZE: u16 = 8;
/// blksize without the option (RFC 1350).
pub const DEFAULT_BLKSIZE: u16 = 512;

/// TFTP opcodes.
pub mod opcode {
    /// Read request.
    pub const RRQ: u16 = 1;
    /// Write request.
    pub const WRQ: u16 = 2;
    /// Data.
    pub const DATA: u16 = 3;
    /// Acknowledgement.
    pub const ACK: u16 = 4;
    /// Error.
    pub const ERROR: u16 = 5;
    /// Option acknowledgement (RFC 2347).
    pub const OACK: u16 = 6;
}

/// A TFTP error code (RFC 1350 appendix, RFC 2347 code 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// Not defined, see the message.
    pub const NOT_DEFINED: ErrorCode = ErrorCode(0);
    /// File not found.
    pub const FILE_NOT_FOUND: ErrorCode = ErrorCode(1);
    /// Access violation.
    pub const ACCESS_VIOLATION: ErrorCode = ErrorCode(2);
    /// Disk full or allocation exceeded.
    pub const DISK_FULL: ErrorCode = ErrorCode(3);
    /// Illegal TFTP operation.
    pub const ILLEGAL_OPERATION: ErrorCode = ErrorCode(4);
    /// Unknown transfer ID.
    pub const UNKNOWN_TID: ErrorCode = ErrorCode(5);
    /// File already exists.
    pub const FILE_EXISTS: ErrorCode = ErrorCode(6);
    /// No such user.
    pub const NO_SUCH_USER: ErrorCode = ErrorCode(7);
    /// Option negotiation refused (RFC 2347).
    pub const OPTION_REFUSED: ErrorCode = ErrorCode(8);
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The transfer mode of a request (compared case-insensitively on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// "netascii". This server sends the bytes unchanged, as in octet mode (see the module
    /// docs of [`super`]).
    Netascii,
    /// "octet".
    Octet,
    /// "mail" (obsolete; refused).
    Mail,
    /// Anything else, as sent.
    Other(String),
}

impl Mode {
    fn parse(s: &str) -> Mode {
        if s.eq_ignore_ascii_case("octet") {
            Mode::Octet
        } else if s.eq_ignore_ascii_case("netascii") {
            Mode::Netascii
        } else if s.eq_ignore_ascii_case("mail") {
            Mode::Mail
        } else {
            Mode::Other(s.to_string())
        }
    }

    /// The mode's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Mode::Netascii => "netascii",
            Mode::Octet => "octet",
            Mode::Mail => "mail",
            Mode::Other(s) => s,
        }
    }
}

/// An RRQ or WRQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The file name, as sent.
    pub filename: String,
    /// The transfer mode.
    pub mode: Mode,
    /// RFC 2347 options in the order sent (names as sent; compare case-insensitively).
    pub options: Vec<(String, String)>,
}

/// One TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Read request.
    Rrq(Request),
    /// Write request.
    Wrq(Request),
    /// A data block.
    Data {
        /// Block number (wraps past 65535 to 0).
        block: u16,
        /// The payload.
        data: &'a [u8],
    },
    /// Acknowledgement of a block (0 acknowledges an OACK).
    Ack {
        /// Block number.
        block: u16,
    },
    /// Error; ends the transfer.
    Error {
        /// The code.
        code: ErrorCode,
        /// The message.
        message: String,
    },
    /// Option acknowledgement.
    Oack {
        /// Accepted options with their values.
        options: Vec<(String, String)>,
    },
}

/// Why a datagram is not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than its fixed fields.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// An opcode RFC 1350 and RFC 2347 do not define.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    /// A string runs to the end of the datagram without its NUL.
    #[error("a string is not NUL-terminated")]
    MissingNul,
    /// A string is not UTF-8.
    #[error("a string is not valid UTF-8")]
    NotUtf8,
    /// An RRQ or WRQ without a file name.
    #[error("empty file name")]
    EmptyFilename,
}

fn be16(buf: &[u8], at: usize) -> Result<u16, PacketError> {
    match buf.get(at..at + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(PacketError::Truncated {
            need: at + 2,
            have: buf.len(),
        }),
    }
}

/// Splits NUL-terminated strings. A final string without its NUL is an error.
fn strings(buf: &[u8]) -> Result<Vec<String>, PacketError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(PacketError::MissingNul)?;
        let (s, tail) = rest.split_at(end);
        let s = std::str::from_utf8(s).map_err(|_| PacketError::NotUtf8)?;
        out.push(s.to_string());
        rest = tail.get(1..).unwrap_or_default();
    }
    Ok(out)
}

/// Name/value pairs; an unpaired trailing name (some PXE ROMs pad requests) is dropped.
fn pairs(strings: impl Iterator<Item = String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = strings;
    while let (Some(name), Some(value)) = (it.next(), it.next()) {
        out.push((name, value));
    }
    out
}

fn request(body: &[u8]) -> Result<Request, PacketError> {
    let mut it = strings(body)?.into_iter();
    let filename = it.next().ok_or(PacketError::MissingNul)?;
    if filename.is_empty() {
        return Err(PacketError::EmptyFilename);
    }
    let mode = Mode::parse(&it.next().ok_or(PacketError::MissingNul)?);
    Ok(Request {
        filename,
        mode,
        options: pairs(it),
    })
}

impl<'a> Packet<'a> {
    /// Parse one datagram.
    ///
    /// # Errors
    /// When the datagram is not a well-formed TFTP packet.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        let op = be16(buf, 0)?;
        let body = buf.get(2..).unwrap_or_default();
        match op {
            opcode::RRQ => Ok(Packet::Rrq(request(body)?)),
            opcode::WRQ => Ok(Packet::Wrq(request(body)?)),
            opcode::DATA => Ok(Packet::Data {
                block: be16(buf, 2)?,
                data: buf.get(4..).unwrap_or_default(),
            }),
            opcode::ACK => {
                let block = be16(buf, 2)?;
                // Some clients pad ACKs; tolerate it rather than stall a transfer.
                Ok(Packet::Ack { block })
            }
            opcode::ERROR => {
                let code = ErrorCode(be16(buf, 2)?);
                // The message is optional in practice (some clients send none or omit the NUL).
                let raw = buf.get(4..).unwrap_or_default();
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                let message = String::from_utf8_lossy(raw.get(..end).unwrap_or_default());
                Ok(Packet::Error {
                    code,
                    message: message.into_owned(),
                })
            }
            opcode::OACK => Ok(Packet::Oack {
                options: pairs(strings(body)?.into_iter()),
            }),
            other => Err(PacketError::UnknownOpcode(other)),
        }
    }

    /// Append the packet's wire form to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let put_str = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        let put_request = |out: &mut Vec<u8>, op: u16, r: &Request| {
            out.extend_from_slice(&op.to_be_bytes());
            put_str(out, &r.filename);
            put_str(out, r.mode.as_str());
            for (n, v) in &r.options {
                put_str(out, n);
                put_str(out, v);
            }
        };
        match self {
            Packet::Rrq(r) => put_request(out, opcode::RRQ, r),
            Packet::Wrq(r) => put_request(out, opcode::WRQ, r),
            Packet::Data { block, data } => {
                out.extend_from_slice(&data_header(*block));
                out.extend_from_slice(data);
            }
            Packet::Ack { block } => {
                out.extend_from_slice(&opcode::ACK.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&opcode::ERROR.to_be_bytes());
                out.extend_from_slice(&code.0.to_be_bytes());
                put_str(out, message);
            }
            Packet::Oack { options } => {
                out.extend_from_slice(&opcode::OACK.to_be_bytes());
                for (n, v) in options {
                    put_str(out, n);
                    put_str(out, v);
                }
            }
        }
    }

    /// The wire form in a new buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

/// The 4-byte header of a DATA packet for `block`.
pub fn data_header(block: u16) -> [u8; 4] {
    let [o0, o1] = opcode::DATA.to_be_bytes();
    let [b0, b1] = block.to_be_bytes();
    [o0, o1, b0, b1]
}

/// An ERROR packet's wire form.
pub fn error_packet(code: ErrorCode, message: &str) -> Vec<u8> {
    Packet::Error {
        code,
        message: message.to_string(),
    }
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[rustfmt::skip]
    const RRQ_CURL: &[u8] = &[
        // curl 7.88 -> tftp, `curl --tftp-blksize 1468 tftp://10.0.0.2/pxelinux.0`
        0x00, 0x01,                                                     // RRQ
        b'p', b'x', b'e', b'l', b'i', b'n', b'u', b'x', b'.', b'0', 0,  // filename
        b'o', b'c', b't', b'e', b't', 0,                                // mode
        b't', b's', b'i', b'z', b'e', 0, b'0', 0,                       // tsize 0
        b'b', b'l', b'k', b's', b'i', b'z', b'e', 0, b'1', b'4', b'6', b'8', 0, // blksize
    ];

    #[test]
    fn rrq_golden_both_ways() {
        let expected = Packet::Rrq(Request {
            filename: "pxelinux.0".into(),
            mode: Mode::Octet,
            options: vec![
                ("tsize".into(), "0".into()),
                ("blksize".into(), "1468".into()),
            ],
        });
        assert_eq!(Packet::parse(RRQ_CURL).unwrap(), expected);
        let mut out = vec![];
        expected.emit(&mut out);
        assert_eq!(out, RRQ_CURL);
    }

    #[test]
    fn modes_are_case_insensitive() {
        let p = Packet::parse(b"\x00\x01f\0NetASCII\0").unwrap();
        let Packet::Rrq(r) = p else { panic!() };
        assert_eq!(r.mode, Mode::Netascii);
        let p = Packet::parse(b"\x00\x02f\0OCTET\0").unwrap();
        let Packet::Wrq(r) = p else { panic!() };
        assert_eq!(r.mode, Mode::Octet);
    }

    #[test]
    fn malformed_requests() {
        assert_eq!(
            Packet::parse(b""),
            Err(PacketError::Truncated { need: 2, have: 0 })
        );
        assert_eq!(
            Packet::parse(b"\x00"),
            Err(PacketError::Truncated { need: 2, have: 1 })
        );
        assert_eq!(Packet::parse(b"\x00\x01"), Err(PacketError::MissingNul));
        assert_eq!(Packet::parse(b"\x00\x01file"), Err(PacketError::MissingNul));
        assert_eq!(
            Packet::parse(b"\x00\x01file\0"),
            Err(PacketError::MissingNul)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01\0octet\0"),
            Err(PacketError::EmptyFilename)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01f\xff\0octet\0"),
            Err(PacketError::NotUtf8)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01f\0octet\0blksize"),
            Err(PacketError::MissingNul)
        );
        assert_eq!(
            Packet::parse(b"\x00\x07"),
            Err(PacketError::UnknownOpcode(7))
        );
        assert_eq!(
            Packet::parse(b"\x00\x04\x00"),
            Err(PacketError::Truncated { need: 4, have: 3 })
        );
    }

    #[test]
    fn unpaired_option_is_dropped() {
        let p = Packet::parse(b"\x00\x01f\0octet\0blksize\x001024\0pad\0").unwrap();
        let Packet::Rrq(r) = p else { panic!() };
        assert_eq!(r.options, vec![("blksize".into(), "1024".into())]);
    }

    #[test]
    fn error_without_nul_or_message() {
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x08").unwrap(),
            Packet::Error {
                code: ErrorCode::OPTION_REFUSED,
                message: String::new()
            }
        );
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x01nope").unwrap(),
            Packet::Error {
                code: ErrorCode::FILE_NOT_FOUND,
                message: "nope".into()
            }
        );
    }

    #[test]
    fn data_header_and_empty_data() {
        assert_eq!(data_header(0x1234), [0, 3, 0x12, 0x34]);
        assert_eq!(
            Packet::parse(&[0, 3, 0xff, 0xff]).unwrap(),
            Packet::Data {
                block: 65535,
                data: &[]
            }
        );
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9./_-]{1,20}"
    }

    fn request_strategy() -> impl Strategy<Value = Request> {
        (
            text(),
            prop_oneof![
                Just(Mode::Octet),
                Just(Mode::Netascii),
                Just(Mode::Mail),
                "x[a-z]{0,5}".prop_map(Mode::Other),
            ],
            proptest::collection::vec((text(), text()), 0..5),
        )
            .prop_map(|(filename, mode, options)| Request {
                filename,
                mode,
                options,
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Packet::parse(&bytes);
        }

        #[test]
        fn requests_round_trip(r in request_strategy(), write in any::<bool>()) {
            let p = if write { Packet::Wrq(r) } else { Packet::Rrq(r) };
            let wire = p.to_vec();
            prop_assert_eq!(Packet::parse(&wire).unwrap(), p);
        }

        #[test]
        fn data_ack_error_oack_round_trip(
            block in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..1500),
            code in any::<u16>(),
            message in "[ -~]{0,40}",
            options in proptest::collection::vec((text(), text()), 0..5),
        ) {
            for p in [
                Packet::Data { block, data: &data },
                Packet::Ack { block },
                Packet::Error { code: ErrorCode(code), message: message.clone() },
                Packet::Oack { options: options.clone() },
            ] {
                let wire = p.to_vec();
            prop_assert_eq!(Packet::parse(&wire).unwrap(), p);
            }
        }
    }
}
