//! CHAP authentication inside the iSCSI SecurityNegotiation stage (RFC 7143 §12.1.3,
//! RFC 1994), one-way and mutual.
//!
//! Algorithms are numbered as in the IANA "PPP Authentication Algorithms" registry: 5 MD5,
//! 6 SHA-1, 7 SHA-256, 8 SHA3-256 (RFC 7143 §13.10 / RFC 7144 point there; note that tgt maps
//! 7 to SHA-1, which is wrong). The response is `H(CHAP_I || secret || CHAP_C)` with `CHAP_I`
//! as a single byte. Binary values are sent as `0x` hex and accepted as hex or `0b` base64
//! (RFC 7143 §6.1).
//!
//! Security measures, all from RFC 7143 §12.1.3 and §9.2.1:
//! * responses are compared in constant time (`subtle`);
//! * a target refuses a mutual challenge equal to the challenge it sent (reflection);
//! * the same secret may not be used in both directions ([`ChapError::SameSecretBothWays`]);
//! * secrets shorter than 12 bytes are allowed but produce [`ChapWarning::ShortSecret`];
//! * [`Secret`]'s `Debug` never prints the secret.
//!
//! The exchange is sans-IO: [`ChapInitiator`] and [`ChapTarget`] consume and produce
//! [`TextPairs`]; randomness for CHAP_I and CHAP_C comes from a [`Random`] implementation.

use core::fmt;

use subtle::ConstantTimeEq;

use crate::text::{Key, TextPairs};

/// The RFC 7143 §9.2.1 minimum secret length for CHAP without IPsec.
pub const MIN_SECRET_LEN: usize = 12;
/// The longest challenge we accept (RFC 7143 §12.1.3 limits CHAP_C to 1024 bytes).
pub const MAX_CHALLENGE_LEN: usize = 1024;

/// A source of random bytes, injected so that tests are deterministic.
pub trait Random {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

/// A CHAP algorithm (`CHAP_A`), by IANA number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChapAlgorithm {
    /// 5: MD5.
    Md5,
    /// 6: SHA-1.
    Sha1,
    /// 7: SHA-256.
    Sha256,
    /// 8: SHA3-256.
    Sha3_256,
}

impl ChapAlgorithm {
    /// All algorithms, strongest first.
    pub const ALL: [ChapAlgorithm; 4] = [
        ChapAlgorithm::Sha3_256,
        ChapAlgorithm::Sha256,
        ChapAlgorithm::Sha1,
        ChapAlgorithm::Md5,
    ];

    /// The IANA number.
    pub const fn code(self) -> u8 {
        match self {
            ChapAlgorithm::Md5 => 5,
            ChapAlgorithm::Sha1 => 6,
            ChapAlgorithm::Sha256 => 7,
            ChapAlgorithm::Sha3_256 => 8,
        }
    }

    /// The algorithm for an IANA number.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            5 => Some(ChapAlgorithm::Md5),
            6 => Some(ChapAlgorithm::Sha1),
            7 => Some(ChapAlgorithm::Sha256),
            8 => Some(ChapAlgorithm::Sha3_256),
            _ => None,
        }
    }

    /// Digest length in bytes (also the challenge length we send).
    pub const fn digest_len(self) -> usize {
        match self {
            ChapAlgorithm::Md5 => 16,
            ChapAlgorithm::Sha1 => 20,
            ChapAlgorithm::Sha256 | ChapAlgorithm::Sha3_256 => 32,
        }
    }

    /// `H(id || secret || challenge)` (RFC 1994 §4.1).
    pub fn response(self, id: u8, secret: &Secret, challenge: &[u8]) -> Vec<u8> {
        let parts: [&[u8]; 3] = [&[id], &secret.0, challenge];
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            ChapAlgorithm::Md5 => run::<md5::Md5>(&parts),
            ChapAlgorithm::Sha1 => run::<sha1::Sha1>(&parts),
            ChapAlgorithm::Sha256 => run::<sha2::Sha256>(&parts),
            ChapAlgorithm::Sha3_256 => run::<sha3::Sha3_256>(&parts),
        }
    }
}

