//! `pxeroot-initiator probe`: log in from userspace alone, look at one LUN, log out.
//!
//! The probe uses the same login as the boot agent ([`crate::session`]) and never touches the
//! kernel: after login it sends a few read-only SCSI commands over the session itself
//! (REPORT LUNS, INQUIRY with VPD pages 0x80 and 0x83, READ CAPACITY(16) or (10), TEST UNIT
//! READY), then logs out and prints what it found. The exit codes are the boot agent's: 0 the
//! LUN is there, 12 TCP connect, 13 login or session failure, 14 authentication, 15 LUN
//! absent; 2 for an unreadable secret file and 64 for bad arguments.
//!
//! Secrets never come from the command line (every user can read it in `ps`): they come from
//! a file (`--secret-file`, `--mutual-secret-file`) or from the environment
//! (`PXEROOT_CHAP_SECRET`, `PXEROOT_CHAP_MUTUAL_SECRET`).
//!
//! The SCSI side is deliberately small: one command at a time, reads only, no immediate or
//! unsolicited data, status either in the last Data-In (S bit) or in a SCSI Response, and
//! sense data decoded for CHECK CONDITION. The CDBs are built here; the PDUs come from proto.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pxeroot_proto::bhs::Isid;
use pxeroot_proto::chap::{ChapAlgorithm, Secret};
use pxeroot_proto::digest::DigestKind;
use pxeroot_proto::frame::FrameLimits;
use pxeroot_proto::login::LoginError;
use pxeroot_proto::pdu::{NopOut, Pdu, ScsiCommand, TaskAttr};
use pxeroot_proto::root_path::DEFAULT_PORT;
use pxeroot_proto::{Lun, Random};
use serde::Serialize;

use crate::cmdline::Mac;
use crate::config::{default_initiator_name, files};
use crate::plan::Auth;
use crate::session::{self, AttemptError, LoggedIn, LoginSpec, OsRandom, Wire};
use crate::{exit, Outcome};

/// Environment variable holding the initiator's CHAP secret.
pub const ENV_SECRET: &str = "PXEROOT_CHAP_SECRET";
/// Environment variable holding the target's secret for mutual CHAP.
pub const ENV_MUTUAL_SECRET: &str = "PXEROOT_CHAP_MUTUAL_SECRET";
/// open-iscsi's initiator name file on an installed system.
const OPEN_ISCSI_INITIATORNAME: &str = "/etc/iscsi/initiatorname.iscsi";

/// Log in from userspace, look at one LUN (REPORT LUNS, INQUIRY, READ CAPACITY, TEST UNIT
/// READY), log out and print what was found; never touches the kernel. Secrets come from
/// files or $PXEROOT_CHAP_SECRET / $PXEROOT_CHAP_MUTUAL_SECRET, never from arguments.
#[derive(Debug, argh::FromArgs)]
#[argh(subcommand, name = "probe")]
pub struct ProbeArgs {
    /// target portal: IP, IP:PORT or [IPv6]:PORT (port 3260 if absent)
    #[argh(option)]
    pub portal: String,
    /// target name (IQN)
    #[argh(option)]
    pub target: String,
    /// LUN to look at (0-16383, default 0)
    #[argh(option, default = "0")]
    pub lun: u16,
    /// initiator name; default /etc/iscsi/initiatorname.iscsi, else one made from a MAC
    #[argh(option)]
    pub initiator: Option<String>,
    /// CHAP user name; the secret comes from --secret-file or $PXEROOT_CHAP_SECRET
    #[argh(option)]
    pub chap: Option<String>,
    /// file holding the CHAP secret (one trailing newline is ignored)
    #[argh(option)]
    pub secret_file: Option<PathBuf>,
    /// mutual CHAP: the user name the target must answer with (needs --chap)
    #[argh(option)]
    pub mutual_user: Option<String>,
    /// mutual CHAP: file holding the target's secret (else $PXEROOT_CHAP_MUTUAL_SECRET)
    #[argh(option)]
    pub mutual_secret_file: Option<PathBuf>,
    /// seconds allowed for the connect and login, and for each command (1-3600, default 10)
    #[argh(option, default = "10")]
    pub timeout: u64,
    /// print JSON instead of text
    #[argh(switch)]
    pub json: bool,
}

