//! Merging the boot configuration sources into one [`Plan`], in rising precedence:
//!
//! 1. defaults (port 3260, LUN 0, DHCP on the first interface with carrier, 120 s budget);
//! 2. the initramfs files `/etc/iscsi.initramfs` (Debian's variables) and
//!    `/etc/initiatorname.iscsi` ([`files`]), where `ISCSI_INITIATOR` beats `InitiatorName`;
//! 3. the iBFT ([`ibft`]), only when asked for with `iscsi_auto`, `rd.iscsi.firmware`,
//!    `ISCSI_AUTO=true` or `ip=ibft`;
//! 4. DHCP ([`DhcpInfo`]): option 17 root path (RFC 4173, else dracut's grammar with
//!    credentials, as dracut reads it; LUN always hexadecimal), option 203 initiator name, iPXE's
//!    option 175 sub-options 190-193 for CHAP names and secrets (these beat the root path's);
//! 5. the kernel command line ([`crate::cmdline`]); there `root=iscsi:` beats `netroot=iscsi:`
//!    (as in dracut), and both beat `iscsi_target_*` / `rd.iscsi.target.*`.
//!
//! Each value is taken from the highest source that sets it, independently (as Debian's
//! script does by sourcing the file and then overriding variables). A layer that lists portals
//! replaces the lower layers' list; a layer that sets only a port re-ports the portals below.
//!
//! The interface is chosen by `BOOTIF`'s MAC, else `ip=`'s device, else the iBFT NIC (when the
//! iBFT is used), else `netroot=`'s netdev field, else the first interface with carrier. Its
//! addressing is the `ip=` for that device (else the first `ip=`), else the iBFT NIC's, else
//! DHCP. With no initiator name anywhere, one is made up from the MAC
//! ([`default_initiator_name`]).
//!
//! [`resolve`] is pure: the caller reads files, sysfs and the lease and passes their contents.
//! When DHCP has not run yet (`dhcp: None`) and addressing is DHCP, missing target values are
//! reported as [`Plan::pending`] instead of as errors, so that `pxeroot-initiator plan` works
//! before the network is up.

pub mod files;
pub mod ibft;
mod layers;
#[cfg(test)]
mod tests;

use pxeroot_proto::chap::Secret;
use pxeroot_proto::root_path::DEFAULT_PORT;
use pxeroot_proto::Lun;

use crate::cmdline::{Autoconf, BootArgs, Mac, NodeParam};
use crate::plan::{Addressing, Interface, Plan, Portal, Retry, Source, Sources};
pub use files::FileError;
pub use ibft::Ibft;
use layers::{
    addressing, addressing_from_ibft, auth, cmdline_layer, dhcp_layer, ibft_layer, iscsi_layer,
    Merge,
};

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

    /// The agent's exit code: "nothing to do" when no iSCSI root is configured, else "bad
    /// configuration".
    pub fn exit_code(&self) -> u8 {
        if self.is_not_configured() {
            crate::exit::NOT_CONFIGURED
        } else {
            crate::exit::BAD_CONFIG
        }
    }
}

/// The initiator name pxeroot makes up from a MAC when none is configured.
pub fn default_initiator_name(mac: &Mac) -> String {
    let hex: String = mac.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("{DEFAULT_INITIATOR_PREFIX}:{hex}")
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
        Interface::Name { name, .. } => {
            b.ip.iter()
                .find(|i| i.device.as_deref() == Some(name.as_str()))
                .or_else(|| b.ip.first())
        }
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