/// A CHAP secret. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret's bytes, for handing to a consumer that needs them (the kernel keeps a
    /// session's CHAP credentials so that it can be logged in again). Never print them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A warning if the secret is shorter than RFC 7143's 12-byte minimum.
    pub fn warning(&self) -> Option<ChapWarning> {
        (self.0.len() < MIN_SECRET_LEN).then_some(ChapWarning::ShortSecret { len: self.0.len() })
    }

    fn ct_eq(&self, other: &Secret) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.0.len())
    }
}

/// A user name and secret for one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// CHAP_N.
    pub user: String,
    /// The shared secret.
    pub secret: Secret,
}

impl Credentials {
    /// Credentials from a user name and secret.
    pub fn new(user: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Credentials {
            user: user.into(),
            secret: Secret::new(secret),
        }
    }
}

/// Something worth logging that does not stop the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChapWarning {
    /// The secret is shorter than the 12 bytes RFC 7143 §9.2.1 requires.
    ShortSecret {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for ChapWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChapWarning::ShortSecret { len } => {
                write!(
                    f,
                    "CHAP secret is {len} bytes, RFC 7143 requires at least 12"
                )
            }
        }
    }
}

/// A CHAP failure. [`ChapError::is_auth_failure`] tells which ones are authentication
/// failures (Login status 0x0201) rather than protocol errors (0x0200).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChapError {
    /// A required key is absent.
    #[error("missing {0}")]
    MissingKey(&'static str),
    /// A binary value is not valid `0x` hex or `0b` base64.
    #[error("bad encoding of {0}")]
    BadEncoding(&'static str),
    /// CHAP_I is not a number in 0..=255.
    #[error("bad CHAP_I")]
    BadIdentifier,
    /// The challenge is empty or longer than 1024 bytes.
    #[error("challenge length {0} out of range")]
    BadChallengeLen(usize),
    /// No algorithm in common.
    #[error("no common CHAP algorithm in offer {0:?}")]
    NoCommonAlgorithm(String),
    /// The peer chose an algorithm we did not offer.
    #[error("CHAP_A {0:?} was not offered")]
    UnexpectedAlgorithm(String),
    /// CHAP_N is not the expected user.
    #[error("unknown CHAP user")]
    WrongUser,
    /// CHAP_R does not match.
    #[error("CHAP response mismatch")]
    BadResponse,
    /// The mutual challenge equals the challenge we sent (reflection attack).
    #[error("mutual challenge reflects our own challenge")]
    ReflectedChallenge,
    /// The same secret is configured for both directions.
    #[error("the same CHAP secret is used in both directions")]
    SameSecretBothWays,
    /// The peer asked for mutual authentication, which is not configured.
    #[error("mutual CHAP requested but no mutual credentials are configured")]
    MutualNotConfigured,
    /// We require mutual authentication and the target did not authenticate.
    #[error("target did not complete mutual CHAP")]
    MutualMissing,
    /// A CHAP key arrived at the wrong point of the exchange.
    #[error("unexpected CHAP key in state {0}")]
    UnexpectedKey(&'static str),
}

impl ChapError {
    /// Whether this is an authentication failure (status 0x0201) as opposed to a protocol
    /// or configuration error.
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            ChapError::WrongUser
                | ChapError::BadResponse
                | ChapError::ReflectedChallenge
                | ChapError::MutualNotConfigured
                | ChapError::MutualMissing
                | ChapError::NoCommonAlgorithm(_)
        )
    }
}

