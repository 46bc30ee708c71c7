//! The 48-byte Basic Header Segment (RFC 7143 §11.2.1) and the small types every PDU shares.
//!
//! [`Bhs`] is a smoltcp-style view over a byte buffer: [`Bhs::new_checked`] verifies the length
//! once, after which every accessor reads a fixed range inside the first 48 bytes and cannot
//! panic. Field ranges live in `mod field`, named after the RFC. Opcode-specific fields are read
//! with the generic `u8_at`/`u16_at`/`u32_at` accessors by the per-opcode `Repr` types in
//! [`crate::pdu`].
//!
//! Multi-byte fields are big-endian (RFC 7143 §11.1), except digests (see [`crate::digest`]).

use core::fmt;

use crate::error::WireError;
use crate::serial::SerialNumber;

/// Length of the Basic Header Segment.
pub const BHS_LEN: usize = 48;

/// Largest value a 24-bit DataSegmentLength can express.
pub const MAX_DATA_SEGMENT_LEN: u32 = 0x00ff_ffff;

/// The reserved Initiator Task Tag value (RFC 7143 §11.2.1.8), also used as the "no TTT" value.
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Number of zero bytes needed to pad `len` to a multiple of four (RFC 7143 §11.2.5).
pub const fn pad_len(len: usize) -> usize {
    (4 - (len % 4)) % 4
}

/// `len` rounded up to a multiple of four (saturating, never panics).
pub const fn padded_len(len: usize) -> usize {
    len.saturating_add(pad_len(len))
}

mod field {
    use core::ops::Range;
    pub const OPCODE: usize = 0;
    pub const FLAGS: usize = 1;
    pub const TOTAL_AHS_LEN: usize = 4;
    pub const DATA_SEGMENT_LEN: Range<usize> = 5..8;
    pub const LUN: Range<usize> = 8..16;
    pub const ITT: Range<usize> = 16..20;
}

const IMMEDIATE_BIT: u8 = 0x40;
const OPCODE_MASK: u8 = 0x3f;
const FINAL_BIT: u8 = 0x80;

