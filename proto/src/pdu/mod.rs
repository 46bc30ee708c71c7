//! Per-opcode PDU representations (RFC 7143 §11), one file per opcode family.
//!
//! Every PDU has a `Repr` struct implementing [`PduRepr`]: `parse(&bhs, data)` turns a checked
//! [`Bhs`] view plus its (unpadded) data segment into a typed value, and `emit(buf)` writes the
//! BHS, the data segment and the zero padding back. Reserved fields are ignored on parse and
//! zeroed on emit; bits that a PDU must carry with a fixed value (e.g. the F bit of a NOP-In)
//! are written by `emit` and not checked by `parse`, following RFC 7143 §11.2.1's advice that
//! receivers ignore reserved bits. Every field that RFC 7143 gives a meaning to round-trips,
//! so `parse(emit(r)) == r` holds for every `r`.
//!
//! Digests and the AHS are not part of a `Repr`; they are handled by [`crate::frame`], which
//! sits between a byte stream and these types.
//!
//! # No-panic contract
//! `parse` of any byte slice returns `Ok` or `Err` and never panics; `emit` into a buffer that
//! is too short returns [`WireError::Truncated`]. (Same contract as smoltcp's `wire` module.)

mod async_msg;
mod data;
mod login;
mod logout;
mod nop;
mod r2t;
mod reject;
mod scsi;
mod snack;
mod task_mgmt;
mod text;

pub use async_msg::{AsyncEvent, AsyncMessage};
pub use data::{DataIn, DataOut};
pub use login::{LoginRequest, LoginResponse, LoginStatus, Stage, VERSION};
pub use logout::{LogoutReason, LogoutRequest, LogoutResponse, LogoutResponseCode};
pub use nop::{NopIn, NopOut};
pub use r2t::R2t;
pub use reject::{Reject, RejectReason};
pub use scsi::{ScsiCommand, ScsiResponse, TaskAttr};
pub use snack::{SnackRequest, SnackType};
pub use task_mgmt::{TaskMgmtFunction, TaskMgmtRequest, TaskMgmtResponse, TaskMgmtResponseCode};
pub use text::{TextRequest, TextResponse};

use crate::bhs::{pad_len, Bhs, Opcode, BHS_LEN};
use crate::error::WireError;

/// A typed PDU: parse from a BHS and data segment, emit back to bytes.
pub trait PduRepr: Sized {
    /// The opcode this type parses and emits.
    const OPCODE: Opcode;

    /// Parses a PDU from its BHS and its data segment (without padding or digest).
    ///
    /// # Errors
    /// [`WireError::UnexpectedOpcode`] if the BHS carries another opcode,
    /// [`WireError::DataSegmentMismatch`] if `data` disagrees with DataSegmentLength, and
    /// PDU-specific errors for malformed fields.
    fn parse(bhs: &Bhs<&[u8]>, data: &[u8]) -> Result<Self, WireError>;

    /// Writes every BHS field except DataSegmentLength into a zeroed BHS.
    fn emit_bhs(&self, bhs: &mut Bhs<&mut [u8]>);

    /// Length of the data segment, without padding.
    fn data_len(&self) -> usize;

    /// Writes the data segment into `out`, which is exactly [`Self::data_len`] bytes.
    fn emit_data(&self, out: &mut [u8]);

    /// Bytes [`Self::emit`] writes: BHS plus padded data segment.
    fn buffer_len(&self) -> usize {
        let d = self.data_len();
        BHS_LEN + d + pad_len(d)
    }

    /// Writes BHS, data segment and padding into the front of `buf`; returns bytes written.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if `buf` is shorter than [`Self::buffer_len`];
    /// [`WireError::DataTooLong`] if the data segment does not fit in 24 bits.
    fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let need = self.buffer_len();
        let have = buf.len();
        let out = buf
            .get_mut(..need)
            .ok_or(WireError::Truncated { need, have })?;
        let (head, rest) = out.split_at_mut(BHS_LEN);
        let mut bhs = Bhs::new_checked(head)?;
        bhs.clear();
        self.emit_bhs(&mut bhs);
        let d = self.data_len();
        bhs.set_data_segment_length(d)?;
        let (data, pad) = rest.split_at_mut(d);
        self.emit_data(data);
        pad.fill(0);
        Ok(need)
    }

    /// Writes only the 48-byte BHS, with DataSegmentLength set to [`Self::data_len`], so that
    /// I/O code can send the header and a large data buffer with one vectored write instead
    /// of copying the data (the caller then sends `data`, [`pad_len`] zero bytes and any
    /// digests itself).
    ///
    /// # Errors
    /// [`WireError::DataTooLong`] if the data segment does not fit in 24 bits.
    fn emit_header(&self, out: &mut [u8; BHS_LEN]) -> Result<(), WireError> {
        let mut bhs = Bhs::new_checked(&mut out[..])?;
        bhs.clear();
        self.emit_bhs(&mut bhs);
        bhs.set_data_segment_length(self.data_len())
    }

    /// Convenience: emits into a new `Vec`.
    ///
    /// # Errors
    /// As [`Self::emit`].
    fn to_vec(&self) -> Result<Vec<u8>, WireError> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }
}

