//! Vetting a received datagram before dhcproto decodes it.
//!
//! dhcproto 0.14 decodes every option it knows, and a few of its decoders `debug_assert!` on
//! the length or subtract from it (RapidCommit, ClientNetworkInterface, ClientFQDN, the bulk
//! leasequery options): wire data can make a debug build panic (proptest found it). So the
//! options area is walked here first, and only the options this client uses are passed on,
//! each with its length checked; everything else is dropped unread. The result is the fixed
//! 240-byte header, the kept options, and End.

use super::Ignored;

/// The fixed BOOTP header plus the magic cookie.
pub const HEADER_LEN: usize = 240;

/// Options kept, with their allowed lengths.
fn allowed(code: u8, len: usize) -> Option<bool> {
    Some(match code {
        // message type
        53 => len == 1,
        // subnet mask, broadcast, server id, lease time, T1, T2
        1 | 28 | 54 | 51 | 58 | 59 => len == 4,
        // MTU
        26 => len == 2,
        // routers, DNS servers
        3 | 6 => len >= 4 && len % 4 == 0,
        // host name, domain, root path, NAK message, bootfile, domain search,
        // iPXE encapsulated, initiator name
        12 | 15 | 17 | 56 | 67 | 119 | 175 | 203 => true,
        _ => return None,
    })
}

/// Options that may appear once only (RFC 3396 concatenation makes no sense for them).
fn fixed(code: u8) -> bool {
    matches!(code, 53 | 1 | 28 | 54 | 51 | 58 | 59 | 26)
}

/// Returns the datagram reduced to the header and the vetted options.
///
/// # Errors
/// [`Ignored::Malformed`] naming the first problem: too short, an option running past the
/// end, a kept option with a wrong length or repeated.
pub fn vet(datagram: &[u8]) -> Result<Vec<u8>, Ignored> {
    let header = datagram.get(..HEADER_LEN).ok_or_else(|| {
        Ignored::Malformed(format!(
            "{} bytes, shorter than a BOOTP header",
            datagram.len()
        ))
    })?;
    let mut out = header.to_vec();
    let mut rest = datagram.get(HEADER_LEN..).unwrap_or_default();
    let mut seen = [false; 256];
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            0 => {
                rest = tail;
                continue;
            }
            255 => break,
            _ => {}
        }
        let (&len, tail) = tail
            .split_first()
            .ok_or_else(|| Ignored::Malformed(format!("option {code} has no length")))?;
        let len = usize::from(len);
        if tail.len() < len {
            return Err(Ignored::Malformed(format!(
                "option {code} runs past the end ({len} bytes announced, {} left)",
                tail.len()
            )));
        }
        let (value, tail) = tail.split_at(len);
        rest = tail;
        match allowed(code, len) {
            None => continue,
            Some(false) => {
                return Err(Ignored::Malformed(format!(
                    "option {code} has a bad length {len}"
                )))
            }
            Some(true) => {}
        }
        let slot = &mut seen[usize::from(code)];
        if *slot && fixed(code) {
            return Err(Ignored::Malformed(format!("option {code} appears twice")));
        }
        *slot = true;
        out.push(code);
        // `len` came from a u8.
        out.push(len as u8);
        out.extend_from_slice(value);
    }
    out.push(255);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        vec![0u8; HEADER_LEN]
    }

    #[test]
    fn keeps_known_drops_unknown_and_checks_lengths() {
        let mut p = header();
        p.extend([
            53, 1, 2, 0, 80, 0, 94, 1, 9, 1, 4, 255, 255, 255, 0, 255, 99, 99,
        ]);
        let v = vet(&p).unwrap();
        assert_eq!(&v[HEADER_LEN..], [53, 1, 2, 1, 4, 255, 255, 255, 0, 255]);

        for bad in [
            &[53u8, 2, 1, 1][..],
            &[1, 3, 1, 2, 3],
            &[3, 5, 1, 2, 3, 4, 5],
            &[26, 1, 9],
        ] {
            let mut p = header();
            p.extend(bad);
            assert!(
                matches!(vet(&p), Err(Ignored::Malformed(m)) if m.contains("bad length")),
                "{bad:?}"
            );
        }
        let mut p = header();
        p.extend([53, 1, 2, 53, 1, 5]);
        assert!(matches!(vet(&p), Err(Ignored::Malformed(m)) if m.contains("twice")));
        // Repeated variable-length options are concatenated by the decoder (RFC 3396).
        let mut p = header();
        p.extend([17, 2, b'a', b'b', 17, 1, b'c']);
        assert!(vet(&p).is_ok());
        let mut p = header();
        p.extend([17, 9, b'a']);
        assert!(matches!(vet(&p), Err(Ignored::Malformed(m)) if m.contains("past the end")));
        let mut p = header();
        p.push(17);
        assert!(matches!(vet(&p), Err(Ignored::Malformed(m)) if m.contains("no length")));
        assert!(vet(&p[..100]).is_err());
    }
}