impl ProbeArgs {
    /// Checks the ranges and dependencies between options that argh does not express.
    ///
    /// # Errors
    /// The usage message.
    pub fn validate(&self) -> Result<(), String> {
        if self.lun >= 16384 {
            return Err(format!("--lun {}: must be below 16384", self.lun));
        }
        if !(1..=3600).contains(&self.timeout) {
            return Err(format!(
                "--timeout {}: must be 1 to 3600 seconds",
                self.timeout
            ));
        }
        if self.mutual_user.is_some() && self.chap.is_none() {
            return Err("--mutual-user needs --chap".to_owned());
        }
        if self.mutual_secret_file.is_some() && self.mutual_user.is_none() {
            return Err("--mutual-secret-file needs --mutual-user".to_owned());
        }
        Ok(())
    }
}

/// What the probe found, as printed.
#[derive(Debug, Serialize)]
struct Report {
    portal: String,
    target: String,
    initiator: String,
    login_ms: u64,
    chap: Option<&'static str>,
    tsih: u16,
    negotiated: Negotiated,
    /// LUNs from REPORT LUNS (`None` if the target refused it).
    luns: Option<Vec<u64>>,
    lun: u16,
    present: bool,
    device: Option<Device>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Negotiated {
    header_digest: &'static str,
    data_digest: &'static str,
    max_recv_data_segment_length: u32,
    max_send_data_segment_length: u32,
    max_burst_length: u32,
    first_burst_length: u32,
    immediate_data: bool,
    initial_r2t: bool,
    max_outstanding_r2t: u32,
    error_recovery_level: u32,
    target_alias: Option<String>,
    target_portal_group_tag: Option<u16>,
}

#[derive(Debug, Default, Serialize)]
struct Device {
    peripheral_type: u8,
    type_name: &'static str,
    vendor: String,
    product: String,
    revision: String,
    serial: Option<String>,
    identifiers: Vec<String>,
    size_bytes: Option<u64>,
    blocks: Option<u64>,
    block_size: Option<u32>,
    ready: bool,
    not_ready: Option<String>,
}

/// Why the probe stopped.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Session(#[from] AttemptError),
    #[error("{portal}: {command} failed: {detail}")]
    Scsi {
        portal: SocketAddr,
        command: &'static str,
        detail: String,
    },
}

impl ProbeError {
    fn exit_code(&self) -> u8 {
        match self {
            ProbeError::Usage(_) => exit::USAGE,
            ProbeError::Config(_) => exit::BAD_CONFIG,
            ProbeError::Session(e) => e.exit_code(),
            ProbeError::Scsi { .. } => exit::LOGIN,
        }
    }
}

/// Parses `IP`, `IP:PORT`, `[IPv6]` or `[IPv6]:PORT`.
fn parse_portal(s: &str) -> Result<SocketAddr, ProbeError> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| {
            ProbeError::Usage(format!(
                "--portal {s:?}: expected IP, IP:PORT or [IPv6]:PORT"
            ))
        })
}

/// A secret from a file (one trailing newline dropped) or, failing that, from `env`.
fn read_secret(
    file: Option<&Path>,
    env_name: &str,
    env: &dyn Fn(&str) -> Option<Vec<u8>>,
    flag: &str,
) -> Result<Secret, ProbeError> {
    let mut bytes = match file {
        Some(path) => std::fs::read(path)
            .map_err(|e| ProbeError::Config(format!("{}: {e}", path.display())))?,
        None => env(env_name)
            .ok_or_else(|| ProbeError::Usage(format!("CHAP needs {flag} PATH or ${env_name}")))?,
    };
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        let from = file.map_or_else(|| format!("${env_name}"), |p| p.display().to_string());
        return Err(ProbeError::Config(format!(
            "{from}: the CHAP secret is empty"
        )));
    }
    Ok(Secret::new(bytes))
}

