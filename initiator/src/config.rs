//! Merging the boot configuration sources into one [`Plan`], in rising precedence:
//!
//! 1. defaults (port 3260, LUN 0, DHCP on the first interface with carrier, 120 s budget);
//! 2. the initramfs files `/etc/iscsi.initramfs` (Debian's variables) and
//!    `/etc/initiatorname.iscsi` ([`files`]), where `ISCSI_INITIATOR` beats `InitiatorName`;
//! 3. the iBFT ([`ibft`]), only when asked for with `iscsi_auto`, `rd.iscsi.firmware`,
//!    `ISCSI_AUTO=true` or `ip=ibft`;
//! 4. DHCP ([`DhcpInfo`]): option 17 root path (RFC 4173), option 203 initiator name, iPXE's
//!    option 175 sub-options 190-193 for CHAP names and secrets;
//! 5. the kernel command line ([`crate::cmdline`]); there `root=iscsi:` beats `netroot=iscsi:`
//!    (as in dracut), and both beat `iscsi_target_*` / `rd.iscsi.target.*`.
//!
//! Each value is taken from the highest source that sets it, independently (as Debian's
//! script does by sourcing the file and then overriding variables). A layer that lists portals
//! replaces the lower layers' list; a layer that sets only a port re-ports the portals below.
//!
//! [`resolve`] is pure: the caller reads files, sysfs and the lease and passes their contents.
//! When DHCP has not run yet (`dhcp: None`) and addressing is DHCP, missing target values are
//! reported as [`Plan::pending`] instead of as errors, so that `pxeroot-initiator plan` works
//! before the network is up.

pub mod files;
pub mod ibft;
#[cfg(test)]
mod tests;

use pxeroot_proto::chap::Secret;
use pxeroot_proto::root_path::{RootPath, Server, DEFAULT_PORT};
use pxeroot_proto::Lun;

use crate::cmdline::{Autoconf, BootArgs, IpConfig, Mac, NodeParam};
use crate::plan::{Addressing, Auth, Interface, Plan, Portal, Retry, Source, Sources};
pub use files::FileError;
pub use ibft::Ibft;

/// Prefix of the initiator name pxeroot makes up when none is configured.
pub const DEFAULT_INITIATOR_PREFIX: &str = "iqn.2026-11.org.pxeroot";

/// What DHCP provided (the DHCP client fills it in; `plan` has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpInfo {
    /// Option 17, root path.
    pub root_path: Option<String>,
    /// Option 203, iSCSI initiator name (iPXE's `initiator-iqn`).
    pub initiator_name: Option<String>,
    /// Option 175.190, CHAP user name.
    pub username: Option<String>,
    /// Option 175.191, CHAP secret.
    pub password: Option<Secret>,
    /// Option 175.192, reverse (mutual) CHAP user name.
    pub in_username: Option<String>,
    /// Option 175.193, reverse (mutual) CHAP secret.
    pub in_password: Option<Secret>,
}

/// Everything [`resolve`] merges.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The parsed kernel command line.
    pub cmdline: &'a BootArgs,
    /// The text of `/etc/iscsi.initramfs`, if present.
    pub iscsi_initramfs: Option<&'a str>,
    /// The text of `/etc/initiatorname.iscsi`, if present.
    pub initiatorname: Option<&'a str>,
    /// The iBFT, if the machine has one.
    pub ibft: Option<&'a Ibft>,
    /// The DHCP lease's values, once there is a lease.
    pub dhcp: Option<&'a DhcpInfo>,
}

/// Why no plan could be made. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// No source configures an iSCSI root at all.
    #[error(
        "no iSCSI root configured: give root=iscsi:..., netroot=iscsi:..., netroot=dhcp, \
         iscsi_target_name plus iscsi_target_ip, or iscsi_auto"
    )]
    NotConfigured,
    /// A configuration file is malformed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The iBFT was asked for but is not there.
    #[error("{0} asks for the iBFT, but the firmware left none (/sys/firmware/ibft)")]
    NoIbft(&'static str),
    /// The iBFT has no usable boot target.
    #[error("the iBFT describes no valid boot target")]
    NoIbftTarget,
    /// The DHCP root path is malformed.
    #[error("DHCP option 17 root path: {0}")]
    DhcpRootPath(String),
    /// A DHCP-provided value is malformed.
    #[error("DHCP {0}")]
    DhcpValue(String),
    /// No target name anywhere.
    #[error("no target name: give iscsi_target_name=, root=iscsi:... or a DHCP root path")]
    NoTarget,
    /// No portal anywhere.
    #[error("no target address: {0}")]
    NoPortal(&'static str),
    /// Half a credential pair.
    #[error("{0}")]
    IncompleteAuth(String),
    /// Mutual CHAP with the same secret both ways, which RFC 7143 forbids and targets reject.
    #[error(
        "mutual CHAP uses the same secret in both directions; RFC 7143 forbids it and \
         targets reject the login"
    )]
    SameSecretBothWays,
    /// Sources or parameters contradict each other.
    #[error("{0}")]
    Conflict(String),
}