/// Checks opcode and data length, the common first step of every `parse`.
fn check<'a>(bhs: &Bhs<&[u8]>, op: Opcode, data: &'a [u8]) -> Result<&'a [u8], WireError> {
    bhs.expect_opcode(op)?;
    bhs.check_data(data)
}

/// Copies `src` into `out` (same length by construction; never panics).
fn copy_data(out: &mut [u8], src: &[u8]) {
    for (o, s) in out.iter_mut().zip(src) {
        *o = *s;
    }
}

macro_rules! pdu_enum {
    ($( $variant:ident ),+ $(,)?) => {
        /// Any PDU, dispatched on the opcode.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        #[allow(missing_docs)]
        pub enum Pdu {
            $( $variant($variant), )+
        }

        impl Pdu {
            /// Parses any PDU by its opcode.
            ///
            /// # Errors
            /// [`WireError::Truncated`] if `bhs` is shorter than 48 bytes,
            /// [`WireError::UnknownOpcode`] for opcodes this crate does not parse, and
            /// whatever the opcode's own parser reports.
            pub fn parse(bhs: &[u8], data: &[u8]) -> Result<Pdu, WireError> {
                let bhs = Bhs::new_checked(bhs)?;
                let op = bhs.opcode_raw();
                $(
                    if op == u8::from(<$variant as PduRepr>::OPCODE) {
                        return Ok(Pdu::$variant(<$variant as PduRepr>::parse(&bhs, data)?));
                    }
                )+
                Err(WireError::UnknownOpcode(op))
            }

            /// The opcode of this PDU.
            pub fn opcode(&self) -> Opcode {
                match self {
                    $( Pdu::$variant(_) => <$variant as PduRepr>::OPCODE, )+
                }
            }

            /// See [`PduRepr::buffer_len`].
            pub fn buffer_len(&self) -> usize {
                match self {
                    $( Pdu::$variant(p) => p.buffer_len(), )+
                }
            }

            /// See [`PduRepr::data_len`].
            pub fn data_len(&self) -> usize {
                match self {
                    $( Pdu::$variant(p) => p.data_len(), )+
                }
            }

            /// See [`PduRepr::emit_header`].
            ///
            /// # Errors
            /// As [`PduRepr::emit_header`].
            pub fn emit_header(&self, out: &mut [u8; BHS_LEN]) -> Result<(), WireError> {
                match self {
                    $( Pdu::$variant(p) => p.emit_header(out), )+
                }
            }

            /// See [`PduRepr::emit_data`].
            pub fn emit_data(&self, out: &mut [u8]) {
                match self {
                    $( Pdu::$variant(p) => p.emit_data(out), )+
                }
            }

            /// See [`PduRepr::emit`].
            ///
            /// # Errors
            /// As [`PduRepr::emit`].
            pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
                match self {
                    $( Pdu::$variant(p) => p.emit(buf), )+
                }
            }
        }

        $(
            impl From<$variant> for Pdu {
                fn from(p: $variant) -> Pdu {
                    Pdu::$variant(p)
                }
            }
        )+
    };
}

pdu_enum!(
    NopOut,
    ScsiCommand,
    TaskMgmtRequest,
    LoginRequest,
    TextRequest,
    DataOut,
    LogoutRequest,
    SnackRequest,
    NopIn,
    ScsiResponse,
    TaskMgmtResponse,
    LoginResponse,
    TextResponse,
    DataIn,
    LogoutResponse,
    R2t,
    AsyncMessage,
    Reject,
);

impl Pdu {
    /// The Initiator Task Tag of this PDU as it will be emitted.
    pub fn itt(&self) -> u32 {
        let mut buf = [0u8; BHS_LEN];
        match self.emit_header(&mut buf) {
            Ok(()) => Bhs::new_checked(&buf[..]).map_or(0, |b| b.itt()),
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests;
