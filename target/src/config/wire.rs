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