fn auth_from_args(
    args: &ProbeArgs,
    env: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Auth, ProbeError> {
    if args.secret_file.is_some() && args.chap.is_none() {
        return Err(ProbeError::Usage("--secret-file needs --chap USER".into()));
    }
    let Some(user) = &args.chap else {
        return Ok(Auth::None);
    };
    let secret = read_secret(
        args.secret_file.as_deref(),
        ENV_SECRET,
        env,
        "--secret-file",
    )?;
    let Some(target_user) = &args.mutual_user else {
        return Ok(Auth::Chap {
            user: user.clone(),
            secret,
        });
    };
    let target_secret = read_secret(
        args.mutual_secret_file.as_deref(),
        ENV_MUTUAL_SECRET,
        env,
        "--mutual-secret-file",
    )?;
    Ok(Auth::MutualChap {
        user: user.clone(),
        secret,
        target_user: target_user.clone(),
        target_secret,
    })
}

/// The initiator name: `/etc/iscsi/initiatorname.iscsi`, `/etc/initiatorname.iscsi`, else
/// one made from the first non-loopback interface's MAC (as the boot agent does), else from
/// random bytes.
fn default_initiator() -> Result<String, ProbeError> {
    for path in [OPEN_ISCSI_INITIATORNAME, files::INITIATORNAME] {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ProbeError::Config(format!("{path}: {e}"))),
        };
        match files::parse_initiatorname(&text) {
            Ok(Some(name)) => return Ok(name),
            Ok(None) => {}
            Err(e) => {
                return Err(ProbeError::Config(format!(
                    "{path} line {}: {}",
                    e.line, e.problem
                )))
            }
        }
    }
    let mut ifaces =
        crate::net::iface::scan(Path::new(crate::net::SYS_CLASS_NET)).unwrap_or_default();
    ifaces.sort_by(|a, b| a.name.cmp(&b.name));
    let mac = ifaces
        .iter()
        .filter(|i| !i.loopback)
        .find_map(|i| i.mac.filter(|m| m.0 != [0; 6]));
    let mac = mac.unwrap_or_else(|| {
        let mut b = [0u8; 6];
        OsRandom::default().fill_bytes(&mut b);
        Mac(b)
    });
    Ok(default_initiator_name(&mac))
}

/// Runs `probe`. `env` reads an environment variable (injected for tests).
pub(crate) fn run(args: &ProbeArgs, env: &dyn Fn(&str) -> Option<Vec<u8>>) -> Outcome {
    match probe(args, env) {
        Ok((report, stderr)) => {
            let code = if report.present {
                exit::OK
            } else {
                exit::LUN_MISSING
            };
            let stdout = if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(j) => j,
                    Err(e) => return Outcome::fail(exit::INTERNAL, e),
                }
            } else {
                text(&report)
            };
            let mut stderr = stderr;
            if !report.present {
                let luns = match &report.luns {
                    Some(l) if !l.is_empty() => {
                        let l: Vec<String> = l.iter().map(u64::to_string).collect();
                        format!("the target reports LUN {}", l.join(", "))
                    }
                    Some(_) => "the target reports no LUNs".to_owned(),
                    None => "the target does not report its LUNs".to_owned(),
                };
                stderr.push(format!(
                    "pxeroot-initiator: {}: LUN {} not found on {}: {luns}",
                    report.portal, report.lun, report.target
                ));
            }
            Outcome {
                code,
                stdout,
                stderr,
            }
        }
        Err(e) => Outcome::fail(e.exit_code(), e),
    }
}

fn digest_name(d: DigestKind) -> &'static str {
    match d {
        DigestKind::Crc32c => "CRC32C",
        _ => "None",
    }
}

fn chap_name(a: ChapAlgorithm) -> &'static str {
    match a {
        ChapAlgorithm::Md5 => "MD5",
        ChapAlgorithm::Sha1 => "SHA-1",
        ChapAlgorithm::Sha256 => "SHA-256",
        ChapAlgorithm::Sha3_256 => "SHA3-256",
        _ => "other",
    }
}

