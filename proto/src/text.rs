//! The `key=value\0` text format of Login and Text PDUs (RFC 7143 §6.1, key list in §12
//! and §13).
//!
//! Keys are parsed into [`Key`], with [`Key::Unknown`] keeping the spelling of keys we do not
//! know so that they can be answered with `NotUnderstood` (§6.2). Limits from §6.1 are
//! enforced on both parse and emit: a key name is at most 63 bytes of
//! `[A-Za-z0-9.\-+@_]`, a value at most 255 bytes, except the large binary values of CHAP
//! (`CHAP_C`, `CHAP_R`) and unknown keys, which may be up to 8192 bytes. Long texts that span
//! several PDUs (C bit) are joined by [`TextAccumulator`], which caps the total size so a
//! peer cannot make us buffer without bound.

use core::fmt;

use crate::error::WireError;

/// Maximum length of a key name (RFC 7143 §6.1).
pub const MAX_KEY_LEN: usize = 63;
/// Maximum length of an ordinary value (RFC 7143 §6.1).
pub const MAX_VALUE_LEN: usize = 255;
/// Maximum length of a large binary value such as `CHAP_C` (RFC 7143 §6.1, §12.1.3).
pub const MAX_LARGE_VALUE_LEN: usize = 8192;

/// The answer to a key the responder does not know (RFC 7143 §6.2).
pub const NOT_UNDERSTOOD: &str = "NotUnderstood";
/// The answer to a key that does not apply in this context (RFC 7143 §6.2).
pub const IRRELEVANT: &str = "Irrelevant";
/// The answer to a key whose offered value is unacceptable (RFC 7143 §6.2).
pub const REJECT: &str = "Reject";

