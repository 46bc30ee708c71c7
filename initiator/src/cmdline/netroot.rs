//! `root=iscsi:` (Debian) and `netroot=iscsi:` (dracut), one grammar for both:
//!
//! ```text
//! iscsi:[<user>:<pass>[:<in_user>:<in_pass>]@][<server>]:[<proto>]:[<port>][:[<iface>]:[<netdev>]]:[<LUN>]:<target>
//! ```
//!
//! It is RFC 4173's root path with CHAP credentials in front (Debian, dracut) and dracut's
//! optional open-iscsi iface name and network device. Written from dracut's manual:
//! * the credentials are split off at the first `@` only if what follows still has the four
//!   `:` of a root path and what precedes is `user:pass` or `user:pass:in_user:in_pass`; an
//!   empty credential part (`iscsi:@server::...`) lets a target name contain `@`;
//! * the server may be an IPv6 address in brackets;
//! * the target name starts at the first `:iqn.`, `:eui.` or `:naa.`, and the fields before it
//!   are `proto:port:lun` or `proto:port:iface:netdev:lun`; a target name without one of those
//!   prefixes is everything after the LUN, as in RFC 4173, and may contain `:` too;
//! * protocol must be empty or 6 (TCP), port defaults to 3260, LUN to 0.
//!
//! Credentials are never quoted in errors; when the spec contains an `@` no field is quoted at
//! all, because a mis-split could put part of a password in any field.

use pxeroot_proto::chap::{Credentials, Secret};
use pxeroot_proto::root_path::{Server, DEFAULT_PORT, PROTOCOL_TCP};
use pxeroot_proto::Lun;

use super::{ip::check_ifname, parse_host, parse_iscsi_name, parse_lun, parse_port};
use super::{CmdlineError, LunFormat};

/// One `root=iscsi:` / `netroot=iscsi:` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiRoot {
    /// The parameter it came from (`root` or `netroot`).
    pub param: String,
    /// One-way CHAP: what the initiator presents.
    pub chap: Option<Credentials>,
    /// Mutual CHAP: what the target must present.
    pub mutual: Option<Credentials>,
    /// The portal address; `None` if left empty.
    pub server: Option<Server>,
    /// The portal port.
    pub port: u16,
    /// dracut's open-iscsi iface name.
    pub iface: Option<String>,
    /// dracut's network device.
    pub netdev: Option<String>,
    /// The boot LUN.
    pub lun: Lun,
    /// The target name.
    pub target_name: String,
}

const TARGET_PREFIXES: [&str; 3] = [":iqn.", ":eui.", ":naa."];