fn probe(
    args: &ProbeArgs,
    env: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<(Report, Vec<String>), ProbeError> {
    let portal = parse_portal(&args.portal)?;
    let lun = Lun::from_number(args.lun)
        .ok_or_else(|| ProbeError::Usage(format!("--lun {}: at most 16383", args.lun)))?;
    let auth = auth_from_args(args, env)?;
    let initiator = match &args.initiator {
        Some(n) => n.clone(),
        None => default_initiator()?,
    };
    let timeout = Duration::from_secs(args.timeout);
    let mut rnd = [0u8; 3];
    OsRandom::default().fill_bytes(&mut rnd);
    let spec = LoginSpec {
        initiator_name: &initiator,
        target_name: &args.target,
        auth: &auth,
        isid: Isid::random(u32::from_be_bytes([0, rnd[0], rnd[1], rnd[2]]), 0),
        params: session::default_params(),
        connect_timeout: timeout,
        login_timeout: timeout,
        bind_device: None,
    };
    let mut li = session::connect_and_login(portal, &spec, Instant::now() + timeout)?;
    let mut stderr: Vec<String> = li
        .outcome
        .warnings
        .iter()
        .map(|w| format!("pxeroot-initiator: warning: {w}"))
        .collect();
    let (s, c) = (&li.outcome.session, &li.outcome.conn);
    let mut report = Report {
        portal: portal.to_string(),
        target: args.target.clone(),
        initiator: initiator.clone(),
        login_ms: u64::try_from(li.elapsed.as_millis()).unwrap_or(u64::MAX),
        chap: li.chap.map(chap_name),
        tsih: li.outcome.tsih,
        negotiated: Negotiated {
            header_digest: digest_name(c.header_digest),
            data_digest: digest_name(c.data_digest),
            max_recv_data_segment_length: c.max_recv_data_segment_length,
            max_send_data_segment_length: c.max_send_data_segment_length,
            max_burst_length: s.max_burst_length,
            first_burst_length: s.first_burst_length,
            immediate_data: s.immediate_data,
            initial_r2t: s.initial_r2t,
            max_outstanding_r2t: s.max_outstanding_r2t,
            error_recovery_level: s.error_recovery_level,
            target_alias: s.target_alias.clone(),
            target_portal_group_tag: s.target_portal_group_tag,
        },
        luns: None,
        lun: args.lun,
        present: false,
        device: None,
        warnings: Vec::new(),
    };
    let mut scsi = Scsi {
        li: &mut li,
        itt: 1,
        timeout,
    };
    let looked = look(&mut scsi, lun, &mut report);
    if let Err(e) = session::logout(&mut li, timeout.min(Duration::from_secs(5))) {
        report.warnings.push(format!("logout: {e}"));
    }
    looked?;
    stderr.extend(
        report
            .warnings
            .iter()
            .map(|w| format!("pxeroot-initiator: warning: {w}")),
    );
    Ok((report, stderr))
}

/// The SCSI commands of the probe, filling `report`.
fn look(scsi: &mut Scsi<'_>, lun: Lun, report: &mut Report) -> Result<(), ProbeError> {
    let mut alloc = 4096;
    loop {
        let r = scsi.command(Lun::ZERO, &cdb::report_luns(alloc), alloc, "REPORT LUNS")?;
        if !r.good() {
            report
                .warnings
                .push(format!("REPORT LUNS failed: {}", r.describe()));
            break;
        }
        // A longer list than fits: ask once more with room for all of it (up to 64 Ki LUNs).
        let need = cdb::report_luns_len(&r.data).saturating_add(8).min(8 << 16);
        if need > alloc && alloc == 4096 {
            alloc = need;
            continue;
        }
        report.luns = Some(cdb::parse_report_luns(&r.data));
        break;
    }
    if let Some(luns) = &report.luns {
        let wanted = lun.number().map_or(lun.as_u64(), u64::from);
        if !luns.contains(&wanted) {
            return Ok(());
        }
    }
    let inq = scsi.command(lun, &cdb::inquiry(false, 0, 255), 255, "INQUIRY")?;
    if !inq.good() {
        if inq.sense.is_some_and(|s| s.asc == 0x25) {
            return Ok(()); // LOGICAL UNIT NOT SUPPORTED
        }
        return Err(scsi.failed("INQUIRY", &inq));
    }
    let Some(std_inq) = cdb::parse_inquiry(&inq.data) else {
        return Err(scsi.error("INQUIRY", "short standard INQUIRY data".into()));
    };
    if std_inq.qualifier != 0 {
        return Ok(());
    }
    report.present = true;
    let mut dev = Device {
        peripheral_type: std_inq.device_type,
        type_name: cdb::type_name(std_inq.device_type),
        vendor: std_inq.vendor,
        product: std_inq.product,
        revision: std_inq.revision,
        ..Device::default()
    };
    let pages = scsi.command(lun, &cdb::inquiry(true, 0x00, 255), 255, "INQUIRY VPD 0x00")?;
    let pages = if pages.good() {
        cdb::vpd_payload(&pages.data, 0x00).unwrap_or_default()
    } else {
        Vec::new()
    };
    if pages.contains(&0x80) {
        let r = scsi.command(lun, &cdb::inquiry(true, 0x80, 255), 255, "INQUIRY VPD 0x80")?;
        if r.good() {
            dev.serial = cdb::vpd_payload(&r.data, 0x80).map(|p| cdb::ascii(&p));
        }
    }
    if pages.contains(&0x83) {
        let r = scsi.command(
            lun,
            &cdb::inquiry(true, 0x83, 1024),
            1024,
            "INQUIRY VPD 0x83",
        )?;
        if r.good() {
            dev.identifiers = cdb::vpd_payload(&r.data, 0x83)
                .map(|p| cdb::designators(&p))
                .unwrap_or_default();
        }
    }
    let rc16 = scsi.command(lun, &cdb::read_capacity16(32), 32, "READ CAPACITY(16)")?;
    let capacity = match cdb::parse_capacity16(&rc16.data).filter(|_| rc16.good()) {
        Some(c) => Some(c),
        None => {
            let rc10 = scsi.command(lun, &cdb::read_capacity10(), 8, "READ CAPACITY(10)")?;
            if !rc10.good() {
                return Err(scsi.failed("READ CAPACITY(10)", &rc10));
            }
            cdb::parse_capacity10(&rc10.data)
        }
    };
    if let Some((blocks, block_size)) = capacity {
        dev.blocks = Some(blocks);
        dev.block_size = Some(block_size);
        dev.size_bytes = blocks.checked_mul(u64::from(block_size));
    }
    let tur = scsi.command(lun, &cdb::test_unit_ready(), 0, "TEST UNIT READY")?;
    dev.ready = tur.good();
    if !dev.ready {
        dev.not_ready = Some(tur.describe());
    }
    report.device = Some(dev);
    Ok(())
}

fn text(r: &Report) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("portal     {}", r.portal));
    line(format!("target     {}", r.target));
    line(format!("initiator  {}", r.initiator));
    let auth = r
        .chap
        .map_or_else(|| "no authentication".to_owned(), |a| format!("CHAP {a}"));
    line(format!(
        "login      {} ms, {auth}, TSIH {}",
        r.login_ms, r.tsih
    ));
    let n = &r.negotiated;
    line(format!(
        "negotiated HeaderDigest={} DataDigest={} MaxRecvDataSegmentLength={} (target's {}) \
         MaxBurstLength={} FirstBurstLength={} ImmediateData={} InitialR2T={} \
         MaxOutstandingR2T={} ErrorRecoveryLevel={}",
        n.header_digest,
        n.data_digest,
        n.max_recv_data_segment_length,
        n.max_send_data_segment_length,
        n.max_burst_length,
        n.first_burst_length,
        yes_no(n.immediate_data),
        yes_no(n.initial_r2t),
        n.max_outstanding_r2t,
        n.error_recovery_level
    ));
    if let Some(a) = &n.target_alias {
        line(format!("alias      {a}"));
    }
    match &r.luns {
        Some(l) => {
            let l: Vec<String> = l.iter().map(u64::to_string).collect();
            line(format!("luns       {}", l.join(", ")));
        }
        None => line("luns       (REPORT LUNS refused)".to_owned()),
    }
    match &r.device {
        None => line(format!("lun {:<6} absent", r.lun)),
        Some(d) => {
            line(format!(
                "lun {:<6} {} {:?} {:?} rev {:?}",
                r.lun, d.type_name, d.vendor, d.product, d.revision
            ));
            if let Some(s) = &d.serial {
                line(format!("serial     {s}"));
            }
            for id in &d.identifiers {
                line(format!("id         {id}"));
            }
            if let (Some(b), Some(bs)) = (d.blocks, d.block_size) {
                let bytes = d
                    .size_bytes
                    .map_or_else(|| "too many".to_owned(), |s| s.to_string());
                line(format!("size       {bytes} bytes ({b} blocks x {bs})"));
            }
            match &d.not_ready {
                None => line("ready      yes".to_owned()),
                Some(why) => line(format!("ready      no: {why}")),
            }
        }
    }
    out.pop();
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