impl PlanError {
    /// Whether this means "nothing to do" rather than "misconfigured".
    pub fn is_not_configured(&self) -> bool {
        matches!(self, PlanError::NotConfigured)
    }
}

/// The initiator name pxeroot makes up from a MAC when none is configured.
pub fn default_initiator_name(mac: &Mac) -> String {
    let hex: String = mac.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("{DEFAULT_INITIATOR_PREFIX}:{hex}")
}

/// A value and the source that set it.
#[derive(Debug, Clone)]
struct Sourced<T> {
    value: Option<T>,
    source: Option<Source>,
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
    fn set(&mut self, v: Option<T>, source: Source) {
        if v.is_some() {
            self.value = v;
            self.source = Some(source);
        }
    }
}

/// The values being merged, layer by layer.
#[derive(Debug, Default)]
struct Merge {
    initiator: Sourced<String>,
    target_name: Sourced<String>,
    /// Portals with their explicit port, if any.
    portals: Sourced<Vec<(Server, Option<u16>)>>,
    port: Sourced<u16>,
    lun: Sourced<Lun>,
    target_group: Option<u16>,
    username: Sourced<String>,
    password: Sourced<Secret>,
    in_username: Sourced<String>,
    in_password: Sourced<Secret>,
    auth_forced_off: bool,
    iface_name: Option<String>,
}

/// One layer's values, shaped like the merge.
#[derive(Debug, Default)]
struct Layer {
    initiator: Option<String>,
    target_name: Option<String>,
    portals: Option<Vec<(Server, Option<u16>)>>,
    port: Option<u16>,
    lun: Option<Lun>,
    target_group: Option<u16>,
    username: Option<String>,
    password: Option<Secret>,
    in_username: Option<String>,
    in_password: Option<Secret>,
}

