//! Framing a TCP byte stream into PDUs (RFC 7143 §11.2: BHS, AHS, header digest, data
//! segment, padding, data digest).
//!
//! I/O code reads into a buffer and calls [`pdu_len`] until the buffer holds a whole PDU. The
//! length read off the wire is checked against the negotiated `MaxRecvDataSegmentLength`
//! before it is returned, so a caller that allocates `pdu_len(..)` bytes never allocates an
//! attacker-chosen 16 MiB (style guide §6.2). [`Frame::split`] then verifies the digests and
//! hands out the BHS, AHS and unpadded data for [`crate::pdu::Pdu::parse`].

use crate::bhs::{pad_len, padded_len, Bhs, BHS_LEN};
use crate::digest::{self, DigestKind};
use crate::error::WireError;
use crate::negotiate::ConnParams;
use crate::pdu::{Pdu, PduRepr};

/// What the receiver of a byte stream accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Header digest in effect for this connection.
    pub header_digest: DigestKind,
    /// Data digest in effect for this connection.
    pub data_digest: DigestKind,
    /// The largest DataSegmentLength accepted (our declared `MaxRecvDataSegmentLength`; during
    /// login, 8192).
    pub max_data_segment_len: u32,
}

impl Default for FrameLimits {
    /// The login-phase limits: no digests, 8192-byte data segments (RFC 7143 §6.1, §13.12).
    fn default() -> Self {
        FrameLimits {
            header_digest: DigestKind::None,
            data_digest: DigestKind::None,
            max_data_segment_len: 8192,
        }
    }
}

impl From<&ConnParams> for FrameLimits {
    /// The receive limits of a connection in FullFeaturePhase.
    fn from(c: &ConnParams) -> Self {
        FrameLimits {
            header_digest: c.header_digest,
            data_digest: c.data_digest,
            max_data_segment_len: c.max_recv_data_segment_length,
        }
    }
}

/// How many bytes the PDU at the front of `buf` occupies, including AHS, digests and
/// padding. While `buf` holds less than a whole BHS this is [`BHS_LEN`]: read until
/// `buf.len() >= pdu_len(buf)`, then call again if it returned 48, then [`Frame::split`].
///
/// # Errors
/// [`WireError::BadDataSegmentLen`] when DataSegmentLength exceeds
/// `limits.max_data_segment_len`. The connection should then be closed or the PDU rejected.
pub fn pdu_len(buf: &[u8], limits: &FrameLimits) -> Result<usize, WireError> {
    let Ok(bhs) = Bhs::new_checked(buf) else {
        return Ok(BHS_LEN);
    };
    let dsl = bhs.data_segment_length();
    if dsl > limits.max_data_segment_len {
        return Err(WireError::BadDataSegmentLen(dsl));
    }
    // dsl <= 2^24, so this arithmetic cannot overflow even on 32-bit targets.
    let dsl = dsl as usize;
    let data_digest = if dsl > 0 {
        limits.data_digest.wire_len()
    } else {
        0
    };
    Ok(
        BHS_LEN
            + bhs.ahs_len()
            + limits.header_digest.wire_len()
            + dsl
            + pad_len(dsl)
            + data_digest,
    )
}

/// One complete PDU split into its parts, digests verified.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The 48-byte BHS.
    pub bhs: &'a [u8],
    /// The Additional Header Segments (TotalAHSLength * 4 bytes).
    pub ahs: &'a [u8],
    /// The data segment without padding or digest.
    pub data: &'a [u8],
    /// Total bytes consumed from the buffer.
    pub len: usize,
}