/// Decoded sense data (SPC-4 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sense {
    key: u8,
    asc: u8,
    ascq: u8,
}

impl Sense {
    /// Fixed (0x70/0x71) or descriptor (0x72/0x73) format.
    fn parse(b: &[u8]) -> Option<Sense> {
        match b.first()? & 0x7f {
            0x70 | 0x71 => Some(Sense {
                key: b.get(2)? & 0x0f,
                asc: *b.get(12).unwrap_or(&0),
                ascq: *b.get(13).unwrap_or(&0),
            }),
            0x72 | 0x73 => Some(Sense {
                key: b.get(1)? & 0x0f,
                asc: *b.get(2)?,
                ascq: *b.get(3)?,
            }),
            _ => None,
        }
    }

    fn key_name(self) -> &'static str {
        const KEYS: [&str; 16] = [
            "NO SENSE",
            "RECOVERED ERROR",
            "NOT READY",
            "MEDIUM ERROR",
            "HARDWARE ERROR",
            "ILLEGAL REQUEST",
            "UNIT ATTENTION",
            "DATA PROTECT",
            "BLANK CHECK",
            "VENDOR SPECIFIC",
            "COPY ABORTED",
            "ABORTED COMMAND",
            "RESERVED",
            "VOLUME OVERFLOW",
            "MISCOMPARE",
            "COMPLETED",
        ];
        KEYS.get(usize::from(self.key)).copied().unwrap_or("?")
    }

    fn asc_name(self) -> Option<&'static str> {
        Some(match (self.asc, self.ascq) {
            (0x04, 0x00) => "logical unit not ready, cause not reportable",
            (0x04, 0x01) => "logical unit is in process of becoming ready",
            (0x04, 0x02) => "logical unit not ready, initializing command required",
            (0x04, _) => "logical unit not ready",
            (0x20, 0x00) => "invalid command operation code",
            (0x24, 0x00) => "invalid field in CDB",
            (0x25, 0x00) => "logical unit not supported",
            (0x28, 0x00) => "not ready to ready change, medium may have changed",
            (0x29, _) => "power on, reset, or bus device reset occurred",
            (0x2a, _) => "parameters changed",
            (0x3a, _) => "medium not present",
            (0x3f, 0x0e) => "reported LUNs data has changed",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Sense {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sense key {} (0x{:x}), ASC/ASCQ 0x{:02x}/0x{:02x}",
            self.key_name(),
            self.key,
            self.asc,
            self.ascq
        )?;
        if let Some(n) = self.asc_name() {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

/// The outcome of one SCSI command.
#[derive(Debug)]
struct ScsiResult {
    status: u8,
    data: Vec<u8>,
    sense: Option<Sense>,
}

const GOOD: u8 = 0x00;
const CHECK_CONDITION: u8 = 0x02;
const UNIT_ATTENTION: u8 = 0x06;

impl ScsiResult {
    fn good(&self) -> bool {
        self.status == GOOD
    }

    fn describe(&self) -> String {
        let status = match self.status {
            GOOD => "GOOD",
            CHECK_CONDITION => "CHECK CONDITION",
            0x08 => "BUSY",
            0x18 => "RESERVATION CONFLICT",
            0x28 => "TASK SET FULL",
            0x30 => "ACA ACTIVE",
            0x40 => "TASK ABORTED",
            _ => "status",
        };
        match self.sense {
            Some(s) => format!("{status} (0x{:02x}), {s}", self.status),
            None => format!("{status} (0x{:02x})", self.status),
        }
    }
}

/// One command at a time over a logged-in session.
struct Scsi<'a> {
    li: &'a mut LoggedIn,
    itt: u32,
    timeout: Duration,
}

impl Scsi<'_> {
    fn error(&self, command: &'static str, detail: String) -> ProbeError {
        ProbeError::Scsi {
            portal: self.li.portal,
            command,
            detail,
        }
    }

    fn failed(&self, command: &'static str, r: &ScsiResult) -> ProbeError {
        self.error(command, r.describe())
    }

    /// Runs `cdb` on `lun`, reading at most `alloc` bytes; a UNIT ATTENTION (the first
    /// command after login often gets one) is retried up to three times.
    fn command(
        &mut self,
        lun: Lun,
        cdb: &[u8; 16],
        alloc: u32,
        what: &'static str,
    ) -> Result<ScsiResult, ProbeError> {
        let mut n = 0;
        loop {
            let r = self.once(lun, cdb, alloc, what)?;
            n += 1;
            let ua =
                r.status == CHECK_CONDITION && r.sense.is_some_and(|s| s.key == UNIT_ATTENTION);
            if !ua || n > 3 {
                return Ok(r);
            }
        }
    }

    fn once(
        &mut self,
        lun: Lun,
        cdb: &[u8; 16],
        alloc: u32,
        what: &'static str,
    ) -> Result<ScsiResult, ProbeError> {
        let deadline = Instant::now() + self.timeout;
        let itt = self.itt;
        self.itt = self.itt.wrapping_add(1).max(1);
        let portal = self.li.portal;
        let o = &mut self.li.outcome;
        let cmd = ScsiCommand {
            immediate: false,
            fin: true,
            read: alloc > 0,
            write: false,
            attr: TaskAttr::Simple,
            lun,
            itt,
            expected_data_transfer_length: alloc,
            cmd_sn: o.cmd_sn,
            exp_stat_sn: o.exp_stat_sn,
            cdb: *cdb,
            data: Vec::new(),
        };
        o.cmd_sn = o.cmd_sn.next();
        let limits = FrameLimits::from(&o.conn);
        let mut wire = Wire {
            stream: &mut self.li.stream,
            portal,
            limits,
            during: what,
            budget: self.timeout,
        };
        wire.send(&Pdu::from(cmd), deadline)?;
        let mut data = Vec::new();
        let proto_err = |detail: String| ProbeError::Scsi {
            portal,
            command: what,
            detail,
        };
        loop {
            let pdu = wire.recv(deadline)?;
            match pdu {
                Pdu::DataIn(d) if d.itt == itt => {
                    if usize::try_from(d.buffer_offset).ok() != Some(data.len()) {
                        return Err(proto_err(format!(
                            "Data-In at offset {} where {} was expected",
                            d.buffer_offset,
                            data.len()
                        )));
                    }
                    if data.len() + d.data.len() > alloc as usize {
                        return Err(proto_err(format!(
                            "target sent more than the {alloc} bytes asked for"
                        )));
                    }
                    data.extend_from_slice(&d.data);
                    if let Some(status) = d.status {
                        self.li.outcome.exp_stat_sn = d.stat_sn.next();
                        return Ok(ScsiResult {
                            status,
                            data,
                            sense: None,
                        });
                    }
                }
                Pdu::ScsiResponse(r) if r.itt == itt => {
                    self.li.outcome.exp_stat_sn = r.stat_sn.next();
                    if r.response != 0 {
                        return Err(proto_err(format!(
                            "target failure (iSCSI response 0x{:02x})",
                            r.response
                        )));
                    }
                    return Ok(ScsiResult {
                        status: r.status,
                        data,
                        sense: Sense::parse(&r.sense),
                    });
                }
                Pdu::NopIn(n) => {
                    if n.ttt != 0xffff_ffff {
                        // A ping from the target: answer it (immediate, CmdSN not advanced).
                        let reply = NopOut {
                            immediate: true,
                            lun: n.lun,
                            itt: 0xffff_ffff,
                            ttt: n.ttt,
                            cmd_sn: self.li.outcome.cmd_sn,
                            exp_stat_sn: self.li.outcome.exp_stat_sn,
                            data: n.data,
                        };
                        wire.send(&Pdu::from(reply), deadline)?;
                    }
                }
                Pdu::AsyncMessage(_) => {}
                Pdu::Reject(r) => {
                    return Err(proto_err(format!(
                        "target rejected the command PDU (reason 0x{:02x})",
                        u8::from(r.reason)
                    )))
                }
                other => {
                    return Err(ProbeError::Session(AttemptError::Protocol {
                        portal,
                        cause: LoginError::UnexpectedPdu(other.opcode()),
                    }))
                }
            }
        }
    }
}

/// CDB building and parsing of the few commands the probe sends (SPC-4, SBC-3).
mod cdb {
    /// REPORT LUNS (0xA0), SELECT REPORT 0.
    pub fn report_luns(alloc: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = 0xa0;
        c[6..10].copy_from_slice(&alloc.to_be_bytes());
        c
    }

    /// INQUIRY (0x12), standard or a VPD page.
    pub fn inquiry(evpd: bool, page: u8, alloc: u16) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = 0x12;
        c[1] = u8::from(evpd);
        c[2] = page;
        c[3..5].copy_from_slice(&alloc.to_be_bytes());
        c
    }

    /// READ CAPACITY(16): SERVICE ACTION IN(16) 0x9E / 0x10.
    pub fn read_capacity16(alloc: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = 0x9e;
        c[1] = 0x10;
        c[10..14].copy_from_slice(&alloc.to_be_bytes());
        c
    }

    /// READ CAPACITY(10) (0x25).
    pub fn read_capacity10() -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = 0x25;
        c
    }

    /// TEST UNIT READY (0x00).
    pub fn test_unit_ready() -> [u8; 16] {
        [0u8; 16]
    }

    fn be32(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    fn be64(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }

    /// LUN LIST LENGTH of REPORT LUNS data (bytes of LUN entries the target has).
    pub fn report_luns_len(b: &[u8]) -> u32 {
        be32(b, 0).unwrap_or(0)
    }

    /// The LUN list: single-level peripheral/flat LUNs as their number, others as the raw
    /// 64-bit value.
    pub fn parse_report_luns(b: &[u8]) -> Vec<u64> {
        let len = report_luns_len(b) as usize;
        b.get(8..)
            .unwrap_or_default()
            .chunks_exact(8)
            .take(len / 8)
            .filter_map(|c| <[u8; 8]>::try_from(c).ok())
            .map(|raw| {
                let l = pxeroot_proto::Lun(raw);
                l.number().map_or(l.as_u64(), u64::from)
            })
            .collect()
    }

    /// Standard INQUIRY data.
    pub struct Inquiry {
        pub qualifier: u8,
        pub device_type: u8,
        pub vendor: String,
        pub product: String,
        pub revision: String,
    }

    /// Printable ASCII, trimmed.
    pub fn ascii(b: &[u8]) -> String {
        b.iter()
            .map(|&c| {
                if (0x20..0x7f).contains(&c) {
                    c as char
                } else {
                    ' '
                }
            })
            .collect::<String>()
            .trim()
            .to_owned()
    }

    pub fn parse_inquiry(b: &[u8]) -> Option<Inquiry> {
        let first = *b.first()?;
        let field = |r: std::ops::Range<usize>| b.get(r).map(ascii).unwrap_or_default();
        Some(Inquiry {
            qualifier: first >> 5,
            device_type: first & 0x1f,
            vendor: field(8..16),
            product: field(16..32),
            revision: field(32..36),
        })
    }

    pub fn type_name(t: u8) -> &'static str {
        match t {
            0x00 => "disk",
            0x01 => "tape",
            0x05 => "cd/dvd",
            0x07 => "optical",
            0x0c => "storage array controller",
            0x0d => "enclosure",
            0x0e => "simplified disk",
            _ => "other device",
        }
    }

    /// The payload of VPD page `page` (after its 4-byte header), if the data is that page.
    pub fn vpd_payload(b: &[u8], page: u8) -> Option<Vec<u8>> {
        if *b.get(1)? != page {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
        let end = (4 + len).min(b.len());
        Some(b.get(4..end)?.to_vec())
    }

    /// Designators of VPD page 0x83 for the logical unit (association 0), as
    /// `naa.<hex>`, `eui.<hex>`, `t10.<ascii>`, a SCSI name string, or `type N: <hex>`.
    pub fn designators(mut p: &[u8]) -> Vec<String> {
        let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut out = Vec::new();
        while let (Some(&b1), Some(&len)) = (p.get(1), p.get(3)) {
            let Some(d) = p.get(4..4 + usize::from(len)) else {
                break;
            };
            if (b1 >> 4) & 0x03 == 0 {
                out.push(match b1 & 0x0f {
                    0x1 => format!("t10.{}", ascii(d)),
                    0x2 => format!("eui.{}", hex(d)),
                    0x3 => format!("naa.{}", hex(d)),
                    0x8 => ascii(d).trim_end_matches('\0').to_owned(),
                    t => format!("type {t}: {}", hex(d)),
                });
            }
            p = p.get(4 + usize::from(len)..).unwrap_or_default();
        }
        out
    }

    /// READ CAPACITY(16) data: (blocks, block size).
    pub fn parse_capacity16(b: &[u8]) -> Option<(u64, u32)> {
        Some((be64(b, 0)?.checked_add(1)?, be32(b, 8)?))
    }

    /// READ CAPACITY(10) data: (blocks, block size); `None` when the device is too large for
    /// it (last LBA 0xFFFFFFFF).
    pub fn parse_capacity10(b: &[u8]) -> Option<(u64, u32)> {
        let last = be32(b, 0)?;
        (last != u32::MAX).then_some((u64::from(last) + 1, be32(b, 4)?))
    }
}

#[cfg(test)]
mod tests;
