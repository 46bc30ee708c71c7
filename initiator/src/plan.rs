//! The resolved boot plan: what the agent will do, decided before it touches anything.
//!
//! [`crate::config::resolve`] builds it from every configuration source; later phases (link,
//! DHCP, login, attach) only read it. `pxeroot-initiator plan` prints it as JSON
//! ([`Plan::to_json`]) with every secret replaced by `"<redacted>"`: the types here hold
//! secrets only in [`Secret`], which serializes as that placeholder and never as its bytes.

use std::net::IpAddr;

use pxeroot_proto::chap::Secret;
use pxeroot_proto::root_path::{format_lun, Server};
use pxeroot_proto::Lun;
use serde::{Serialize, Serializer};

use crate::cmdline::Mac;

/// What secrets are printed as.
pub const REDACTED: &str = "<redacted>";

fn redact<S: Serializer>(_: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

fn display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_lun<S: Serializer>(lun: &Lun, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct LunView {
        /// RFC 4173 form.
        rfc4173: String,
        /// The single-level number, if it is one.
        number: Option<u16>,
    }
    LunView {
        rfc4173: format_lun(lun),
        number: lun.number(),
    }
    .serialize(s)
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a value came from, in rising precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Built in.
    Default,
    /// `/etc/iscsi.initramfs` or `/etc/initiatorname.iscsi`.
    File,
    /// The iBFT.
    Ibft,
    /// The DHCP lease.
    Dhcp,
    /// The kernel command line.
    Cmdline,
}

/// Which network interface to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Interface {
    /// The interface with this MAC (`BOOTIF=` or the iBFT NIC).
    Mac {
        /// The MAC.
        mac: Mac,
        /// `BOOTIF` or `iBFT`.
        from: &'static str,
    },
    /// The interface with this name (`ip=`'s device, `netroot=`'s netdev, the iBFT NIC).
    Name {
        /// The name.
        name: String,
        /// The parameter it came from.
        from: &'static str,
    },
    /// The first interface that reports carrier.
    FirstWithCarrier,
}

/// How the interface gets its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Addressing {
    /// DHCPv4.
    Dhcp,
    /// DHCPv6.
    Dhcp6,
    /// IPv6 router advertisements.
    Auto6,
    /// A fixed address.
    Static {
        /// The address.
        address: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// The default gateway.
        gateway: Option<IpAddr>,
        /// DNS servers.
        dns: Vec<IpAddr>,
        /// The host name.
        hostname: Option<String>,
    },
    /// Leave the interface's addresses alone (`ip=off`).
    None,
}

/// A target portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Portal {
    /// Its address.
    #[serde(serialize_with = "display")]
    pub address: Server,
    /// Its TCP port.
    pub port: u16,
}

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Auth {
    /// No authentication.
    None,
    /// One-way CHAP: the target checks the initiator.
    Chap {
        /// CHAP_N the initiator sends.
        user: String,
        /// The initiator's secret.
        #[serde(serialize_with = "redact")]
        secret: Secret,
    },
    /// Mutual CHAP: the initiator also checks the target.
    MutualChap {
        /// CHAP_N the initiator sends.
        user: String,
        /// The initiator's secret.
        #[serde(serialize_with = "redact")]
        secret: Secret,
        /// CHAP_N the target must send.
        target_user: String,
        /// The target's secret.
        #[serde(serialize_with = "redact")]
        target_secret: Secret,
    },
}

/// Time and attempt limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// Total budget for reaching and logging in to the target (`pxeroot.timeout`).
    pub budget_secs: u32,
    /// Login attempts per portal (`rd.iscsi.login_retry_max`), unbounded within the budget if
    /// absent.
    pub max_attempts_per_portal: Option<u32>,
    /// How long to wait for a DHCP lease.
    pub dhcp_timeout_secs: u32,
    /// How long to wait for carrier.
    pub link_timeout_secs: u32,
}

/// Where the main values came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sources {
    /// Of the target name.
    pub target_name: Option<Source>,
    /// Of the portals.
    pub portals: Option<Source>,
    /// Of the LUN.
    pub lun: Source,
    /// Of the initiator name.
    pub initiator_name: Option<Source>,
    /// Of the CHAP credentials.
    pub auth: Option<Source>,
}

/// The resolved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The network interface.
    pub interface: Interface,
    /// Its addressing.
    pub addressing: Addressing,
    /// MTU to set, if any.
    pub mtu: Option<u16>,
    /// Portals, tried in turn.
    pub portals: Vec<Portal>,
    /// The target name.
    pub target_name: Option<String>,
    /// The boot LUN.
    #[serde(serialize_with = "ser_lun")]
    pub lun: Lun,
    /// The target portal group tag, if given.
    pub target_group: Option<u16>,
    /// The initiator name.
    pub initiator_name: Option<String>,
    /// dracut's open-iscsi iface name, recorded for the booted system.
    pub iface_name: Option<String>,
    /// Authentication.
    pub auth: Auth,
    /// Limits.
    pub retry: Retry,
    /// Values still to come once the interface is up (from DHCP or its MAC).
    pub pending: Vec<&'static str>,
    /// Where values came from.
    pub sources: Sources,
    /// `rd.iscsi.param` keys accepted but not applied.
    pub ignored_params: Vec<String>,
    /// Things the admin should know (never secrets).
    pub warnings: Vec<String>,
    /// `pxeroot.debug`.
    pub debug: bool,
}

impl Plan {
    /// Pretty JSON with secrets redacted.
    ///
    /// # Errors
    /// Only if serialization fails, which these types do not do.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}