/// Encodes binary data as `0x` + lowercase hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes binary data as `0b` + base64 (RFC 4648 with padding).
pub fn encode_base64(bytes: &[u8]) -> String {
    let mut s = String::from("0b");
    for chunk in bytes.chunks(3) {
        let b = [chunk.first(), chunk.get(1), chunk.get(2)].map(|x| x.copied().unwrap_or(0));
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(B64[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn b64_val(c: u8) -> Option<u32> {
    B64.iter()
        .position(|x| *x == c)
        .and_then(|p| u32::try_from(p).ok())
}

/// Decodes a binary value in `0x`/`0X` hex (odd length allowed: a leading zero is implied)
/// or `0b`/`0B` base64.
pub fn decode_binary(s: &str) -> Option<Vec<u8>> {
    let (prefix, body) = (s.get(..2)?, s.get(2..)?.as_bytes());
    match prefix {
        "0x" | "0X" => {
            if body.is_empty() {
                return None;
            }
            let mut out = Vec::with_capacity(body.len() / 2 + 1);
            let (head, rest) = body.split_at(body.len() % 2);
            if let [h] = head {
                out.push(hex_val(*h)?);
            }
            for pair in rest.chunks(2) {
                let [h, l] = pair else { return None };
                out.push((hex_val(*h)? << 4) | hex_val(*l)?);
            }
            Some(out)
        }
        "0b" | "0B" => {
            let trimmed: &[u8] = match body {
                [rest @ .., b'=', b'='] => rest,
                [rest @ .., b'='] => rest,
                b => b,
            };
            if body.is_empty() || body.len() % 4 != 0 || trimmed.len() % 4 == 1 {
                return None;
            }
            let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
            for chunk in trimmed.chunks(4) {
                let mut n = 0u32;
                for (i, c) in chunk.iter().enumerate() {
                    n |= b64_val(*c)? << (18 - 6 * i);
                }
                let bytes = n.to_be_bytes();
                out.extend_from_slice(bytes.get(1..chunk.len()).unwrap_or_default());
            }
            Some(out)
        }
        _ => None,
    }
}

fn get<'a>(rx: &'a TextPairs, key: &Key, name: &'static str) -> Result<&'a str, ChapError> {
    rx.get(key).ok_or(ChapError::MissingKey(name))
}

fn parse_id(v: &str) -> Result<u8, ChapError> {
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None if v.bytes().all(|b| b.is_ascii_digit()) => v.parse::<u32>().ok(),
        None => None,
    };
    n.and_then(|n| u8::try_from(n).ok())
        .ok_or(ChapError::BadIdentifier)
}

fn parse_challenge(v: &str) -> Result<Vec<u8>, ChapError> {
    let c = decode_binary(v).ok_or(ChapError::BadEncoding("CHAP_C"))?;
    if c.is_empty() || c.len() > MAX_CHALLENGE_LEN {
        return Err(ChapError::BadChallengeLen(c.len()));
    }
    Ok(c)
}

fn verify(
    alg: ChapAlgorithm,
    expected: &Credentials,
    id: u8,
    challenge: &[u8],
    rx: &TextPairs,
) -> Result<(), ChapError> {
    let user = get(rx, &Key::ChapN, "CHAP_N")?;
    let response = get(rx, &Key::ChapR, "CHAP_R")?;
    let response = decode_binary(response).ok_or(ChapError::BadEncoding("CHAP_R"))?;
    let want = alg.response(id, &expected.secret, challenge);
    let user_ok = user.as_bytes().ct_eq(expected.user.as_bytes());
    let resp_ok = response.ct_eq(&want);
    if bool::from(user_ok & resp_ok) {
        Ok(())
    } else if !bool::from(user_ok) {
        Err(ChapError::WrongUser)
    } else {
        Err(ChapError::BadResponse)
    }
}

fn challenge(alg: ChapAlgorithm, rng: &mut dyn Random) -> (u8, Vec<u8>) {
    let mut id = [0u8; 1];
    rng.fill_bytes(&mut id);
    let mut c = vec![0u8; alg.digest_len()];
    rng.fill_bytes(&mut c);
    (id[0], c)
}

fn check_distinct(own: &Credentials, mutual: Option<&Credentials>) -> Result<(), ChapError> {
    match mutual {
        Some(m) if m.secret.ct_eq(&own.secret) => Err(ChapError::SameSecretBothWays),
        _ => Ok(()),
    }
}

fn warnings(own: &Credentials, mutual: Option<&Credentials>) -> Vec<ChapWarning> {
    [Some(own), mutual]
        .into_iter()
        .flatten()
        .filter_map(|c| c.secret.warning())
        .collect()
}

mod exchange;
pub use exchange::{ChapInitiator, ChapTarget};

#[cfg(test)]
mod tests;
