//! Additional Header Segments (RFC 7143 §11.2.2): the Extended CDB AHS (type 1, CDBs longer
//! than 16 bytes) and the Expected Bidirectional Read Data Length AHS (type 2).
//!
//! Each AHS is `AHSLength (2) | AHSType (1) | AHS-Specific (1) | data`, where AHSLength counts
//! the AHS-Specific byte and the data, and each AHS is padded to four bytes. The AHS bytes of a
//! PDU come from [`crate::frame::Frame::ahs`]; PDU `Repr`s do not carry them.

use crate::bhs::pad_len;
use crate::error::WireError;

/// AHSType of the Extended CDB AHS.
pub const EXTENDED_CDB: u8 = 1;
/// AHSType of the Expected Bidirectional Read Data Length AHS.
pub const BIDI_READ_LENGTH: u8 = 2;

/// One Additional Header Segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ahs {
    /// The CDB bytes beyond the first 16 (which are in the BHS).
    ExtendedCdb(Vec<u8>),
    /// Expected Bidirectional Read Data Length.
    BidiReadDataLength(u32),
    /// Any other AHS type, kept raw.
    Other {
        /// AHSType (low 6 bits).
        ahs_type: u8,
        /// The AHS-Specific byte.
        specific: u8,
        /// The data after the AHS-Specific byte.
        data: Vec<u8>,
    },
}

/// Parses the AHS area of a PDU (TotalAHSLength * 4 bytes).
///
/// # Errors
/// [`WireError::Truncated`] when an AHSLength runs past the area, or
/// [`WireError::BadField`] for a malformed Bidirectional Read Data Length AHS.
pub fn parse(mut buf: &[u8]) -> Result<Vec<Ahs>, WireError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (len, ahs_type, specific) = match buf {
            [a, b, t, s, ..] => (usize::from(u16::from_be_bytes([*a, *b])), t & 0x3f, *s),
            _ => {
                return Err(WireError::Truncated {
                    need: 4,
                    have: buf.len(),
                })
            }
        };
        if len == 0 {
            return Err(WireError::BadField {
                field: "AHSLength",
                value: 0,
            });
        }
        let total = 3 + len;
        let padded = total + pad_len(total);
        let data = buf.get(4..total).ok_or(WireError::Truncated {
            need: total,
            have: buf.len(),
        })?;
        out.push(match ahs_type {
            EXTENDED_CDB => Ahs::ExtendedCdb(data.to_vec()),
            BIDI_READ_LENGTH => match data {
                [a, b, c, d] => Ahs::BidiReadDataLength(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => {
                    return Err(WireError::BadField {
                        field: "AHSLength",
                        value: len as u64,
                    })
                }
            },
            _ => Ahs::Other {
                ahs_type,
                specific,
                data: data.to_vec(),
            },
        });
        buf = buf.get(padded..).unwrap_or_default();
    }
    Ok(out)
}

/// Encodes AHSs, padded; the result's length / 4 is the TotalAHSLength.
///
/// # Errors
/// [`WireError::DataTooLong`] if one AHS or the whole area is too long to describe.
pub fn emit(list: &[Ahs]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    for ahs in list {
        let bidi;
        let (t, specific, data) = match ahs {
            Ahs::ExtendedCdb(cdb) => (EXTENDED_CDB, 0, cdb.as_slice()),
            Ahs::BidiReadDataLength(n) => {
                bidi = n.to_be_bytes();
                (BIDI_READ_LENGTH, 0, &bidi[..])
            }
            Ahs::Other {
                ahs_type,
                specific,
                data,
            } => (*ahs_type, *specific, data.as_slice()),
        };
        let len = u16::try_from(data.len() + 1).map_err(|_| WireError::DataTooLong(data.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.push(t & 0x3f);
        out.push(specific);
        out.extend_from_slice(data);
        out.resize(out.len() + pad_len(data.len() + 4), 0);
    }
    if out.len() > 255 * 4 {
        return Err(WireError::DataTooLong(out.len()));
    }
    Ok(out)
}

/// The complete CDB: the 16 BHS bytes followed by any Extended CDB AHS.
pub fn full_cdb(bhs_cdb: &[u8; 16], ahs: &[Ahs]) -> Vec<u8> {
    let mut cdb = bhs_cdb.to_vec();
    for a in ahs {
        if let Ahs::ExtendedCdb(rest) = a {
            cdb.extend_from_slice(rest);
        }
    }
    cdb
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_bidi_and_extended_cdb() {
        #[rustfmt::skip]
        let raw = [
            // Provenance: hand-assembled from RFC 7143 §11.2.2.3 / §11.2.2.4.
            0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x10, 0x00, // Bidi read length 4096
            0x00, 0x11, 0x01, 0x00,                         // Extended CDB: 32-byte CDB
            0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
            0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        ];
        let ext: Vec<u8> = (0x10..0x20).collect();
        let parsed = parse(&raw).unwrap();
        assert_eq!(
            parsed,
            vec![Ahs::BidiReadDataLength(4096), Ahs::ExtendedCdb(ext.clone())]
        );
        assert_eq!(emit(&parsed).unwrap(), raw);
        let cdb = full_cdb(&[0x7f; 16], &parsed);
        assert_eq!(cdb.len(), 32);
        assert_eq!(&cdb[16..], &ext[..]);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse(&[0, 9, 1, 0, 1, 2]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            parse(&[0, 0, 1, 0]),
            Err(WireError::BadField { .. })
        ));
        assert!(matches!(
            parse(&[0, 2, 2, 0, 9, 0, 0, 0]),
            Err(WireError::BadField { .. })
        ));
        assert!(matches!(parse(&[0, 1]), Err(WireError::Truncated { .. })));
    }

    proptest! {
        #[test]
        fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&buf);
        }

        #[test]
        fn round_trip(cdb in proptest::collection::vec(any::<u8>(), 0..40), n in any::<u32>(),
                      t in 3u8..64, data in proptest::collection::vec(any::<u8>(), 0..9)) {
            let list = vec![
                Ahs::ExtendedCdb(cdb),
                Ahs::BidiReadDataLength(n),
                Ahs::Other { ahs_type: t, specific: 7, data },
            ];
            let bytes = emit(&list).unwrap();
            prop_assert_eq!(bytes.len() % 4, 0);
            prop_assert_eq!(parse(&bytes).unwrap(), list);
        }
    }
}