impl Merge {
    fn apply(&mut self, l: Layer, src: Source) {
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

fn iscsi_layer(a: &crate::cmdline::IscsiArgs) -> Layer {
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

fn server_of(ip: std::net::IpAddr) -> Server {
    match ip {
        std::net::IpAddr::V4(a) => Server::Ipv4(a),
        std::net::IpAddr::V6(a) => Server::Ipv6(a),
    }
}

fn ibft_layer(ibft: &Ibft, warnings: &mut Vec<String>) -> Result<Layer, PlanError> {
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

fn dhcp_layer(d: &DhcpInfo, need_root: bool) -> Result<Layer, PlanError> {
    let mut layer = Layer::default();
    match d.root_path.as_deref() {
        Some(rp) if rp.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("iscsi:")) => {
            let r = RootPath::parse(rp).map_err(|e| PlanError::DhcpRootPath(e.to_string()))?;
            layer.target_name = Some(r.target_name);
            layer.portals = r.server.map(|s| vec![(s, Some(r.port))]);
            layer.lun = Some(r.lun);
        }
        _ if need_root => {
            return Err(PlanError::DhcpRootPath(
                "netroot=dhcp, but the lease has no iscsi: root path".into(),
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
    layer.username = d.username.clone().filter(|u| !u.is_empty());
    layer.password = d.password.clone().filter(|p| !p.is_empty());
    layer.in_username = d.in_username.clone().filter(|u| !u.is_empty());
    layer.in_password = d.in_password.clone().filter(|p| !p.is_empty());
    Ok(layer)
}

fn cmdline_layer(b: &BootArgs, m: &mut Merge) -> Result<(Layer, Option<u32>), PlanError> {
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

fn auth(m: &Merge, warnings: &mut Vec<String>) -> Result<(Auth, Option<Source>), PlanError> {
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

fn source_name(s: Option<Source>) -> &'static str {
    match s {
        Some(Source::Default) | None => "defaults",
        Some(Source::File) => "/etc/iscsi.initramfs",
        Some(Source::Ibft) => "the iBFT",
        Some(Source::Dhcp) => "DHCP",
        Some(Source::Cmdline) => "the kernel command line",
    }
}

fn addressing_from_ibft(nic: Option<&ibft::IbftNic>) -> Addressing {
    match nic {
        Some(n) if !n.uses_dhcp() => match n.address {
            Some(address) => Addressing::Static {
                address,
                prefix_len: n.prefix_len.unwrap_or(if address.is_ipv4() { 24 } else { 64 }),
                gateway: n.gateway,
                dns: n.dns.clone(),
                hostname: n.hostname.clone(),
            },
            None => Addressing::Dhcp,
        },
        _ => Addressing::Dhcp,
    }
}

fn addressing(ip: &IpConfig, nic: Option<&ibft::IbftNic>) -> Addressing {
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

/// Merges every source into a [`Plan`].
///
/// # Errors
/// [`PlanError`] naming what is missing or contradictory; [`PlanError::NotConfigured`] when
/// nothing asks for an iSCSI root.
pub fn resolve(inputs: &Inputs<'_>) -> Result<Plan, PlanError> {
    let b = inputs.cmdline;
    let mut warnings = Vec::new();
    let mut m = Merge::default();

    // 2. files
    let mut file_args = crate::cmdline::IscsiArgs::default();
    if let Some(text) = inputs.iscsi_initramfs {
        let (args, w) = files::parse_iscsi_initramfs(text)?;
        file_args = args;
        warnings.extend(w);
    }
    if let Some(text) = inputs.initiatorname {
        m.initiator
            .set(files::parse_initiatorname(text)?, Source::File);
    }
    m.apply(iscsi_layer(&file_args), Source::File);

    // 3. iBFT, when asked for
    let ibft_by_ip = b.ip.iter().any(|i| i.method == Autoconf::Ibft);
    let ibft_asked = match b.iscsi.use_ibft {
        Some(v) => v.then_some("iscsi_auto / rd.iscsi.firmware"),
        None => file_args.use_ibft.unwrap_or(false).then_some("ISCSI_AUTO"),
    };
    let mut ibft_nic = None;
    if let Some(why) = ibft_asked.or(ibft_by_ip.then_some("ip=ibft")) {
        let table = inputs.ibft.ok_or(PlanError::NoIbft(why))?;
        if ibft_asked.is_some() {
            m.apply(ibft_layer(table, &mut warnings)?, Source::Ibft);
        }
        let boot = table.boot_targets();
        ibft_nic = table.nic_for(boot.first().copied());
    }

    // 4. DHCP
    if let Some(d) = inputs.dhcp {
        m.apply(dhcp_layer(d, b.root_from_dhcp)?, Source::Dhcp);
    }

    // 5. command line
    let (layer, retry_max) = cmdline_layer(b, &mut m)?;
    m.apply(layer, Source::Cmdline);
    warnings.extend(b.warnings.iter().cloned());

    // Interface: BOOTIF, else ip='s device, else the iBFT NIC, else netroot's netdev, else
    // the first with carrier.
    let netdev = b.roots.iter().find_map(|r| r.netdev.clone());
    let ip_dev = b.ip.iter().find_map(|i| i.device.clone());
    let interface = if let Some(mac) = b.bootif {
        Interface::Mac {
            mac,
            from: "BOOTIF",
        }
    } else if let Some(name) = ip_dev.clone() {
        Interface::Name { name, from: "ip" }
    } else if let Some(n) = ibft_nic.filter(|n| n.mac.is_some() || n.ifname.is_some()) {
        match (&n.ifname, n.mac) {
            (Some(name), _) => Interface::Name {
                name: name.clone(),
                from: "iBFT",
            },
            (None, Some(mac)) => Interface::Mac { mac, from: "iBFT" },
            (None, None) => Interface::FirstWithCarrier,
        }
    } else if let Some(name) = netdev {
        Interface::Name {
            name,
            from: "netroot netdev",
        }
    } else {
        Interface::FirstWithCarrier
    };

    // Addressing: the ip= for the chosen device, else the first; else the iBFT NIC; else DHCP.
    let chosen_ip = match &interface {
        Interface::Name { name, .. } => b
            .ip
            .iter()
            .find(|i| i.device.as_deref() == Some(name.as_str()))
            .or_else(|| b.ip.first()),
        _ => b.ip.first(),
    };
    if b.ip.len() > 1 {
        warnings.push(format!(
            "{} ip= parameters given; pxeroot configures one interface and uses the first \
             matching one",
            b.ip.len()
        ));
    }
    let (addressing, mtu) = match chosen_ip {
        Some(ip) => (addressing(ip, ibft_nic), ip.mtu),
        None if ibft_asked.is_some() => (addressing_from_ibft(ibft_nic), None),
        None => (Addressing::Dhcp, None),
    };
    let dhcp_to_come = addressing == Addressing::Dhcp && inputs.dhcp.is_none();

    if b.root_from_dhcp && addressing != Addressing::Dhcp {
        return Err(PlanError::Conflict(
            "netroot=dhcp takes the root path from DHCP, but ip= configures the interface \
             without DHCPv4"
                .into(),
        ));
    }

    let configured = m.target_name.value.is_some()
        || m.portals.value.is_some()
        || b.root_from_dhcp
        || ibft_asked.is_some()
        || inputs.dhcp.is_some_and(|d| d.root_path.is_some());
    if !configured {
        return Err(PlanError::NotConfigured);
    }

    let mut pending = Vec::new();
    let root_path_pending = dhcp_to_come && (b.root_from_dhcp || m.target_name.value.is_none());
    if m.target_name.value.is_none() {
        if root_path_pending {
            pending.push("target name (DHCP option 17 root path)");
        } else {
            return Err(PlanError::NoTarget);
        }
    }
    let default_port = m.port.value.unwrap_or(DEFAULT_PORT);
    let portals: Vec<Portal> = m
        .portals
        .value
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(address, port)| Portal {
            address,
            port: port.unwrap_or(default_port),
        })
        .collect();
    if portals.is_empty() {
        if dhcp_to_come {
            pending.push("target address (DHCP option 17 root path)");
        } else if b.roots.iter().any(|r| r.server.is_none()) {
            return Err(PlanError::NoPortal(
                "root=/netroot= leave the server empty, and discovery by name (SLP, iSNS) is \
                 not supported; give the address",
            ));
        } else {
            return Err(PlanError::NoPortal(
                "give iscsi_target_ip=, root=iscsi:<address>:... or a DHCP root path",
            ));
        }
    }

    let mut initiator = m.initiator.value.clone();
    let mut initiator_source = m.initiator.source;
    if initiator.is_none() {
        if let Some(mac) = b.bootif {
            initiator = Some(default_initiator_name(&mac));
            initiator_source = Some(Source::Default);
        } else if dhcp_to_come {
            pending.push("initiator name (DHCP option 203, else made up from the MAC)");
        } else {
            pending.push("initiator name (made up from the interface's MAC)");
        }
    }

    let (auth, auth_source) = auth(&m, &mut warnings)?;
    let ignored_params = b
        .iscsi
        .params
        .iter()
        .chain(file_args.params.iter())
        .filter_map(|p| match p {
            NodeParam::Ignored(k) => Some(k.clone()),
            _ => None,
        })
        .collect();

    Ok(Plan {
        interface,
        addressing,
        mtu,
        portals,
        target_name: m.target_name.value.clone(),
        lun: m.lun.value.unwrap_or(Lun::ZERO),
        target_group: m.target_group,
        initiator_name: initiator,
        iface_name: m.iface_name.clone(),
        auth,
        retry: Retry {
            budget_secs: b.pxeroot.timeout_secs,
            max_attempts_per_portal: retry_max,
            dhcp_timeout_secs: b.pxeroot.dhcp_timeout_secs,
            link_timeout_secs: b.pxeroot.link_timeout_secs,
        },
        pending,
        sources: Sources {
            target_name: m.target_name.source,
            portals: m.portals.source,
            lun: m.lun.source.unwrap_or(Source::Default),
            initiator_name: initiator_source,
            auth: auth_source,
        },
        ignored_params,
        warnings,
        debug: b.pxeroot.debug,
    })
}
