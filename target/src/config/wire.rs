//! The TOML file as written, with byte spans kept so that every validation error can name its
//! line (the dora split: serde types here, validated types in `mod.rs`).

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub iscsi: Option<Spanned<Iscsi>>,
    #[serde(default)]
    pub target: Vec<Spanned<Target>>,
    #[serde(default)]
    pub server: Option<Spanned<Server>>,
    #[serde(default)]
    pub dhcp: Option<Spanned<Dhcp>>,
    #[serde(default)]
    pub tftp: Option<Spanned<Tftp>>,
    #[serde(default)]
    pub client: Vec<Spanned<Client>>,
}

/// `[server]`: this machine on the boot network.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub address: Spanned<String>,
    #[serde(default)]
    pub interface: Option<Spanned<String>>,
    /// Targets made for `[[client]]` entries are named `<target_prefix>:<client name>`.
    #[serde(default)]
    pub target_prefix: Option<Spanned<String>>,
}

/// `[dhcp]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dhcp {
    pub subnet: Spanned<String>,
    #[serde(default)]
    pub router: Option<Spanned<String>>,
    #[serde(default)]
    pub dns: Vec<Spanned<String>>,
    #[serde(default)]
    pub domain: Option<Spanned<String>>,
    /// Seconds.
    #[serde(default)]
    pub lease_time: Option<Spanned<u64>>,
    #[serde(default)]
    pub pool: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub lease_file: Option<Spanned<String>>,
    /// "full" (default) or "proxy".
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    /// Boot file for BIOS PXE clients (default "pxelinux.0").
    #[serde(default)]
    pub bios_loader: Option<Spanned<String>>,
    /// Boot file for x64 UEFI clients (option 93 = 7 or 9).
    #[serde(default)]
    pub efi_loader: Option<Spanned<String>>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Answer router solicitations from clients with an empty IPv6 router advertisement.
    #[serde(default)]
    pub ipv6_ra: Option<bool>,
}

/// `[tftp]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tftp {
    pub root: Spanned<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub max_transfers: Option<Spanned<usize>>,
    #[serde(default)]
    pub max_blksize: Option<Spanned<u16>>,
    #[serde(default)]
    pub max_window: Option<Spanned<u16>>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub retries: Option<u32>,
}

/// `[[client]]`: one diskless machine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub name: Spanned<String>,
    pub mac: Spanned<String>,
    #[serde(default)]
    pub ip: Option<Spanned<String>>,
    #[serde(default)]
    pub hostname: Option<Spanned<String>>,
    pub initiator: Spanned<String>,
    pub disk: Spanned<String>,
    /// The target's name; `<server.target_prefix>:<name>` when absent.
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    #[serde(default)]
    pub chap: Option<Spanned<Chap>>,
    #[serde(default)]
    pub mutual_chap: Option<Spanned<Chap>>,
    pub kernel: Spanned<String>,
    #[serde(default)]
    pub initrd: Option<Spanned<String>>,
    #[serde(default)]
    pub append: Option<String>,
    /// "auto" (default: iPXE clients get the script, others pxelinux), "pxelinux" or "ipxe".
    #[serde(default)]
    pub loader: Option<Spanned<String>>,
    /// Put the CHAP secrets on the kernel command line (for initramfs without pxeroot, whose
    /// iscsistart reads iscsi_password); by default they travel in DHCP option 175 only.
    #[serde(default)]
    pub chap_in_cmdline: bool,
}

/// `[iscsi]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iscsi {
    #[serde(default)]
    pub listen: Option<Vec<Spanned<String>>>,
    /// Seconds of idle time after which the target pings the initiator (NOP-In); 0 turns it off.
    #[serde(default)]
    pub nop_interval: Option<u64>,
}

/// `[[target]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: Spanned<String>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub lun: Vec<Spanned<Lun>>,
    #[serde(default)]
    pub acl: Vec<Spanned<Acl>>,
}

/// `[[target.lun]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lun {
    pub id: Spanned<u64>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub read_only: bool,
    /// Write-back (true, the default: SYNCHRONIZE CACHE and FUA flush) or write-through.
    #[serde(default)]
    pub write_cache: Option<bool>,
    #[serde(default)]
    pub serial: Option<Spanned<String>>,
    /// Report a removable medium (START STOP UNIT can eject it).
    #[serde(default)]
    pub removable: bool,
}

/// `[[target.acl]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    pub initiator: Spanned<String>,
    /// Optional source address or CIDR the initiator must connect from.
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    #[serde(default)]
    pub chap: Option<Spanned<Chap>>,
    #[serde(default)]
    pub mutual_chap: Option<Spanned<Chap>>,
}

/// `{ user = "...", secret = "..." }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chap {
    pub user: String,
    pub secret: String,
}

impl fmt::Debug for Chap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chap")
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .finish()
    }
}