macro_rules! enum_with_unknown {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not name.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;

enum_with_unknown! {
    /// The 6-bit opcode in byte 0 of the BHS (RFC 7143 §11.2.1.2).
    pub enum Opcode(u8) {
        /// NOP-Out (initiator).
        NopOut = 0x00,
        /// SCSI Command (initiator).
        ScsiCommand = 0x01,
        /// SCSI Task Management Function Request (initiator).
        TaskMgmtRequest = 0x02,
        /// Login Request (initiator).
        LoginRequest = 0x03,
        /// Text Request (initiator).
        TextRequest = 0x04,
        /// SCSI Data-Out (initiator).
        DataOut = 0x05,
        /// Logout Request (initiator).
        LogoutRequest = 0x06,
        /// SNACK Request (initiator).
        SnackRequest = 0x10,
        /// NOP-In (target).
        NopIn = 0x20,
        /// SCSI Response (target).
        ScsiResponse = 0x21,
        /// SCSI Task Management Function Response (target).
        TaskMgmtResponse = 0x22,
        /// Login Response (target).
        LoginResponse = 0x23,
        /// Text Response (target).
        TextResponse = 0x24,
        /// SCSI Data-In (target).
        DataIn = 0x25,
        /// Logout Response (target).
        LogoutResponse = 0x26,
        /// Ready To Transfer (target).
        R2t = 0x31,
        /// Asynchronous Message (target).
        AsyncMessage = 0x32,
        /// Reject (target).
        Reject = 0x3f,
    }
}

impl Opcode {
    /// Whether the opcode is sent by an initiator (RFC 7143 §11.2.1.2: 0x00-0x1f).
    pub fn is_initiator(self) -> bool {
        u8::from(self) < 0x20
    }
}

/// An 8-byte SCSI logical unit number as carried in the BHS (SAM-5 §4.6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lun(pub [u8; 8]);

impl Lun {
    /// LUN 0.
    pub const ZERO: Lun = Lun([0; 8]);

    /// A single-level LUN in peripheral (`< 256`) or flat (`< 16384`) addressing, as Linux and
    /// most targets encode small LUN numbers. `None` for values >= 16384.
    pub const fn from_number(n: u16) -> Option<Lun> {
        if n < 256 {
            Some(Lun([0, n as u8, 0, 0, 0, 0, 0, 0]))
        } else if n < 0x4000 {
            Some(Lun([0x40 | (n >> 8) as u8, n as u8, 0, 0, 0, 0, 0, 0]))
        } else {
            None
        }
    }

    /// The number of a single-level peripheral or flat LUN, `None` for other encodings.
    pub const fn number(&self) -> Option<u16> {
        let b = self.0;
        if b[2] != 0 || b[3] != 0 || b[4] != 0 || b[5] != 0 || b[6] != 0 || b[7] != 0 {
            return None;
        }
        match b[0] >> 6 {
            0 if b[0] == 0 => Some(b[1] as u16),
            1 => Some((((b[0] & 0x3f) as u16) << 8) | b[1] as u16),
            _ => None,
        }
    }

    /// The LUN as a big-endian 64-bit integer.
    pub const fn as_u64(&self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

impl fmt::Debug for Lun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number() {
            Some(n) => write!(f, "Lun({n})"),
            None => write!(f, "Lun({:#018x})", self.as_u64()),
        }
    }
}

/// The 6-byte Initiator Session ID (RFC 7143 §11.12.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Isid(pub [u8; 6]);

impl Isid {
    /// An ISID of type "Random" (T = 0b10, RFC 7143 §11.12.5) from 24 random bits and a
    /// 16-bit qualifier.
    pub const fn random(random24: u32, qualifier: u16) -> Isid {
        let r = random24.to_be_bytes();
        let q = qualifier.to_be_bytes();
        Isid([0x80, r[1], r[2], r[3], q[0], q[1]])
    }
}

/// A read-only or read-write view over a Basic Header Segment.
#[derive(Debug, Clone)]
pub struct Bhs<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Bhs<T> {
    /// Wraps `buffer` after checking it holds at least [`BHS_LEN`] bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the buffer is shorter than 48 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let have = buffer.as_ref().len();
        if have < BHS_LEN {
            return Err(WireError::Truncated {
                need: BHS_LEN,
                have,
            });
        }
        Ok(Bhs { buffer })
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The 48 header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..BHS_LEN]
    }

    /// Byte `i` of the BHS (`i < 48`, else 0).
    pub fn u8_at(&self, i: usize) -> u8 {
        self.as_bytes().get(i).copied().unwrap_or(0)
    }

    /// Big-endian 16-bit field at byte `i` (0 if out of range).
    pub fn u16_at(&self, i: usize) -> u16 {
        match self.as_bytes().get(i..i.saturating_add(2)) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => 0,
        }
    }

    /// Big-endian 32-bit field at byte `i` (0 if out of range).
    pub fn u32_at(&self, i: usize) -> u32 {
        match self.as_bytes().get(i..i.saturating_add(4)) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        }
    }

    /// A serial number field at byte `i`.
    pub fn sn_at(&self, i: usize) -> SerialNumber {
        SerialNumber(self.u32_at(i))
    }

    /// The raw 6-bit opcode.
    pub fn opcode_raw(&self) -> u8 {
        self.u8_at(field::OPCODE) & OPCODE_MASK
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        Opcode::from(self.opcode_raw())
    }

    /// The immediate-delivery bit (I, byte 0 bit 6).
    pub fn immediate(&self) -> bool {
        self.u8_at(field::OPCODE) & IMMEDIATE_BIT != 0
    }

    /// The final bit (F, byte 1 bit 7).
    pub fn final_bit(&self) -> bool {
        self.u8_at(field::FLAGS) & FINAL_BIT != 0
    }

    /// The whole flags byte (byte 1), opcode-specific.
    pub fn flags(&self) -> u8 {
        self.u8_at(field::FLAGS)
    }

    /// TotalAHSLength, in 4-byte words.
    pub fn total_ahs_length(&self) -> u8 {
        self.u8_at(field::TOTAL_AHS_LEN)
    }

    /// TotalAHSLength in bytes.
    pub fn ahs_len(&self) -> usize {
        usize::from(self.total_ahs_length()) * 4
    }

    /// DataSegmentLength (24 bits, without padding).
    pub fn data_segment_length(&self) -> u32 {
        let b = self.as_bytes();
        match b.get(field::DATA_SEGMENT_LEN) {
            Some(&[x, y, z]) => u32::from_be_bytes([0, x, y, z]),
            _ => 0,
        }
    }

    /// The LUN field (bytes 8-15); opcode-specific in some PDUs.
    pub fn lun(&self) -> Lun {
        let mut l = [0u8; 8];
        if let Some(src) = self.as_bytes().get(field::LUN) {
            l.copy_from_slice(src);
        }
        Lun(l)
    }

    /// Bytes 8-15 as an array (ISID+TSIH in login PDUs).
    pub fn bytes_8_15(&self) -> [u8; 8] {
        self.lun().0
    }

    /// The Initiator Task Tag.
    pub fn itt(&self) -> u32 {
        self.u32_at(field::ITT.start)
    }

    /// Checks that the BHS carries `expected` as opcode.
    ///
    /// # Errors
    /// [`WireError::UnexpectedOpcode`] otherwise.
    pub fn expect_opcode(&self, expected: Opcode) -> Result<(), WireError> {
        let found = self.opcode_raw();
        let expected = u8::from(expected);
        if found == expected {
            Ok(())
        } else {
            Err(WireError::UnexpectedOpcode { expected, found })
        }
    }

    /// Checks that `data` is exactly DataSegmentLength bytes (padding already removed).
    ///
    /// # Errors
    /// [`WireError::DataSegmentMismatch`] otherwise.
    pub fn check_data<'a>(&self, data: &'a [u8]) -> Result<&'a [u8], WireError> {
        let expected = self.data_segment_length();
        if usize::try_from(expected).ok() == Some(data.len()) {
            Ok(data)
        } else {
            Err(WireError::DataSegmentMismatch {
                expected,
                have: data.len(),
            })
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Bhs<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[..BHS_LEN]
    }

    /// Zeroes the 48 header bytes.
    pub fn clear(&mut self) {
        self.bytes_mut().fill(0);
    }

    /// Sets byte `i` (ignored if out of range).
    pub fn set_u8_at(&mut self, i: usize, v: u8) {
        if let Some(b) = self.bytes_mut().get_mut(i) {
            *b = v;
        }
    }

    /// Sets the big-endian 16-bit field at byte `i` (ignored if out of range).
    pub fn set_u16_at(&mut self, i: usize, v: u16) {
        if let Some(b) = self.bytes_mut().get_mut(i..i.saturating_add(2)) {
            b.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Sets the big-endian 32-bit field at byte `i` (ignored if out of range).
    pub fn set_u32_at(&mut self, i: usize, v: u32) {
        if let Some(b) = self.bytes_mut().get_mut(i..i.saturating_add(4)) {
            b.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Sets a serial number field at byte `i`.
    pub fn set_sn_at(&mut self, i: usize, v: SerialNumber) {
        self.set_u32_at(i, v.0);
    }

    /// Sets opcode and immediate bit (byte 0).
    pub fn set_opcode(&mut self, op: Opcode, immediate: bool) {
        let imm = if immediate { IMMEDIATE_BIT } else { 0 };
        self.set_u8_at(field::OPCODE, (u8::from(op) & OPCODE_MASK) | imm);
    }

    /// Sets the flags byte (byte 1), including the final bit.
    pub fn set_flags(&mut self, flags: u8) {
        self.set_u8_at(field::FLAGS, flags);
    }

    /// Sets TotalAHSLength (4-byte words).
    pub fn set_total_ahs_length(&mut self, words: u8) {
        self.set_u8_at(field::TOTAL_AHS_LEN, words);
    }

    /// Sets DataSegmentLength.
    ///
    /// # Errors
    /// [`WireError::DataTooLong`] if `len` does not fit in 24 bits.
    pub fn set_data_segment_length(&mut self, len: usize) -> Result<(), WireError> {
        let v = u32::try_from(len)
            .ok()
            .filter(|v| *v <= MAX_DATA_SEGMENT_LEN)
            .ok_or(WireError::DataTooLong(len))?;
        let [_, x, y, z] = v.to_be_bytes();
        if let Some(b) = self.bytes_mut().get_mut(field::DATA_SEGMENT_LEN) {
            b.copy_from_slice(&[x, y, z]);
        }
        Ok(())
    }

    /// Sets bytes 8-15 (LUN, or ISID+TSIH in login PDUs).
    pub fn set_lun(&mut self, lun: Lun) {
        if let Some(b) = self.bytes_mut().get_mut(field::LUN) {
            b.copy_from_slice(&lun.0);
        }
    }

    /// Sets the Initiator Task Tag.
    pub fn set_itt(&mut self, itt: u32) {
        self.set_u32_at(field::ITT.start, itt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::tests::READ10_BHS;

    #[test]
    fn read10_golden_fields() {
        let bhs = Bhs::new_checked(&READ10_BHS[..]).unwrap();
        assert_eq!(bhs.opcode(), Opcode::ScsiCommand);
        assert!(!bhs.immediate());
        assert!(bhs.final_bit());
        assert_eq!(bhs.total_ahs_length(), 0);
        assert_eq!(bhs.data_segment_length(), 0);
        assert_eq!(bhs.lun(), Lun::ZERO);
        assert_eq!(bhs.itt(), 0x1400_0000);
        assert_eq!(bhs.u32_at(20), 1024);
        assert_eq!(bhs.sn_at(24), SerialNumber(20));
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Bhs::new_checked(&[0u8; 47][..]).unwrap_err(),
            WireError::Truncated { need: 48, have: 47 }
        );
    }

    #[test]
    fn setters() {
        let mut buf = [0xa5u8; 48];
        let mut bhs = Bhs::new_checked(&mut buf[..]).unwrap();
        bhs.clear();
        bhs.set_opcode(Opcode::LoginRequest, true);
        bhs.set_data_segment_length(0x12_3456).unwrap();
        assert_eq!(
            bhs.set_data_segment_length(0x100_0000),
            Err(WireError::DataTooLong(0x100_0000))
        );
        bhs.set_itt(0xdead_beef);
        assert_eq!(bhs.opcode(), Opcode::LoginRequest);
        assert!(bhs.immediate());
        assert_eq!(bhs.data_segment_length(), 0x12_3456);
        assert_eq!(&buf[..8], &[0x43, 0, 0, 0, 0, 0x12, 0x34, 0x56]);
        assert_eq!(&buf[16..20], &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn opcode_unknown() {
        assert_eq!(Opcode::from(0x07), Opcode::Unknown(0x07));
        assert_eq!(u8::from(Opcode::Unknown(0x07)), 0x07);
        assert_eq!(u8::from(Opcode::Reject), 0x3f);
    }

    #[test]
    fn padding() {
        assert_eq!([0, 1, 2, 3, 4, 5].map(pad_len), [0, 3, 2, 1, 0, 3]);
        assert_eq!(padded_len(13), 16);
    }

    #[test]
    fn lun_numbers() {
        assert_eq!(Lun::from_number(5).unwrap().0, [0, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Lun::from_number(300).unwrap().0,
            [0x41, 0x2c, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(Lun::from_number(300).unwrap().number(), Some(300));
        assert_eq!(Lun::from_number(0x4000), None);
        assert_eq!(Lun([0x80, 0, 0, 0, 0, 0, 0, 0]).number(), None);
    }
}