macro_rules! keys {
    ($( $(#[$m:meta])* $variant:ident = $name:literal ),+ $(,)?) => {
        /// A text key (RFC 7143 §12 security keys, §13 operational keys).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Key {
            $( $(#[$m])* #[doc = concat!("`", $name, "`")] $variant, )+
            /// Any other key, spelled as received (including `X-` and `X#` extension keys).
            Unknown(String),
        }

        impl Key {
            /// The key name as sent on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Key::$variant => $name, )+
                    Key::Unknown(s) => s,
                }
            }

            /// Looks up a key name (case-sensitive, RFC 7143 §6.1).
            pub fn from_name(name: &str) -> Key {
                match name {
                    $( $name => Key::$variant, )+
                    other => Key::Unknown(other.to_owned()),
                }
            }
        }
    };
}

keys! {
    HeaderDigest = "HeaderDigest",
    DataDigest = "DataDigest",
    MaxConnections = "MaxConnections",
    SendTargets = "SendTargets",
    TargetName = "TargetName",
    InitiatorName = "InitiatorName",
    TargetAlias = "TargetAlias",
    InitiatorAlias = "InitiatorAlias",
    TargetAddress = "TargetAddress",
    TargetPortalGroupTag = "TargetPortalGroupTag",
    InitialR2T = "InitialR2T",
    ImmediateData = "ImmediateData",
    MaxRecvDataSegmentLength = "MaxRecvDataSegmentLength",
    MaxBurstLength = "MaxBurstLength",
    FirstBurstLength = "FirstBurstLength",
    DefaultTime2Wait = "DefaultTime2Wait",
    DefaultTime2Retain = "DefaultTime2Retain",
    MaxOutstandingR2T = "MaxOutstandingR2T",
    DataPduInOrder = "DataPDUInOrder",
    DataSequenceInOrder = "DataSequenceInOrder",
    ErrorRecoveryLevel = "ErrorRecoveryLevel",
    SessionType = "SessionType",
    IfMarker = "IFMarker",
    OfMarker = "OFMarker",
    IfMarkInt = "IFMarkInt",
    OfMarkInt = "OFMarkInt",
    TaskReporting = "TaskReporting",
    IscsiProtocolLevel = "iSCSIProtocolLevel",
    AuthMethod = "AuthMethod",
    ChapA = "CHAP_A",
    ChapI = "CHAP_I",
    ChapC = "CHAP_C",
    ChapN = "CHAP_N",
    ChapR = "CHAP_R",
}

impl Key {
    /// Whether this is one of the CHAP keys handled by [`crate::chap`].
    pub fn is_chap(&self) -> bool {
        matches!(
            self,
            Key::ChapA | Key::ChapI | Key::ChapC | Key::ChapN | Key::ChapR
        )
    }

    /// The longest value this key may carry.
    pub fn max_value_len(&self) -> usize {
        match self {
            Key::ChapC | Key::ChapR | Key::Unknown(_) => MAX_LARGE_VALUE_LEN,
            _ => MAX_VALUE_LEN,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEY_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+@_#".contains(&b))
}

/// An ordered list of key=value pairs, as carried by one text exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextPairs {
    pairs: Vec<(Key, String)>,
}

impl TextPairs {
    /// An empty list.
    pub fn new() -> Self {
        TextPairs::default()
    }

    /// Parses a data segment. Empty items (extra NULs, e.g. padding) are skipped.
    ///
    /// # Errors
    /// [`WireError::NotUtf8`], [`WireError::MissingEquals`], [`WireError::BadKey`] for a key
    /// that is empty, longer than 63 bytes or has characters outside RFC 7143 §6.1, and
    /// [`WireError::BadValue`] for an over-long value.
    pub fn parse(data: &[u8]) -> Result<Self, WireError> {
        let mut pairs = Vec::new();
        for item in data.split(|b| *b == 0) {
            if item.is_empty() {
                continue;
            }
            let item = core::str::from_utf8(item).map_err(|_| WireError::NotUtf8)?;
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| WireError::MissingEquals(truncate(item)))?;
            if !valid_key_name(name) {
                return Err(WireError::BadKey(truncate(name)));
            }
            let key = Key::from_name(name);
            if value.len() > key.max_value_len() {
                return Err(WireError::BadValue {
                    key: name.to_owned(),
                    reason: "too long",
                });
            }
            pairs.push((key, value.to_owned()));
        }
        Ok(TextPairs { pairs })
    }

    /// Appends a pair.
    pub fn push(&mut self, key: Key, value: impl Into<String>) {
        self.pairs.push((key, value.into()));
    }

    /// The first value of `key`.
    pub fn get(&self, key: &Key) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Iterates over the pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &str)> {
        self.pairs.iter().map(|(k, v)| (k, v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Appends all pairs of `other`.
    pub fn extend(&mut self, other: TextPairs) {
        self.pairs.extend(other.pairs);
    }

    /// Removes and returns the pairs whose key satisfies `pred`, keeping the rest in order.
    pub fn take_where(&mut self, pred: impl Fn(&Key) -> bool) -> TextPairs {
        let (taken, kept) = core::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(k, _)| pred(k));
        self.pairs = kept;
        TextPairs { pairs: taken }
    }

    /// Bytes [`Self::to_bytes`] produces.
    pub fn buffer_len(&self) -> usize {
        self.pairs
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 2)
            .sum()
    }

    /// Encodes the pairs as `key=value\0...`.
    ///
    /// # Errors
    /// [`WireError::BadKey`] or [`WireError::BadValue`] if a pair breaks the RFC 7143 §6.1
    /// limits or contains a NUL.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        for (k, v) in &self.pairs {
            let name = k.as_str();
            if !valid_key_name(name) {
                return Err(WireError::BadKey(truncate(name)));
            }
            if v.len() > k.max_value_len() {
                return Err(WireError::BadValue {
                    key: name.to_owned(),
                    reason: "too long",
                });
            }
            if v.contains('\0') {
                return Err(WireError::BadValue {
                    key: name.to_owned(),
                    reason: "contains NUL",
                });
            }
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        Ok(out)
    }
}

impl FromIterator<(Key, String)> for TextPairs {
    fn from_iter<I: IntoIterator<Item = (Key, String)>>(iter: I) -> Self {
        TextPairs {
            pairs: iter.into_iter().collect(),
        }
    }
}

/// Keeps error messages short when a peer sends a huge bogus key.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Joins the data segments of a multi-PDU text (C bit set on all but the last).
#[derive(Debug, Clone)]
pub struct TextAccumulator {
    buf: Vec<u8>,
    limit: usize,
}

impl TextAccumulator {
    /// An accumulator that refuses texts longer than `limit` bytes in total.
    pub fn new(limit: usize) -> Self {
        TextAccumulator {
            buf: Vec::new(),
            limit,
        }
    }

    /// Adds one PDU's data. Returns the whole text when `cont` is false.
    ///
    /// # Errors
    /// [`WireError::BadDataSegmentLen`] if the total would exceed the limit; the partial text
    /// is discarded.
    pub fn push(&mut self, data: &[u8], cont: bool) -> Result<Option<Vec<u8>>, WireError> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            let total = self.buf.len().saturating_add(data.len());
            self.buf.clear();
            return Err(WireError::BadDataSegmentLen(
                u32::try_from(total).unwrap_or(u32::MAX),
            ));
        }
        self.buf.extend_from_slice(data);
        if cont {
            Ok(None)
        } else {
            Ok(Some(core::mem::take(&mut self.buf)))
        }
    }

    /// Whether a partial text is buffered.
    pub fn is_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// Splits an encoded text into chunks of at most `max` bytes, for sending with the C bit.
