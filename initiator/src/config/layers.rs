//! The merge itself: each source becomes a [`Layer`] shaped like [`Merge`], and layers are
//! applied in rising precedence, each value independently, remembering its [`Source`].

use pxeroot_proto::chap::Secret;
use pxeroot_proto::root_path::{RootPath, Server, DEFAULT_PORT};
use pxeroot_proto::Lun;

use super::{ibft, DhcpInfo, Ibft, PlanError};
use crate::cmdline::{Autoconf, BootArgs, IpConfig, LunFormat, NodeParam};
use crate::plan::{Addressing, Auth, Source};

/// A value and the source that set it.
#[derive(Debug, Clone)]
pub(super) struct Sourced<T> {
    pub(super) value: Option<T>,
    pub(super) source: Option<Source>,
}

impl<T> Default for Sourced<T> {
    fn default() -> Self {
        Sourced {
            value: None,
            source: None,
        }
    }
}

impl<T> Sourced<T> {
    pub(super) fn set(&mut self, v: Option<T>, source: Source) {
        if v.is_some() {
            self.value = v;
            self.source = Some(source);
        }
    }
}

/// The values being merged, layer by layer.
#[derive(Debug, Default)]
pub(super) struct Merge {
    pub(super) initiator: Sourced<String>,
    pub(super) target_name: Sourced<String>,
    /// Portals with their explicit port, if any.
    pub(super) portals: Sourced<Vec<(Server, Option<u16>)>>,
    pub(super) port: Sourced<u16>,
    pub(super) lun: Sourced<Lun>,
    pub(super) target_group: Option<u16>,
    pub(super) username: Sourced<String>,
    pub(super) password: Sourced<Secret>,
    pub(super) in_username: Sourced<String>,
    pub(super) in_password: Sourced<Secret>,
    pub(super) auth_forced_off: bool,
    pub(super) iface_name: Option<String>,
}

/// One layer's values, shaped like the merge.
#[derive(Debug, Default)]
pub(super) struct Layer {
    pub(super) initiator: Option<String>,
    pub(super) target_name: Option<String>,
    pub(super) portals: Option<Vec<(Server, Option<u16>)>>,
    pub(super) port: Option<u16>,
    pub(super) lun: Option<Lun>,
    pub(super) target_group: Option<u16>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Secret>,
    pub(super) in_username: Option<String>,
    pub(super) in_password: Option<Secret>,
}

impl Merge {
    pub(super) fn apply(&mut self, l: Layer, src: Source) {
        if let Some(port) = l.port {
            // A port set here re-ports the lower layers' portals.
            if let Some(list) = &mut self.portals.value {
                for p in list.iter_mut() {
                    p.1 = None;
                }
            }
            self.port.set(Some(port), src);
        }
        self.portals.set(l.portals, src);
        self.initiator.set(l.initiator, src);
        self.target_name.set(l.target_name, src);
        self.lun.set(l.lun, src);
        if l.target_group.is_some() {
            self.target_group = l.target_group;
        }
        self.username.set(l.username, src);
        self.password.set(l.password, src);
        self.in_username.set(l.in_username, src);
        self.in_password.set(l.in_password, src);
    }
}

pub(super) fn iscsi_layer(a: &crate::cmdline::IscsiArgs) -> Layer {
    Layer {
        initiator: a.initiator.clone(),
        target_name: a.target_name.clone(),
        portals: a
            .target_ips
            .as_ref()
            .map(|ips| ips.iter().map(|s| (s.clone(), None)).collect()),
        port: a.target_port,
        lun: None,
        target_group: a.target_group,
        username: a.username.clone(),
        password: a.password.clone(),
        in_username: a.in_username.clone(),
        in_password: a.in_password.clone(),
    }
}

pub(super) fn server_of(ip: std::net::IpAddr) -> Server {
    match ip {
        std::net::IpAddr::V4(a) => Server::Ipv4(a),
        std::net::IpAddr::V6(a) => Server::Ipv6(a),
    }
}

pub(super) fn ibft_layer(ibft: &Ibft, warnings: &mut Vec<String>) -> Result<Layer, PlanError> {
    let targets = ibft.boot_targets();
    let first = targets.first().ok_or(PlanError::NoIbftTarget)?;
    let name = first.target_name.clone();
    let mut portals = Vec::new();
    for t in &targets {
        if t.target_name != name || t.lun != first.lun {
            warnings.push(format!(
                "iBFT target{} names another target or LUN than target{}, ignored",
                t.index, first.index
            ));
            continue;
        }
        if let Some(a) = t.address {
            let p = (server_of(a), Some(t.port.unwrap_or(DEFAULT_PORT)));
            if !portals.contains(&p) {
                portals.push(p);
            }
        }
    }
    Ok(Layer {
        initiator: ibft.initiator_name.clone(),
        target_name: name,
        portals: (!portals.is_empty()).then_some(portals),
        port: None,
        lun: Some(first.lun),
        target_group: None,
        username: first.chap_name.clone(),
        password: first.chap_secret.clone(),
        in_username: first.rev_chap_name.clone(),
        in_password: first.rev_chap_secret.clone(),
    })
}