/// Parses a spec that starts with `iscsi:` (any case).
pub(crate) fn parse(
    key: &str,
    spec: &str,
    lun_format: LunFormat,
) -> Result<IscsiRoot, CmdlineError> {
    let quote_ok = !spec.contains('@');
    let q = |v: &str| -> String {
        if quote_ok {
            format!(" {:?}", v.chars().take(60).collect::<String>())
        } else {
            String::new()
        }
    };
    let body = spec.get(6..).unwrap_or_default();
    let (chap, mutual, rest) = split_auth(key, body)?;

    let (server, rest) = if let Some(after_bracket) = rest.strip_prefix('[') {
        let end = after_bracket
            .find(']')
            .ok_or_else(|| CmdlineError::new(key, "IPv6 server has no closing ']'"))?;
        let (inner, after) = after_bracket.split_at(end);
        let after = after.get(1..).unwrap_or_default();
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| CmdlineError::new(key, "no ':' after the IPv6 server"))?;
        (format!("[{inner}]"), after)
    } else {
        let (s, r) = rest
            .split_once(':')
            .ok_or_else(|| CmdlineError::new(key, "has no protocol field after the server"))?;
        (s.to_owned(), r)
    };
    let server = if server.is_empty() {
        None
    } else {
        Some(parse_host(&server).ok_or_else(|| {
            CmdlineError::new(
                key,
                format!("server{} is not an IP address or host name", q(&server)),
            )
        })?)
    };

    let lower = rest.to_ascii_lowercase();
    let target_at = TARGET_PREFIXES.iter().filter_map(|p| lower.find(p)).min();
    let (proto, port, iface, netdev, lun, target) = match target_at {
        Some(i) => {
            let head = rest.get(..i).unwrap_or_default();
            let target = rest.get(i + 1..).unwrap_or_default();
            let f: Vec<&str> = head.split(':').collect();
            match f.as_slice() {
                [proto, port, lun] => (*proto, *port, "", "", *lun, target),
                [proto, port, iface, netdev, lun] => (*proto, *port, *iface, *netdev, *lun, target),
                _ => {
                    return Err(CmdlineError::new(
                        key,
                        format!(
                            "expected proto:port:lun or proto:port:iface:netdev:lun between the \
                             server and the target name, found {} fields",
                            f.len()
                        ),
                    ))
                }
            }
        }
        None => {
            let mut it = rest.splitn(4, ':');
            match (it.next(), it.next(), it.next(), it.next()) {
                (Some(proto), Some(port), Some(lun), Some(target)) => {
                    (proto, port, "", "", lun, target)
                }
                _ => return Err(CmdlineError::new(key, "has no target name field")),
            }
        }
    };

    if !proto.is_empty() {
        match proto.parse::<u8>() {
            Ok(PROTOCOL_TCP) => {}
            _ => {
                return Err(CmdlineError::new(
                    key,
                    format!("protocol{} is not 6 (TCP), the only one defined", q(proto)),
                ))
            }
        }
    }
    let port = if port.is_empty() {
        DEFAULT_PORT
    } else {
        parse_port(key, port).map_err(|_| {
            CmdlineError::new(key, format!("port{} is not a number 1-65535", q(port)))
        })?
    };
    let iface = match iface {
        "" => None,
        i if i.chars().any(|c| c.is_whitespace() || c.is_control()) || i.len() > 64 => {
            return Err(CmdlineError::new(key, "iface name is not valid"))
        }
        i => Some(i.to_owned()),
    };
    let netdev = match netdev {
        "" => None,
        d => Some(check_ifname(key, d)?),
    };
    let lun = parse_lun(key, lun, lun_format).map_err(|e| {
        let mut problem = if quote_ok {
            e.problem
        } else {
            "LUN is not valid".to_owned()
        };
        if target_at.is_none() && target.contains(':') {
            problem.push_str(
                "; with iface and netdev fields the target name must start with iqn., eui. \
                 or naa.",
            );
        }
        CmdlineError::new(key, problem)
    })?;
    let target_name = parse_iscsi_name(key, target)
        .map_err(|e| CmdlineError::new(key, format!("target name: {}", e.problem)))?;
    Ok(IscsiRoot {
        param: key.to_owned(),
        chap,
        mutual,
        server,
        port,
        iface,
        netdev,
        lun,
        target_name,
    })
}

type Split<'a> = (Option<Credentials>, Option<Credentials>, &'a str);

fn split_auth<'a>(key: &str, body: &'a str) -> Result<Split<'a>, CmdlineError> {
    let Some((pre, post)) = body.split_once('@') else {
        return Ok((None, None, body));
    };
    if post.matches(':').count() < 4 {
        // The '@' belongs to the target name.
        return Ok((None, None, body));
    }
    let fields: Vec<&str> = pre.split(':').collect();
    let pair = |user: &str, pass: &str, what: &str| -> Result<Option<Credentials>, CmdlineError> {
        match (user.is_empty(), pass.is_empty()) {
            (true, true) => Ok(None),
            (false, false) => Ok(Some(Credentials {
                user: user.to_owned(),
                secret: Secret::new(pass.as_bytes()),
            })),
            (true, false) => Err(CmdlineError::new(
                key,
                format!("{what} CHAP secret given without a user name"),
            )),
            (false, true) => Err(CmdlineError::new(
                key,
                format!("{what} CHAP user name given without a secret"),
            )),
        }
    };
    match fields.as_slice() {
        [""] => Ok((None, None, post)),
        [user, pass] => Ok((pair(user, pass, "initiator")?, None, post)),
        [user, pass, in_user, in_pass] => {
            let chap = pair(user, pass, "initiator")?;
            let mutual = pair(in_user, in_pass, "target (mutual)")?;
            if chap.is_none() && mutual.is_some() {
                return Err(CmdlineError::new(
                    key,
                    "mutual CHAP credentials given without the initiator's",
                ));
            }
            Ok((chap, mutual, post))
        }
        f if f.len() >= 5 => Ok((None, None, body)),
        _ => Err(CmdlineError::new(
            key,
            "credentials before '@' must be user:password or \
             user:password:in_user:in_password (a password containing ':' or '@' cannot be \
             given here; use iscsi_password or /etc/iscsi.initramfs)",
        )),
    }
}
