//! Option negotiation for read requests (RFC 2347): blksize (RFC 2348), tsize and timeout
//! (RFC 2349), windowsize (RFC 7440).
//!
//! A pure function of the request's options, the server's limits and the file size, so that the
//! policy is unit-tested without sockets. Rules:
//! - blksize: values 8..=65464 are granted, clamped to the server's maximum; larger values are
//!   clamped too (RFC 2348 lets the server answer with a smaller one); smaller or non-numeric
//!   values leave the option out (and the transfer uses 512).
//! - tsize: answered with the file's size whatever number the client sent (0 in a read request);
//!   left out for an empty file, because curl refuses an OACK with tsize 0.
//! - timeout: 1..=255 seconds, echoed as sent (RFC 2349 allows no other answer); other values
//!   are left out.
//! - windowsize: 1..=65535, clamped to the server's maximum.
//! - unknown options are ignored; of a repeated option, the first counts.
//!
//! An OACK is sent only when at least one option was accepted (RFC 2347).

use std::time::Duration;

use super::packet::{DEFAULT_BLKSIZE, MAX_BLKSIZE, MIN_BLKSIZE};

/// What the server allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest blksize granted (clamped itself to 8..=65464).
    pub max_blksize: u16,
    /// Largest windowsize granted (at least 1).
    pub max_window: u16,
}

/// The outcome of a negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Bytes per DATA block.
    pub blksize: u16,
    /// Blocks sent before waiting for an ACK.
    pub window: u16,
    /// The client's retransmission timeout, when it asked for one.
    pub timeout: Option<Duration>,
    /// The options to acknowledge, in the client's order, names in lower case; empty: no OACK.
    pub oack: Vec<(String, String)>,
}