pub(super) fn dhcp_layer(d: &DhcpInfo, need_root: bool) -> Result<Layer, PlanError> {
    let mut layer = Layer::default();
    match d.root_path.as_deref() {
        Some(rp)
            if rp
                .get(..6)
                .is_some_and(|p| p.eq_ignore_ascii_case("iscsi:")) =>
        {
            // RFC 4173 first; then dracut's grammar (credentials, iface, netdev), which dracut
            // also applies to the DHCP root path. LUNs stay RFC 4173 hexadecimal.
            match RootPath::parse(rp) {
                Ok(r) => {
                    layer.target_name = Some(r.target_name);
                    layer.portals = r.server.map(|s| vec![(s, Some(r.port))]);
                    layer.lun = Some(r.lun);
                }
                Err(rfc_err) => {
                    let r = crate::cmdline::netroot::parse("root-path", rp, LunFormat::Rfc4173)
                        .map_err(|e| {
                            // proto's errors quote fields, which may hold a password if the
                            // path carries credentials; the dracut parser's never do.
                            PlanError::DhcpRootPath(if rp.contains('@') {
                                e.problem
                            } else {
                                rfc_err.to_string()
                            })
                        })?;
                    layer.target_name = Some(r.target_name);
                    layer.portals = r.server.map(|s| vec![(s, Some(r.port))]);
                    layer.lun = Some(r.lun);
                    if let Some(c) = r.chap {
                        layer.username = Some(c.user);
                        layer.password = Some(c.secret);
                    }
                    if let Some(c) = r.mutual {
                        layer.in_username = Some(c.user);
                        layer.in_password = Some(c.secret);
                    }
                }
            }
        }
        Some(rp) if need_root => {
            // Quote it unless it could carry credentials.
            let shown = if rp.contains('@') {
                String::new()
            } else {
                format!(" {rp:?}")
            };
            return Err(PlanError::DhcpRootPath(format!(
                "netroot=dhcp, but the lease's root path{shown} is not an iscsi: path"
            )));
        }
        None if need_root => {
            return Err(PlanError::DhcpRootPath(
                "netroot=dhcp, but the lease has no root path".into(),
            ))
        }
        _ => {}
    }
    if let Some(n) = &d.initiator_name {
        layer.initiator = Some(
            crate::cmdline::parse_iscsi_name("option 203", n)
                .map_err(|e| PlanError::DhcpValue(e.to_string()))?,
        );
    }
    // iPXE's option 175 sub-options beat credentials inside the root path.
    fn keep<T>(slot: &mut Option<T>, v: Option<T>) {
        if v.is_some() {
            *slot = v;
        }
    }
    keep(
        &mut layer.username,
        d.username.clone().filter(|u| !u.is_empty()),
    );
    keep(
        &mut layer.password,
        d.password.clone().filter(|p| !p.is_empty()),
    );
    keep(
        &mut layer.in_username,
        d.in_username.clone().filter(|u| !u.is_empty()),
    );
    keep(
        &mut layer.in_password,
        d.in_password.clone().filter(|p| !p.is_empty()),
    );
    Ok(layer)
}

pub(super) fn cmdline_layer(
    b: &BootArgs,
    m: &mut Merge,
) -> Result<(Layer, Option<u32>), PlanError> {
    let mut layer = iscsi_layer(&b.iscsi);
    let mut retry_max = b.iscsi.login_retry_max;
    layer.lun = b.pxeroot.lun;
    for p in &b.iscsi.params {
        match p {
            NodeParam::InitialLoginRetryMax(n) => retry_max = Some(*n),
            NodeParam::AuthMethodChap(on) => m.auth_forced_off = !on,
            NodeParam::Username(u) => layer.username = Some(u.clone()),
            NodeParam::Password(s) => layer.password = Some(s.clone()),
            NodeParam::InUsername(u) => layer.in_username = Some(u.clone()),
            NodeParam::InPassword(s) => layer.in_password = Some(s.clone()),
            NodeParam::Ignored(_) => {}
        }
    }
    // root= wins over netroot= (dracut); both over iscsi_target_*.
    let specs: Vec<_> = if b.roots.iter().any(|r| r.param == "root") {
        b.roots.iter().filter(|r| r.param == "root").collect()
    } else {
        b.roots.iter().collect()
    };
    if let Some(first) = specs.first() {
        let mut portals = Vec::new();
        for r in &specs {
            if r.target_name != first.target_name || r.lun != first.lun {
                return Err(PlanError::Conflict(format!(
                    "{}: several iSCSI roots name different targets or LUNs; pxeroot boots one \
                     target (several specs are paths to the same one)",
                    first.param
                )));
            }
            if let Some(s) = &r.server {
                let p = (s.clone(), Some(r.port));
                if !portals.contains(&p) {
                    portals.push(p);
                }
            }
        }
        layer.target_name = Some(first.target_name.clone());
        if !portals.is_empty() {
            layer.portals = Some(portals);
        }
        layer.lun = Some(first.lun);
        if let Some(c) = specs.iter().find_map(|r| r.chap.as_ref()) {
            layer.username = Some(c.user.clone());
            layer.password = Some(c.secret.clone());
        }
        if let Some(c) = specs.iter().find_map(|r| r.mutual.as_ref()) {
            layer.in_username = Some(c.user.clone());
            layer.in_password = Some(c.secret.clone());
        }
        m.iface_name = specs.iter().find_map(|r| r.iface.clone());
    }
    Ok((layer, retry_max))
}