impl<'a> Frame<'a> {
    /// Splits the PDU at the front of `buf` and checks its digests.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if `buf` does not yet hold the whole PDU,
    /// [`WireError::BadDataSegmentLen`] as for [`pdu_len`], and
    /// [`WireError::HeaderDigest`] / [`WireError::DataDigest`] on digest mismatch.
    pub fn split(buf: &'a [u8], limits: &FrameLimits) -> Result<Frame<'a>, WireError> {
        let len = pdu_len(buf, limits)?;
        let have = buf.len();
        let pdu = buf
            .get(..len)
            .ok_or(WireError::Truncated { need: len, have })?;
        let trunc = WireError::Truncated { need: len, have };
        let (bhs_bytes, rest) = pdu.split_at_checked(BHS_LEN).ok_or(trunc.clone())?;
        let bhs = Bhs::new_checked(bhs_bytes)?;
        let (ahs, rest) = rest.split_at_checked(bhs.ahs_len()).ok_or(trunc.clone())?;
        let (hd, rest) = rest
            .split_at_checked(limits.header_digest.wire_len())
            .ok_or(trunc.clone())?;
        if let Ok(received) = <[u8; 4]>::try_from(hd) {
            let computed = digest::crc32c_parts(&[bhs_bytes, ahs]);
            let received = digest::from_wire(received);
            if computed != received {
                return Err(WireError::HeaderDigest { computed, received });
            }
        }
        let dsl = bhs.data_segment_length() as usize;
        let (padded, dd) = rest
            .split_at_checked(dsl + pad_len(dsl))
            .ok_or(trunc.clone())?;
        if let Ok(received) = <[u8; 4]>::try_from(dd) {
            let computed = digest::crc32c(padded);
            let received = digest::from_wire(received);
            if computed != received {
                return Err(WireError::DataDigest { computed, received });
            }
        }
        let data = padded.get(..dsl).ok_or(trunc)?;
        Ok(Frame {
            bhs: bhs_bytes,
            ahs,
            data,
            len,
        })
    }

    /// Parses the frame into a typed [`Pdu`].
    ///
    /// # Errors
    /// As [`Pdu::parse`].
    pub fn parse(&self) -> Result<Pdu, WireError> {
        Pdu::parse(self.bhs, self.data)
    }
}

/// Appends the wire form of `pdu` to `out`, with digests as in `limits` (no AHS).
///
/// The BHS, header digest, data, padding and data digest are written in place, so the data
/// is copied once and never moved.
///
/// # Errors
/// As [`PduRepr::emit_header`].
pub fn encode<P: PduRepr>(
    pdu: &P,
    limits: &FrameLimits,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let mut header = [0u8; BHS_LEN];
    pdu.emit_header(&mut header)?;
    encode_parts(&header, pdu.data_len(), |d| pdu.emit_data(d), limits, out);
    Ok(())
}

/// Like [`encode`] for a [`Pdu`] enum value.
///
/// # Errors
/// As [`PduRepr::emit_header`].
pub fn encode_pdu(pdu: &Pdu, limits: &FrameLimits, out: &mut Vec<u8>) -> Result<(), WireError> {
    let mut header = [0u8; BHS_LEN];
    pdu.emit_header(&mut header)?;
    encode_parts(&header, pdu.data_len(), |d| pdu.emit_data(d), limits, out);
    Ok(())
}

fn encode_parts(
    header: &[u8; BHS_LEN],
    data_len: usize,
    emit_data: impl FnOnce(&mut [u8]),
    limits: &FrameLimits,
    out: &mut Vec<u8>,
) {
    let data_digest = if data_len > 0 {
        limits.data_digest.wire_len()
    } else {
        0
    };
    out.reserve(BHS_LEN + limits.header_digest.wire_len() + padded_len(data_len) + data_digest);
    out.extend_from_slice(header);
    if limits.header_digest == DigestKind::Crc32c {
        out.extend_from_slice(&digest::header_digest(header, &[]));
    }
    let data_start = out.len();
    out.resize(data_start + padded_len(data_len), 0);
    if let Some(d) = out.get_mut(data_start..data_start + data_len) {
        emit_data(d);
    }
    if data_digest > 0 {
        let dd = out.get(data_start..).map_or([0; 4], digest::data_digest);
        out.extend_from_slice(&dd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bhs::Lun;
    use crate::pdu::NopOut;
    use crate::serial::SerialNumber;
    use proptest::prelude::*;

    fn nop(data: &[u8]) -> NopOut {
        NopOut {
            immediate: true,
            lun: Lun::ZERO,
            itt: 7,
            ttt: 0xffff_ffff,
            cmd_sn: SerialNumber(1),
            exp_stat_sn: SerialNumber(2),
            data: data.to_vec(),
        }
    }

    fn digests() -> FrameLimits {
        FrameLimits {
            header_digest: DigestKind::Crc32c,
            data_digest: DigestKind::Crc32c,
            max_data_segment_len: 8192,
        }
    }

    #[test]
    fn lengths() {
        let l = digests();
        assert_eq!(pdu_len(&[0u8; 10], &l), Ok(48));
        let mut v = Vec::new();
        encode(&nop(b"hello"), &l, &mut v).unwrap();
        // 48 BHS + 4 HD + 5 data + 3 pad + 4 DD
        assert_eq!(v.len(), 64);
        assert_eq!(pdu_len(&v, &l), Ok(64));
        let f = Frame::split(&v, &l).unwrap();
        assert_eq!(f.data, b"hello");
        assert_eq!(f.len, 64);
        assert_eq!(f.parse().unwrap(), Pdu::NopOut(nop(b"hello")));
    }

    #[test]
    fn no_data_no_data_digest() {
        let mut v = Vec::new();
        encode(&nop(b""), &digests(), &mut v).unwrap();
        assert_eq!(v.len(), 52);
    }

    #[test]
    fn enum_encode_matches_generic() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode(&nop(b"abcdef"), &digests(), &mut a).unwrap();
        encode_pdu(&Pdu::NopOut(nop(b"abcdef")), &digests(), &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn digest_errors() {
        let l = digests();
        let mut v = Vec::new();
        encode(&nop(b"hello"), &l, &mut v).unwrap();
        let mut bad = v.clone();
        bad[20] ^= 1;
        assert!(matches!(
            Frame::split(&bad, &l),
            Err(WireError::HeaderDigest { .. })
        ));
        let mut bad = v.clone();
        bad[53] ^= 1;
        assert!(matches!(
            Frame::split(&bad, &l),
            Err(WireError::DataDigest { .. })
        ));
        assert!(matches!(
            Frame::split(&v[..63], &l),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn oversized_segment_refused() {
        let mut v = Vec::new();
        encode(&nop(&[0u8; 100]), &FrameLimits::default(), &mut v).unwrap();
        let small = FrameLimits {
            max_data_segment_len: 99,
            ..FrameLimits::default()
        };
        assert_eq!(pdu_len(&v, &small), Err(WireError::BadDataSegmentLen(100)));
    }

    proptest! {
        #[test]
        fn split_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200),
                              hd in any::<bool>(), dd in any::<bool>()) {
            let kind = |b| if b { DigestKind::Crc32c } else { DigestKind::None };
            let l = FrameLimits {
                header_digest: kind(hd),
                data_digest: kind(dd),
                max_data_segment_len: 1 << 24,
            };
            let _ = pdu_len(&buf, &l);
            if let Ok(f) = Frame::split(&buf, &l) {
                let _ = f.parse();
            }
        }
    }
}