/// A decimal number of ASCII digits only; saturates instead of overflowing.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Negotiate the options of a read request for a file of `size` bytes.
pub fn negotiate(options: &[(String, String)], limits: Limits, size: u64) -> Negotiated {
    let max_blksize = u64::from(limits.max_blksize.clamp(MIN_BLKSIZE, MAX_BLKSIZE));
    let max_window = u64::from(limits.max_window.max(1));
    let mut n = Negotiated {
        blksize: DEFAULT_BLKSIZE,
        window: 1,
        timeout: None,
        oack: Vec::new(),
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for (name, value) in options {
        let key = ["blksize", "tsize", "timeout", "windowsize"]
            .into_iter()
            .find(|k| name.eq_ignore_ascii_case(k));
        let Some(key) = key else { continue };
        if seen.contains(&key) {
            continue;
        }
        let Some(v) = number(value) else { continue };
        let answer = match key {
            "blksize" if v >= u64::from(MIN_BLKSIZE) => {
                let granted = v.min(max_blksize);
                n.blksize = u16::try_from(granted).unwrap_or(MAX_BLKSIZE);
                Some(granted)
            }
            // curl (7.88) fails a transfer whose OACK says tsize 0, so an empty file's size
            // is left out (RFC 2349 lets the server leave any option out).
            "tsize" if size > 0 => Some(size),
            "timeout" if (1..=255).contains(&v) => {
                n.timeout = Some(Duration::from_secs(v));
                Some(v)
            }
            "windowsize" if (1..=65535).contains(&v) => {
                let granted = v.min(max_window);
                n.window = u16::try_from(granted).unwrap_or(1);
                Some(granted)
            }
            _ => None,
        };
        if let Some(answer) = answer {
            seen.push(key);
            n.oack.push((key.to_string(), answer.to_string()));
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits {
        max_blksize: 8192,
        max_window: 64,
    };

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn oack(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        opts(pairs)
    }

    #[test]
    fn no_options_no_oack() {
        let n = negotiate(&[], LIMITS, 100);
        assert_eq!(n.blksize, 512);
        assert_eq!(n.window, 1);
        assert_eq!(n.timeout, None);
        assert!(n.oack.is_empty());
    }

    #[test]
    fn blksize_is_clamped_and_granted() {
        let n = negotiate(&opts(&[("blksize", "1468")]), LIMITS, 0);
        assert_eq!((n.blksize, n.oack), (1468, oack(&[("blksize", "1468")])));
        let n = negotiate(&opts(&[("BLKSIZE", "65464")]), LIMITS, 0);
        assert_eq!((n.blksize, n.oack), (8192, oack(&[("blksize", "8192")])));
        let n = negotiate(&opts(&[("blksize", "99999999999999999999999")]), LIMITS, 0);
        assert_eq!(n.blksize, 8192);
        let n = negotiate(&opts(&[("blksize", "8")]), LIMITS, 0);
        assert_eq!(n.blksize, 8);
        for bad in ["7", "0", "", "-1", "12x", " 512"] {
            let n = negotiate(&opts(&[("blksize", bad)]), LIMITS, 0);
            assert_eq!(n.blksize, 512, "{bad:?}");
            assert!(n.oack.is_empty(), "{bad:?}");
        }
        let wide = Limits {
            max_blksize: 65535,
            max_window: 1,
        };
        let n = negotiate(&opts(&[("blksize", "70000")]), wide, 0);
        assert_eq!(n.blksize, 65464);
    }

    #[test]
    fn tsize_answers_the_size() {
        let n = negotiate(&opts(&[("tsize", "0")]), LIMITS, 12345);
        assert_eq!(n.oack, oack(&[("tsize", "12345")]));
        let n = negotiate(&opts(&[("tsize", "x")]), LIMITS, 12345);
        assert!(n.oack.is_empty());
        let n = negotiate(&opts(&[("tsize", "0")]), LIMITS, 0);
        assert!(n.oack.is_empty(), "no tsize 0 for an empty file");
    }

    #[test]
    fn timeout_range() {
        let n = negotiate(&opts(&[("timeout", "3")]), LIMITS, 0);
        assert_eq!(n.timeout, Some(Duration::from_secs(3)));
        assert_eq!(n.oack, oack(&[("timeout", "3")]));
        for bad in ["0", "256", "1.5"] {
            let n = negotiate(&opts(&[("timeout", bad)]), LIMITS, 0);
            assert_eq!(n.timeout, None, "{bad}");
            assert!(n.oack.is_empty());
        }
    }

    #[test]
    fn windowsize_is_clamped() {
        let n = negotiate(&opts(&[("windowsize", "16")]), LIMITS, 0);
        assert_eq!((n.window, n.oack), (16, oack(&[("windowsize", "16")])));
        let n = negotiate(&opts(&[("windowsize", "65535")]), LIMITS, 0);
        assert_eq!((n.window, n.oack), (64, oack(&[("windowsize", "64")])));
        for bad in ["0", "65536"] {
            let n = negotiate(&opts(&[("windowsize", bad)]), LIMITS, 0);
            assert_eq!(n.window, 1);
            assert!(n.oack.is_empty());
        }
    }

    #[test]
    fn unknown_ignored_order_kept_first_wins() {
        let n = negotiate(
            &opts(&[
                ("multicast", ""),
                ("windowsize", "4"),
                ("blksize", "1024"),
                ("blksize", "2048"),
                ("utimeout", "1000"),
                ("tsize", "0"),
            ]),
            LIMITS,
            7,
        );
        assert_eq!(n.blksize, 1024);
        assert_eq!(
            n.oack,
            oack(&[("windowsize", "4"), ("blksize", "1024"), ("tsize", "7")])
        );
    }

    proptest! {
        #[test]
        fn granted_values_stay_in_limits(
            b in any::<u64>(), w in any::<u64>(), mb in any::<u16>(), mw in any::<u16>()
        ) {
            let n = negotiate(
                &opts(&[("blksize", &b.to_string()), ("windowsize", &w.to_string())]),
                Limits { max_blksize: mb, max_window: mw },
                0,
            );
            prop_assert!((8..=65464).contains(&n.blksize));
            prop_assert!(n.blksize == 512 || n.blksize <= mb.max(8));
            prop_assert!(n.window >= 1 && n.window <= mw.max(1));
        }
    }
}
