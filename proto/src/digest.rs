//! CRC32C header and data digests (RFC 7143 §13.1, test vectors in RFC 7143 Appendix A.4 /
//! RFC 3720 Appendix B.4).
//!
//! The digest is the Castagnoli CRC-32 (polynomial 0x1EDC6F41, reflected, initial value and
//! final XOR 0xffffffff), computed by the `crc32c` crate. RFC 7143 §13.1 places the 32-bit
//! result on the wire least significant byte first: this is the one little-endian field in an
//! otherwise big-endian protocol, which is why the helpers here return and take byte arrays and
//! never a bare `u32` the caller would have to remember to swap.
//!
//! The header digest covers the BHS and any AHS; the data digest covers the data segment and
//! its padding bytes (but not the digest itself).

/// Which digest a connection negotiated for one direction (`HeaderDigest` / `DataDigest` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DigestKind {
    /// No digest (`None`).
    #[default]
    None,
    /// CRC32C (`CRC32C`).
    Crc32c,
}

impl DigestKind {
    /// Bytes this digest occupies on the wire (0 or 4).
    pub const fn wire_len(self) -> usize {
        match self {
            DigestKind::None => 0,
            DigestKind::Crc32c => 4,
        }
    }

    /// The text-key spelling (`None` or `CRC32C`).
    pub const fn as_str(self) -> &'static str {
        match self {
            DigestKind::None => "None",
            DigestKind::Crc32c => "CRC32C",
        }
    }

    /// Parses a `HeaderDigest`/`DataDigest` value (case-sensitive, as the RFC spells it).
    pub fn from_text(s: &str) -> Option<Self> {
        match s {
            "None" => Some(DigestKind::None),
            "CRC32C" => Some(DigestKind::Crc32c),
            _ => None,
        }
    }
}

/// CRC32C of `data` as a number.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// CRC32C over several slices as if they were concatenated (e.g. BHS then AHS, or data then
/// padding), without copying them.
pub fn crc32c_parts(parts: &[&[u8]]) -> u32 {
    parts
        .iter()
        .fold(0u32, |crc, part| crc32c::crc32c_append(crc, part))
}

/// The four wire bytes of a digest value: least significant byte first (RFC 7143 §13.1).
pub const fn to_wire(crc: u32) -> [u8; 4] {
    crc.to_le_bytes()
}

/// Reads a digest value from its four wire bytes.
pub const fn from_wire(bytes: [u8; 4]) -> u32 {
    u32::from_le_bytes(bytes)
}

/// The header digest bytes for a BHS followed by its AHS.
pub fn header_digest(bhs: &[u8], ahs: &[u8]) -> [u8; 4] {
    to_wire(crc32c_parts(&[bhs, ahs]))
}

/// The data digest bytes for a data segment; `data` must already include the pad bytes, or
/// the padding must be supplied with [`data_digest_padded`].
pub fn data_digest(data: &[u8]) -> [u8; 4] {
    to_wire(crc32c(data))
}

/// The data digest bytes for an unpadded data segment, adding the zero padding to a multiple
/// of four bytes as RFC 7143 §11.2.5 requires.
pub fn data_digest_padded(data: &[u8]) -> [u8; 4] {
    let pad = crate::bhs::pad_len(data.len());
    to_wire(crc32c_parts(&[data, &[0u8; 3][..pad]]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // RFC 3720 Appendix B.4 (= RFC 7143 Appendix A.4). The RFC prints the CRC as the bytes
    // in wire order, e.g. "CRC: aa 36 91 8a" for 0x8a9136aa.
    #[test]
    fn rfc_vector_zeros() {
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(data_digest(&[0u8; 32]), [0xaa, 0x36, 0x91, 0x8a]);
    }

    #[test]
    fn rfc_vector_ones() {
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        assert_eq!(data_digest(&[0xffu8; 32]), [0x43, 0xab, 0xa8, 0x62]);
    }

    #[test]
    fn rfc_vector_incrementing() {
        let v: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&v), 0x46dd_794e);
        assert_eq!(data_digest(&v), [0x4e, 0x79, 0xdd, 0x46]);
    }

    #[test]
    fn rfc_vector_decrementing() {
        let v: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&v), 0x113f_db5c);
        assert_eq!(data_digest(&v), [0x5c, 0xdb, 0x3f, 0x11]);
    }

    /// RFC 3720 Appendix B.4: "An iSCSI - SCSI Read (10) Command PDU".
    #[rustfmt::skip]
    pub(crate) const READ10_BHS: [u8; 48] = [
        0x01, 0xc0, 0x00, 0x00, // opcode SCSI Command, F+R, reserved
        0x00, 0x00, 0x00, 0x00, // TotalAHSLength 0, DataSegmentLength 0
        0x00, 0x00, 0x00, 0x00, // LUN
        0x00, 0x00, 0x00, 0x00, // LUN
        0x14, 0x00, 0x00, 0x00, // ITT 0x14000000
        0x00, 0x00, 0x04, 0x00, // Expected Data Transfer Length 1024
        0x00, 0x00, 0x00, 0x14, // CmdSN 20
        0x00, 0x00, 0x00, 0x18, // ExpStatSN 24
        0x28, 0x00, 0x00, 0x00, // CDB: READ(10)
        0x00, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, // transfer length 2 blocks
        0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn rfc_vector_read10_bhs() {
        assert_eq!(crc32c(&READ10_BHS), 0xd996_3a56);
        assert_eq!(header_digest(&READ10_BHS, &[]), [0x56, 0x3a, 0x96, 0xd9]);
    }

    #[test]
    fn parts_equal_concatenation() {
        let (a, b) = READ10_BHS.split_at(17);
        assert_eq!(crc32c_parts(&[a, b]), crc32c(&READ10_BHS));
    }

    #[test]
    fn padded_digest() {
        assert_eq!(
            data_digest_padded(&[1, 2, 3, 4, 5]),
            data_digest(&[1, 2, 3, 4, 5, 0, 0, 0])
        );
        assert_eq!(data_digest_padded(&[]), data_digest(&[]));
    }

    #[test]
    fn wire_round_trip() {
        assert_eq!(from_wire(to_wire(0xd996_3a56)), 0xd996_3a56);
        assert_eq!(DigestKind::from_text("CRC32C"), Some(DigestKind::Crc32c));
        assert_eq!(DigestKind::from_text("crc32c"), None);
    }
}
