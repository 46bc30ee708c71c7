//! Wire-level errors shared by every codec in this crate.
//!
//! The variants carry the offending values because a failed network boot usually leaves nothing
//! to look at except the console line that printed the error (style guide §6.4).

/// An error found while parsing or emitting iSCSI wire data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer is shorter than the structure being read or written.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The opcode is not one this crate knows.
    #[error("unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    /// The PDU parser was handed a BHS with a different opcode.
    #[error("unexpected opcode {found:#04x}, expected {expected:#04x}")]
    UnexpectedOpcode {
        /// Opcode this parser handles.
        expected: u8,
        /// Opcode found in the BHS.
        found: u8,
    },
    /// DataSegmentLength is larger than allowed (negotiated limit or structural maximum).
    #[error("data segment length {0} is over the limit")]
    BadDataSegmentLen(u32),
    /// The data handed to a parser does not match DataSegmentLength in the BHS.
    #[error("data segment is {have} bytes but DataSegmentLength says {expected}")]
    DataSegmentMismatch {
        /// DataSegmentLength from the BHS.
        expected: u32,
        /// Bytes handed to the parser.
        have: usize,
    },
    /// A PDU that must not carry a data segment carries one.
    #[error("unexpected data segment of {0} bytes")]
    UnexpectedData(u32),
    /// TotalAHSLength is not supported by this opcode or is inconsistent.
    #[error("bad TotalAHSLength {0}")]
    BadAhsLen(u8),
    /// The header digest did not match.
    #[error("header digest mismatch: computed {computed:#010x}, received {received:#010x}")]
    HeaderDigest {
        /// CRC32C computed locally.
        computed: u32,
        /// CRC32C read from the wire.
        received: u32,
    },
    /// The data digest did not match.
    #[error("data digest mismatch: computed {computed:#010x}, received {received:#010x}")]
    DataDigest {
        /// CRC32C computed locally.
        computed: u32,
        /// CRC32C read from the wire.
        received: u32,
    },
    /// A field holds a value the RFC forbids.
    #[error("invalid {field}: {value:#x}")]
    BadField {
        /// RFC name of the field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A text key is malformed (empty, too long, bad characters).
    #[error("bad text key {0:?}")]
    BadKey(String),
    /// A text value is malformed or too long.
    #[error("bad value for key {key}: {reason}")]
    BadValue {
        /// The key whose value is bad.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A text pair has no `=`.
    #[error("text pair without '=': {0:?}")]
    MissingEquals(String),
    /// Text data is not UTF-8.
    #[error("text data is not UTF-8")]
    NotUtf8,
    /// A key occurs twice in one text exchange.
    #[error("duplicate key {0}")]
    DuplicateKey(String),
    /// The data segment is too large to be described by a 24-bit DataSegmentLength.
    #[error("data segment of {0} bytes does not fit in 24 bits")]
    DataTooLong(usize),
}