pub fn chunks(text: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    text.chunks(max.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_basic() {
        let t =
            TextPairs::parse(b"InitiatorName=iqn.2026-11.x:y\0SessionType=Normal\0\0\0").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&Key::InitiatorName), Some("iqn.2026-11.x:y"));
        assert_eq!(t.get(&Key::SessionType), Some("Normal"));
        assert_eq!(t.get(&Key::TargetName), None);
    }

    #[test]
    fn value_may_contain_equals() {
        let t = TextPairs::parse(b"X-foo=a=b\0").unwrap();
        assert_eq!(t.get(&Key::Unknown("X-foo".into())), Some("a=b"));
    }

    #[test]
    fn limits() {
        let long_key = format!("{}=1\0", "K".repeat(64));
        assert!(matches!(
            TextPairs::parse(long_key.as_bytes()),
            Err(WireError::BadKey(_))
        ));
        let ok_key = format!("{}=1\0", "K".repeat(63));
        assert!(TextPairs::parse(ok_key.as_bytes()).is_ok());
        let long_val = format!("TargetAlias={}\0", "v".repeat(256));
        assert!(matches!(
            TextPairs::parse(long_val.as_bytes()),
            Err(WireError::BadValue { .. })
        ));
        let chap = format!("CHAP_C=0x{}\0", "ab".repeat(4000));
        assert!(TextPairs::parse(chap.as_bytes()).is_ok());
        assert!(matches!(
            TextPairs::parse(b"NoEquals\0"),
            Err(WireError::MissingEquals(_))
        ));
        assert!(matches!(
            TextPairs::parse(b"=x\0"),
            Err(WireError::BadKey(_))
        ));
        assert!(matches!(
            TextPairs::parse(b"a b=x\0"),
            Err(WireError::BadKey(_))
        ));
        assert_eq!(TextPairs::parse(b"A=\xff\0"), Err(WireError::NotUtf8));
    }

    #[test]
    fn emit() {
        let mut t = TextPairs::new();
        t.push(Key::HeaderDigest, "CRC32C,None");
        t.push(Key::Unknown("X-vendor".into()), NOT_UNDERSTOOD);
        assert_eq!(
            t.to_bytes().unwrap(),
            b"HeaderDigest=CRC32C,None\0X-vendor=NotUnderstood\0"
        );
        assert_eq!(t.buffer_len(), t.to_bytes().unwrap().len());
        let mut bad = TextPairs::new();
        bad.push(Key::TargetAlias, "a\0b");
        assert!(bad.to_bytes().is_err());
    }

    #[test]
    fn take_chap() {
        let mut t = TextPairs::parse(b"CHAP_A=5\0AuthMethod=CHAP\0CHAP_N=u\0").unwrap();
        let chap = t.take_where(Key::is_chap);
        assert_eq!(chap.len(), 2);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn accumulator() {
        let mut acc = TextAccumulator::new(10);
        assert_eq!(acc.push(b"A=1\0B", true), Ok(None));
        assert!(acc.is_partial());
        assert_eq!(acc.push(b"=2\0", false), Ok(Some(b"A=1\0B=2\0".to_vec())));
        assert!(acc.push(b"0123456789", true).is_ok());
        assert!(acc.push(b"x", false).is_err());
        assert!(!acc.is_partial());
        assert_eq!(chunks(b"abcde", 2).count(), 3);
    }

    fn arb_key() -> impl Strategy<Value = Key> {
        prop_oneof![
            Just(Key::HeaderDigest),
            Just(Key::MaxBurstLength),
            Just(Key::ChapC),
            "[A-Za-z][A-Za-z0-9.@_+-]{0,20}".prop_map(|s| Key::from_name(&s)),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = TextPairs::parse(&data);
        }

        #[test]
        fn round_trip(pairs in proptest::collection::vec((arb_key(), "[ -~]{0,40}"), 0..8)) {
            let t: TextPairs = pairs.into_iter().collect();
            let bytes = t.to_bytes().unwrap();
            prop_assert_eq!(TextPairs::parse(&bytes).unwrap(), t);
        }
    }
}