pub(super) fn auth(
    m: &Merge,
    warnings: &mut Vec<String>,
) -> Result<(Auth, Option<Source>), PlanError> {
    let any = m.username.value.is_some()
        || m.password.value.is_some()
        || m.in_username.value.is_some()
        || m.in_password.value.is_some();
    if m.auth_forced_off {
        if any {
            warnings.push(
                "rd.iscsi.param node.session.auth.authmethod=None: CHAP credentials ignored".into(),
            );
        }
        return Ok((Auth::None, Some(Source::Cmdline)));
    }
    let src = [
        m.username.source,
        m.password.source,
        m.in_username.source,
        m.in_password.source,
    ]
    .into_iter()
    .flatten()
    .max();
    let half = |what: &str, have: &str, s: Option<Source>| {
        PlanError::IncompleteAuth(format!(
            "{what} CHAP {have} is set (from {}) but its counterpart is not",
            source_name(s)
        ))
    };
    let one_way = match (&m.username.value, &m.password.value) {
        (Some(u), Some(s)) => Some((u.clone(), s.clone())),
        (None, None) => None,
        (Some(_), None) => return Err(half("initiator", "user name", m.username.source)),
        (None, Some(_)) => return Err(half("initiator", "secret", m.password.source)),
    };
    let mutual = match (&m.in_username.value, &m.in_password.value) {
        (Some(u), Some(s)) => Some((u.clone(), s.clone())),
        (None, None) => None,
        (Some(_), None) => return Err(half("target (mutual)", "user name", m.in_username.source)),
        (None, Some(_)) => return Err(half("target (mutual)", "secret", m.in_password.source)),
    };
    for s in [one_way.as_ref(), mutual.as_ref()].into_iter().flatten() {
        if let Some(w) = s.1.warning() {
            warnings.push(w.to_string());
        }
    }
    let a = match (one_way, mutual) {
        (None, None) => Auth::None,
        (Some((user, secret)), None) => Auth::Chap { user, secret },
        (Some((user, secret)), Some((target_user, target_secret))) => {
            if secret == target_secret {
                return Err(PlanError::SameSecretBothWays);
            }
            Auth::MutualChap {
                user,
                secret,
                target_user,
                target_secret,
            }
        }
        (None, Some(_)) => {
            return Err(PlanError::IncompleteAuth(
                "mutual CHAP credentials (iscsi_in_username/password) need the initiator's \
                 (iscsi_username/password) too"
                    .into(),
            ))
        }
    };
    Ok((a, src))
}

pub(super) fn source_name(s: Option<Source>) -> &'static str {
    match s {
        Some(Source::Default) | None => "defaults",
        Some(Source::File) => "/etc/iscsi.initramfs",
        Some(Source::Ibft) => "the iBFT",
        Some(Source::Dhcp) => "DHCP",
        Some(Source::Cmdline) => "the kernel command line",
    }
}

pub(super) fn addressing_from_ibft(nic: Option<&ibft::IbftNic>) -> Addressing {
    match nic {
        Some(n) if !n.uses_dhcp() => match n.address {
            Some(address) => Addressing::Static {
                address,
                prefix_len: n
                    .prefix_len
                    .unwrap_or(if address.is_ipv4() { 24 } else { 64 }),
                gateway: n.gateway,
                dns: n.dns.clone(),
                hostname: n.hostname.clone(),
            },
            None => Addressing::Dhcp,
        },
        _ => Addressing::Dhcp,
    }
}

pub(super) fn addressing(ip: &IpConfig, nic: Option<&ibft::IbftNic>) -> Addressing {
    match &ip.method {
        Autoconf::Dhcp => Addressing::Dhcp,
        Autoconf::Dhcp6 => Addressing::Dhcp6,
        Autoconf::Auto6 => Addressing::Auto6,
        Autoconf::Off => Addressing::None,
        Autoconf::Ibft => addressing_from_ibft(nic),
        Autoconf::Static(s) => Addressing::Static {
            address: s.address,
            prefix_len: s.prefix_len,
            gateway: s.gateway,
            dns: s.dns.clone(),
            hostname: s.hostname.clone(),
        },
    }
}
